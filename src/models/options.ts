import { z } from "zod";
import { SegkitError } from "../core/errors.js";

/**
 * Options every architecture takes, and the one validation step: defaults merged into a copy, unknown keys and
 * bad values rejected with the option's name.
 *
 * - `numClasses`: 1 = binary (one logit channel, sigmoid in losses and predictions); C >= 2 = multi-class
 *   (C logit channels, softmax).
 * - `inputSize`: `[height, width]` in pixels of the `[B, H, W, 3]` input; fixed, so that shapes and FLOPs are known.
 */
export const DEFAULT_COMMON_OPTIONS = { numClasses: 1, inputSize: [128, 128] as [number, number] };

const positiveInt = z.number().int().min(1);

export const commonOptions = {
  numClasses: positiveInt.default(DEFAULT_COMMON_OPTIONS.numClasses),
  inputSize: z.tuple([positiveInt, positiveInt]).default(DEFAULT_COMMON_OPTIONS.inputSize),
};

/** Parses `options` with `schema`; a `SegkitError` naming the architecture and each bad option otherwise. */
export function validateOptions<S extends z.ZodType>(arch: string, schema: S, options: unknown): z.output<S> {
  const parsed = schema.safeParse(options ?? {});
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message));
  throw new SegkitError(`${arch} options: ${problems.join("; ")}`);
}

/** Throws unless both sides of `inputSize` are multiples of `factor` (the encoder's total stride). */
export function checkDivisible(arch: string, inputSize: readonly [number, number], factor: number, why: string): void {
  if (inputSize[0] % factor !== 0 || inputSize[1] % factor !== 0) {
    throw new SegkitError(
      `${arch} options: inputSize ${inputSize[0]}x${inputSize[1]} must be a multiple of ${factor} (${why})`,
    );
  }
}
