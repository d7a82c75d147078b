import { doubleConv, imageInput } from "../blocks.js";
import { declareEncoder, type Encoder } from "./encoder.js";

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
