import { z } from "zod";
import { convBlock, logitsHead, type Symbolic } from "../blocks.js";
import type { Encoder } from "../encoders/encoder.js";
import { countMismatch, defineDecoder } from "./decoder.js";

/**
 * The transposed-convolution stack of Deep Learning with Python (3rd ed., ch. 11), mirroring the encoder: per
 * stage from the deepest, a 3x3 Conv2DTranspose with stride 1, then one with the stride that brings the map to the
 * next shallower stage's resolution (the input's after stage 0), both ReLU, with `filters[i]` channels (shallow
 * to deep). No skips. `[B, H/s, W/s, ·]` (s = the deepest stride) -> `[B, H, W, filters[0]]`.
 */
export function convStackDecoder(encoder: Encoder, filters: readonly number[]): Symbolic {
  const { features, stages } = encoder;
  let x = features[features.length - 1] as Symbolic;
  for (let i = stages.length - 1; i >= 0; i--) {
    const f = filters[i] as number;
    const strides = (stages[i]?.stride as number) / (stages[i - 1]?.stride ?? 1);
    x = convBlock(x, `dec${i}_a`, { filters: f, transpose: true });
    x = convBlock(x, `dec${i}_b`, { filters: f, transpose: true, strides });
  }
  return x;
}

export const CONV_STACK_DECODER = defineDecoder({
  description: "transposed convolutions per encoder stage, no skips (Deep Learning with Python, ch. 11); 3x3 head",
  schema: z.strictObject({
    /** Channels per stage, deepest first (the order they run in); default: the encoder's stage channels. */
    filters: z.array(z.number().int().min(1)).min(1).optional(),
  }),
  misfit(strides, o) {
    const bad = strides.findIndex((s, i) => !Number.isInteger(s / (strides[i - 1] ?? 1)));
    if (bad >= 0) return `stage ${bad}'s stride ${strides[bad]} is not a multiple of the one before`;
    return countMismatch(o.filters, strides.length, "one per encoder stage");
  },
  build(encoder, o, numClasses) {
    const filters = o.filters ? [...o.filters].reverse() : encoder.stages.map((s) => s.channels);
    return logitsHead(convStackDecoder(encoder, filters), numClasses, { kernelSize: 3 });
  },
});
