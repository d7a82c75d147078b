import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import { apply, convBlock, doubleConv, logitsHead, type Symbolic } from "../blocks.js";
import type { Encoder } from "../encoders/encoder.js";
import { countMismatch, defineDecoder } from "./decoder.js";

export interface SkipDecoderOptions {
  /** Filters of the upsampling step per skip, shallow to deep (`filters[i]` goes with `stages[i]`). */
  filters: readonly number[];
  /**
   * - "transpose": a stride-2 Conv2DTranspose of `kernelSize` (`filters[i]` out);
   * - "bilinear": UpSampling2D (bilinear), channels unchanged.
   */
  upsample: "transpose" | "bilinear";
  kernelSize: number;
  /** [Batch norm +] ReLU after the transposed conv (the pix2pix `upsample` block); otherwise linear. */
  upsampleActivation: boolean;
  /** A U-Net double conv (`filters[i]`) after each concatenation; otherwise none (pix2pix). */
  doubleConv: boolean;
  /** Batch norm in the double convs and the activated upsampling. */
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
        batchNorm: o.batchNorm,
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

/** U-Net decoder defaults: Ronneberger's blocks, transposed convolutions, batch norm. */
export const DEFAULT_UNET_DECODER_OPTIONS = {
  block: "double-conv" as "double-conv" | "pix2pix",
  upsample: "transpose" as "transpose" | "bilinear",
  batchNorm: true,
};

/** The decoder options the `unet` preset also takes. */
export const unetDecoderOptions = {
  /**
   * - "transpose": a stride-2 Conv2DTranspose (2x2 for "double-conv", 3x3 for "pix2pix");
   * - "bilinear": UpSampling2D (bilinear), channels unchanged (only with "double-conv").
   */
  upsample: z.enum(["transpose", "bilinear"]).default(DEFAULT_UNET_DECODER_OPTIONS.upsample),
};

export const UNET_DECODER = defineDecoder({
  description:
    "U-Net expanding path: upsample x2, concatenate the skip, then a double conv (Ronneberger) or nothing after a " +
    "3x3 transposed conv + batch norm + ReLU (pix2pix, the TensorFlow segmentation tutorial); 1x1 head, or a 3x3 " +
    "transposed-conv head when the shallowest stage has stride 2",
  schema: z
    .strictObject({
      ...unetDecoderOptions,
      /** Filters per upsampling step, deepest first (the order they run in); default: the skips' channels. */
      filters: z.array(z.number().int().min(1)).min(1).optional(),
      /** What follows each upsampling: "double-conv" (U-Net) or "pix2pix" (see the description). */
      block: z.enum(["double-conv", "pix2pix"]).default(DEFAULT_UNET_DECODER_OPTIONS.block),
      batchNorm: z.boolean().default(DEFAULT_UNET_DECODER_OPTIONS.batchNorm),
    })
    .refine((o) => !(o.block === "pix2pix" && o.upsample === "bilinear"), {
      message: 'upsample "bilinear" needs block "double-conv" (a pix2pix block is its transposed convolution)',
      path: ["upsample"],
    }),
  misfit(strides, o) {
    const bad = strides.findIndex((s, i) => i > 0 && s !== 2 * (strides[i - 1] as number));
    if (bad >= 0)
      return `it upsamples x2 per stage, but stage ${bad - 1} to ${bad} is x${(strides[bad] as number) / (strides[bad - 1] as number)}`;
    if ((strides[0] as number) > 2)
      return `its head upsamples x2 at most, and the shallowest stage has stride ${strides[0]}`;
    return countMismatch(o.filters, strides.length - 1, "one per skip: the encoder's stages but the deepest");
  },
  build(encoder, o, numClasses) {
    const skips = encoder.stages.slice(0, -1);
    const doubleConv = o.block === "double-conv";
    const decoded = skipDecoder(encoder, {
      filters: o.filters ? [...o.filters].reverse() : skips.map((s) => s.channels),
      upsample: o.upsample,
      kernelSize: doubleConv ? 2 : 3,
      upsampleActivation: !doubleConv,
      doubleConv,
      batchNorm: o.batchNorm,
    });
    const head = encoder.stages[0]?.stride === 1 ? { kernelSize: 1 } : { kernelSize: 3, upsample: true };
    return logitsHead(decoded, numClasses, head);
  },
});
