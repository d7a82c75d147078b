import type { z } from "zod";
import type { Symbolic } from "../blocks.js";
import type { Encoder } from "../encoders/encoder.js";

/**
 * An entry of the decoder registry (`decoders/registry.ts`): its options (a zod schema that fills the defaults and
 * rejects unknown keys), whether it fits an encoder's stage strides (checked before anything is built), and the
 * builder of the decoder and its segmentation head. `Out` is the validated options, `In` what a user writes.
 */
export interface DecoderDefinition<Out = unknown, In = Out> {
  /** One line: what it is, where it comes from. */
  description: string;
  schema: z.ZodType<Out, In>;
  /** Why it cannot decode stages at `strides` (shallow to deep) with `options`, or null when it fits. */
  misfit(strides: readonly number[], options: Out): string | null;
  /** The encoder's stages -> logits `[B, H, W, numClasses]` at the input's size (the last layer is "logits"). */
  build(encoder: Encoder, options: Out, numClasses: number): Symbolic;
}

/** `definition`, typed (the identity: it only lets TypeScript infer `Out` and `In` from the schema). */
export function defineDecoder<Out, In>(definition: DecoderDefinition<Out, In>): DecoderDefinition<Out, In> {
  return definition;
}

/** "filters has 3 values; the decoder needs 4 (...)" or null. */
export function countMismatch(given: readonly number[] | undefined, needed: number, what: string): string | null {
  if (given === undefined || given.length === needed) return null;
  return `filters has ${given.length} values; it needs ${needed} (${what})`;
}
