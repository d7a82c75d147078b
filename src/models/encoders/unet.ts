import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import { apply, doubleConv, imageInput } from "../blocks.js";
import { declareEncoder, defineEncoder, type Encoder } from "./encoder.js";

/** U-Net encoder defaults: 16-32-64-128 (Ronneberger et al. at full size: depth 5, baseFilters 64). */
export const DEFAULT_UNET_ENCODER_OPTIONS = {
  depth: 4,
  baseFilters: 16,
  batchNorm: true,
  dropout: 0,
  downsample: "maxpool" as "maxpool" | "strided",
};

/** The U-Net encoder's options (shared with the `unet` preset). */
export const unetEncoderOptions = {
  /** Resolution levels including the bottleneck: level i has baseFilters * 2^i filters at H/2^i. */
  depth: z.number().int().min(2).max(8).default(DEFAULT_UNET_ENCODER_OPTIONS.depth),
  baseFilters: z.number().int().min(1).default(DEFAULT_UNET_ENCODER_OPTIONS.baseFilters),
  batchNorm: z.boolean().default(DEFAULT_UNET_ENCODER_OPTIONS.batchNorm),
  /** Dropout rate at the end of the contracting path (the bottleneck); 0 for none. */
  dropout: z.number().min(0).lt(1).default(DEFAULT_UNET_ENCODER_OPTIONS.dropout),
  downsample: z.enum(["maxpool", "strided"]).default(DEFAULT_UNET_ENCODER_OPTIONS.downsample),
};
const schema = z.strictObject(unetEncoderOptions);
export type UnetEncoderOptions = z.output<typeof schema>;

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

export const UNET_ENCODER = defineEncoder({
  description: "U-Net contracting path (Ronneberger et al. 2015), stages at strides 1, 2, ..., 2^(depth-1)",
  schema,
  strides: (o) => Array.from({ length: o.depth }, (_, i) => 2 ** i),
  build: unetEncoder,
});
