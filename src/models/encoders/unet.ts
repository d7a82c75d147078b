import * as tf from "@tensorflow/tfjs";
import { apply, doubleConv, imageInput } from "../blocks.js";
import { declareEncoder, type Encoder } from "./encoder.js";

export interface UnetEncoderOptions {
  depth: number;
  baseFilters: number;
  batchNorm: boolean;
  dropout: number;
  downsample: "maxpool" | "strided";
}

/**
 * The U-Net contracting path (Ronneberger et al. 2015, with 'same' padding): level i has two 3x3 convs with
 * `baseFilters * 2^i` filters; between levels a 2x2 max pool or (downsample "strided") stride 2 on the level's
 * first conv; dropout at the end of the path (the deepest level). Input rescaled to [0, 1].
 * `[B,H,W,3]` -> stages `[B, H/2^i, W/2^i, baseFilters*2^i]`, i = 0..depth-1.
 */
export function unetEncoder(inputSize: readonly [number, number], o: UnetEncoderOptions): Encoder {
  const [input, rescaled] = imageInput(inputSize, 1 / 255);
  const features = [];
  let x = rescaled;
  for (let i = 0; i < o.depth; i++) {
    const down = i > 0;
    if (down && o.downsample === "maxpool") x = apply(tf.layers.maxPooling2d({ poolSize: 2, name: `enc${i}_pool` }), x);
    x = doubleConv(x, `enc${i}`, {
      filters: o.baseFilters * 2 ** i,
      strides: down && o.downsample === "strided" ? 2 : 1,
      batchNorm: o.batchNorm,
      dropout: i === o.depth - 1 ? o.dropout : 0,
    });
    features.push(x);
  }
  return declareEncoder(input, features);
}
