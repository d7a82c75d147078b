import * as tf from "@tensorflow/tfjs";
import { apply, convBlock, doubleConv, type Symbolic } from "../blocks.js";
import type { Encoder } from "../encoders/encoder.js";

export interface SkipDecoderOptions {
  /** Filters of the upsampling step per skip, shallow to deep (`filters[i]` goes with `stages[i]`). */
  filters: readonly number[];
  /**
   * - "transpose": a stride-2 Conv2DTranspose of `kernelSize` (`filters[i]` out);
   * - "bilinear": UpSampling2D (bilinear), channels unchanged.
   */
  upsample: "transpose" | "bilinear";
  kernelSize: number;
  /** Batch norm + ReLU after the transposed conv (the pix2pix `upsample` block); otherwise linear. */
  upsampleActivation: boolean;
  /** A U-Net double conv (`filters[i]`) after each concatenation; otherwise none (pix2pix). */
  doubleConv: boolean;
  batchNorm: boolean;
}

/**
 * The U-Net expanding path, also the pix2pix decoder of the TensorFlow segmentation tutorial: from the deepest
 * stage up, upsample x2, concatenate with the skip of that resolution (skip first), [double conv].
 * Reads only the encoder's declared features and channels.
 * Returns `[B, H/s0, W/s0, ·]`, s0 = the stride of the shallowest stage.
 */
export function skipDecoder(encoder: Encoder, o: SkipDecoderOptions): Symbolic {
  const { features } = encoder;
  let x = features[features.length - 1] as Symbolic;
  for (let i = features.length - 2; i >= 0; i--) {
    const filters = o.filters[i] as number;
    const name = `dec${i}`;
    if (o.upsample === "bilinear") {
      x = apply(tf.layers.upSampling2d({ size: [2, 2], interpolation: "bilinear", name: `${name}_up` }), x);
    } else if (o.upsampleActivation) {
      x = convBlock(x, `${name}_up`, {
        filters,
        kernelSize: o.kernelSize,
        strides: 2,
        transpose: true,
        batchNorm: true,
      });
    } else {
      const up = tf.layers.conv2dTranspose({
        filters,
        kernelSize: o.kernelSize,
        strides: 2,
        padding: "same",
        name: `${name}_up`,
      });
      x = apply(up, x);
    }
    x = apply(tf.layers.concatenate({ name: `${name}_concat` }), [features[i] as Symbolic, x]);
    if (o.doubleConv) x = doubleConv(x, name, { filters, batchNorm: o.batchNorm });
  }
  return x;
}
