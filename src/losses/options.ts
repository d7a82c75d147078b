import { z } from "zod";
import { SegkitError } from "../core/errors.js";
import { DEFAULT_IGNORE_INDEX } from "../core/image.js";

/**
 * Loss options: `DEFAULT_*` constants, and one `validate*` step per loss that checks the user's object, merges the
 * defaults into a copy and throws a `SegkitError` naming the bad option. Unknown keys are errors (a typo such as
 * `labelSmothing` would otherwise be silently ignored). What each option means is in `losses.ts`.
 */

export interface CrossEntropyOptions {
  /** Target value whose pixels count for nothing. Default 255. */
  ignoreIndex?: number;
  /** One weight >= 0 per class (length C), or null for none. Default null. */
  classWeights?: readonly number[] | null;
  /** PyTorch's `label_smoothing`, in [0, 1]. Default 0. */
  labelSmoothing?: number;
}

export interface BinaryCrossEntropyOptions {
  ignoreIndex?: number;
}

export interface DiceOptions {
  ignoreIndex?: number;
  /** Added to numerator and denominator of every class's Dice score (smp `smooth`). Default 0. */
  smooth?: number;
  /** Lower clamp of the denominator (smp `eps`). Default 1e-7. */
  eps?: number;
  /** One weight >= 0 per class (length C, not all 0) for the mean over classes, or null for a plain mean. */
  classWeights?: readonly number[] | null;
}

export interface FocalOptions {
  ignoreIndex?: number;
  /** Weight of positives (1 - alpha for negatives), in [0, 1], or null for none (smp default). Default null. */
  alpha?: number | null;
  /** Focusing power >= 0. Default 2. */
  gamma?: number;
}

export const DEFAULT_CROSS_ENTROPY_OPTIONS: Readonly<Required<CrossEntropyOptions>> = Object.freeze({
  ignoreIndex: DEFAULT_IGNORE_INDEX,
  classWeights: null,
  labelSmoothing: 0,
});

export const DEFAULT_BINARY_CROSS_ENTROPY_OPTIONS: Readonly<Required<BinaryCrossEntropyOptions>> = Object.freeze({
  ignoreIndex: DEFAULT_IGNORE_INDEX,
});

export const DEFAULT_DICE_OPTIONS: Readonly<Required<DiceOptions>> = Object.freeze({
  ignoreIndex: DEFAULT_IGNORE_INDEX,
  smooth: 0,
  eps: 1e-7,
  classWeights: null,
});

export const DEFAULT_FOCAL_OPTIONS: Readonly<Required<FocalOptions>> = Object.freeze({
  ignoreIndex: DEFAULT_IGNORE_INDEX,
  alpha: null,
  gamma: 2,
});

const ignoreIndex = z.number().int();
const classWeights = z.array(z.number().min(0)).min(1).nullable();

const schemas = {
  "cross-entropy": z.strictObject({
    ignoreIndex: ignoreIndex.default(DEFAULT_CROSS_ENTROPY_OPTIONS.ignoreIndex),
    classWeights: classWeights.default(null),
    labelSmoothing: z.number().min(0).max(1).default(DEFAULT_CROSS_ENTROPY_OPTIONS.labelSmoothing),
  }),
  "binary cross-entropy": z.strictObject({
    ignoreIndex: ignoreIndex.default(DEFAULT_BINARY_CROSS_ENTROPY_OPTIONS.ignoreIndex),
  }),
  dice: z.strictObject({
    ignoreIndex: ignoreIndex.default(DEFAULT_DICE_OPTIONS.ignoreIndex),
    smooth: z.number().min(0).default(DEFAULT_DICE_OPTIONS.smooth),
    eps: z.number().positive().default(DEFAULT_DICE_OPTIONS.eps),
    classWeights: classWeights
      .refine((w) => w === null || w.some((x) => x > 0), "needs at least one weight > 0")
      .default(null),
  }),
  focal: z.strictObject({
    ignoreIndex: ignoreIndex.default(DEFAULT_FOCAL_OPTIONS.ignoreIndex),
    alpha: z.number().min(0).max(1).nullable().default(DEFAULT_FOCAL_OPTIONS.alpha),
    gamma: z.number().min(0).default(DEFAULT_FOCAL_OPTIONS.gamma),
  }),
};

/** Parses `options` with the loss's schema: a new object with every default filled in, or a SegkitError. */
function validate<K extends keyof typeof schemas>(loss: K, options: unknown): z.output<(typeof schemas)[K]> {
  const parsed = schemas[loss].safeParse(options ?? {});
  if (parsed.success) return parsed.data as z.output<(typeof schemas)[K]>;
  const issue = parsed.error.issues[0];
  const where = issue?.path.length ? ` ${issue.path.join(".")}` : "";
  throw new SegkitError(`invalid ${loss} option${where}: ${issue?.message ?? "invalid"}`);
}

export type ResolvedCrossEntropyOptions = z.output<(typeof schemas)["cross-entropy"]>;
export type ResolvedBinaryCrossEntropyOptions = z.output<(typeof schemas)["binary cross-entropy"]>;
export type ResolvedDiceOptions = z.output<(typeof schemas)["dice"]>;
export type ResolvedFocalOptions = z.output<(typeof schemas)["focal"]>;

export const validateCrossEntropyOptions = (o?: CrossEntropyOptions): ResolvedCrossEntropyOptions =>
  validate("cross-entropy", o);
export const validateBinaryCrossEntropyOptions = (o?: BinaryCrossEntropyOptions): ResolvedBinaryCrossEntropyOptions =>
  validate("binary cross-entropy", o);
export const validateDiceOptions = (o?: DiceOptions): ResolvedDiceOptions => validate("dice", o);
export const validateFocalOptions = (o?: FocalOptions): ResolvedFocalOptions => validate("focal", o);
