import { z } from "zod";
import { doubleConv, imageInput } from "../blocks.js";
import { declareEncoder, defineEncoder, type Encoder } from "./encoder.js";

/** The book's model: [64, 128, 256]. */
export const DEFAULT_CONV_STACK_ENCODER_OPTIONS = { filters: [64, 128, 256] };

/** The conv-stack encoder's options (shared with the `encoder-decoder` preset). */
export const convStackEncoderOptions = {
  /** Channels per stage, shallow to deep; each stage halves H and W. */
  filters: z.array(z.number().int().min(1)).min(1).default(DEFAULT_CONV_STACK_ENCODER_OPTIONS.filters),
};

/**
 * The strided convolution stack of Deep Learning with Python (3rd ed., ch. 11): per stage, a 3x3 conv with
 * stride 2 and a 3x3 conv with stride 1, both with bias and ReLU. Input rescaled to [0, 1].
 * `[B,H,W,3]` -> stages `[B, H/2^(i+1), W/2^(i+1), filters[i]]`.
 */
export function convStackEncoder(inputSize: readonly [number, number], filters: readonly number[]): Encoder {
  const [input, rescaled] = imageInput(inputSize, 1 / 255);
  const features = [];
  let x = rescaled;
  for (const [i, f] of filters.entries()) {
    x = doubleConv(x, `enc${i}`, { filters: f, strides: 2 });
    features.push(x);
  }
  return declareEncoder(input, features);
}

export const CONV_STACK_ENCODER = defineEncoder({
  description: "strided convolution stack (Deep Learning with Python, ch. 11), stages at strides 2, 4, ..., 2^n",
  schema: z.strictObject(convStackEncoderOptions),
  strides: (o) => o.filters.map((_, i) => 2 ** (i + 1)),
  build: (inputSize, o) => convStackEncoder(inputSize, o.filters),
});
