import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import { SegkitError } from "../core/errors.js";
import { logitsHead } from "./blocks.js";
import { convStackDecoder } from "./decoders/conv-stack.js";
import { skipDecoder } from "./decoders/unet.js";
import { convStackEncoder } from "./encoders/conv-stack.js";
import type { Encoder } from "./encoders/encoder.js";
import { MOBILENET_V2_ALPHAS, mobileNetV2Encoder } from "./encoders/mobilenet-v2.js";
import { unetEncoder } from "./encoders/unet.js";
import { checkDivisible, commonOptions, DEFAULT_COMMON_OPTIONS, validateOptions } from "./options.js";
import { freezeEncoder } from "./weights.js";

/**
 * The model registry: `createModel(arch, options)`. Every model maps a `[B, H, W, 3]` float32 image in 0..255
 * (rescaled inside the model) to logits `[B, H, W, C]` float32, C = `numClasses` (1 = binary). No activation
 * at the end: losses and predictions apply sigmoid / softmax (`probabilities` in `head.ts`).
 */

const posInt = z.number().int().min(1);

export const DEFAULT_ENCODER_DECODER_OPTIONS = { ...DEFAULT_COMMON_OPTIONS, filters: [64, 128, 256] };
const encoderDecoderSchema = z.strictObject({
  ...commonOptions,
  /** Channels per stage, shallow to deep; each stage halves H and W. The book's model: [64, 128, 256]. */
  filters: z.array(posInt).min(1).default(DEFAULT_ENCODER_DECODER_OPTIONS.filters),
});

/** U-Net defaults: 16-32-64-128 (Ronneberger et al. at full size: depth 5, baseFilters 64). */
export const DEFAULT_UNET_OPTIONS = {
  ...DEFAULT_COMMON_OPTIONS,
  depth: 4,
  baseFilters: 16,
  batchNorm: true,
  dropout: 0,
  downsample: "maxpool" as "maxpool" | "strided",
  upsample: "transpose" as "transpose" | "bilinear",
};
const unetSchema = z.strictObject({
  ...commonOptions,
  /** Resolution levels including the bottleneck: level i has baseFilters * 2^i filters at H/2^i. */
  depth: z.number().int().min(2).max(8).default(DEFAULT_UNET_OPTIONS.depth),
  baseFilters: posInt.default(DEFAULT_UNET_OPTIONS.baseFilters),
  batchNorm: z.boolean().default(DEFAULT_UNET_OPTIONS.batchNorm),
  /** Dropout rate at the end of the contracting path (the bottleneck); 0 for none. */
  dropout: z.number().min(0).lt(1).default(DEFAULT_UNET_OPTIONS.dropout),
  downsample: z.enum(["maxpool", "strided"]).default(DEFAULT_UNET_OPTIONS.downsample),
  upsample: z.enum(["transpose", "bilinear"]).default(DEFAULT_UNET_OPTIONS.upsample),
});

/** The TensorFlow segmentation tutorial's model: MobileNetV2 1.0, pix2pix decoder 512-256-128-64. */
export const DEFAULT_MOBILENETV2_UNET_OPTIONS = {
  ...DEFAULT_COMMON_OPTIONS,
  alpha: 1.0 as (typeof MOBILENET_V2_ALPHAS)[number],
  decoderFilters: [512, 256, 128, 64],
  freezeEncoder: false,
};
const mobilenetSchema = z.strictObject({
  ...commonOptions,
  /** Width multiplier: channels x alpha, rounded to multiples of 8 (Keras). */
  alpha: z.literal(MOBILENET_V2_ALPHAS).default(DEFAULT_MOBILENETV2_UNET_OPTIONS.alpha),
  /** Filters of the 4 pix2pix upsampling blocks, deepest first (H/32 -> H/16 first). */
  decoderFilters: z.array(posInt).length(4).default(DEFAULT_MOBILENETV2_UNET_OPTIONS.decoderFilters),
  /** Build with the encoder frozen (`freezeEncoder`). */
  freezeEncoder: z.boolean().default(DEFAULT_MOBILENETV2_UNET_OPTIONS.freezeEncoder),
});

export type EncoderDecoderOptions = z.input<typeof encoderDecoderSchema>;
export type UnetOptions = z.input<typeof unetSchema>;
export type MobileNetV2UnetOptions = z.input<typeof mobilenetSchema>;

export interface ModelOptions {
  "encoder-decoder": EncoderDecoderOptions;
  unet: UnetOptions;
  "mobilenetv2-unet": MobileNetV2UnetOptions;
}
export type ModelArch = keyof ModelOptions;

/** Stored in the model (`getUserDefinedMetadata()`, saved with it): what built it. */
export interface SegkitModelMetadata {
  segkit: { arch: ModelArch; options: Record<string, unknown>; encoder: Encoder["stages"] };
}

function finish(arch: ModelArch, options: object, encoder: Encoder, logits: tf.SymbolicTensor): tf.LayersModel {
  const model = tf.model({ inputs: encoder.input, outputs: logits, name: arch.replaceAll("-", "_") });
  const metadata: SegkitModelMetadata = { segkit: { arch, options: { ...options }, encoder: encoder.stages } };
  model.setUserDefinedMetadata(metadata as unknown as object);
  return model;
}

const BUILDERS: { [A in ModelArch]: (options: ModelOptions[A] | undefined) => tf.LayersModel } = {
  "encoder-decoder"(options) {
    const o = validateOptions("encoder-decoder", encoderDecoderSchema, options);
    checkDivisible("encoder-decoder", o.inputSize, 2 ** o.filters.length, `${o.filters.length} stride-2 stages`);
    const encoder = convStackEncoder(o.inputSize, o.filters);
    const logits = logitsHead(convStackDecoder(encoder), o.numClasses, { kernelSize: 3 });
    return finish("encoder-decoder", o, encoder, logits);
  },
  unet(options) {
    const o = validateOptions("unet", unetSchema, options);
    checkDivisible("unet", o.inputSize, 2 ** (o.depth - 1), `depth ${o.depth}`);
    const encoder = unetEncoder(o.inputSize, o);
    const decoded = skipDecoder(encoder, {
      filters: encoder.stages.map((s) => s.channels),
      upsample: o.upsample,
      kernelSize: 2,
      upsampleActivation: false,
      doubleConv: true,
      batchNorm: o.batchNorm,
    });
    return finish("unet", o, encoder, logitsHead(decoded, o.numClasses, { kernelSize: 1 }));
  },
  "mobilenetv2-unet"(options) {
    const o = validateOptions("mobilenetv2-unet", mobilenetSchema, options);
    checkDivisible("mobilenetv2-unet", o.inputSize, 32, "MobileNetV2 has stride 32");
    const encoder = mobileNetV2Encoder(o.inputSize, o.alpha);
    const decoded = skipDecoder(encoder, {
      filters: [...o.decoderFilters].reverse(),
      upsample: "transpose",
      kernelSize: 3,
      upsampleActivation: true,
      doubleConv: false,
      batchNorm: true,
    });
    const logits = logitsHead(decoded, o.numClasses, { kernelSize: 3, upsample: true });
    const model = finish("mobilenetv2-unet", o, encoder, logits);
    if (o.freezeEncoder) freezeEncoder(model);
    return model;
  },
};

export const MODEL_ARCHS = Object.keys(BUILDERS) as ModelArch[];

/**
 * Builds a model by name: "encoder-decoder", "unet" or "mobilenetv2-unet" (see each `*Options` type).
 * Input `[B, H, W, 3]` float32 0..255 with `[H, W] = inputSize`; output logits `[B, H, W, numClasses]`.
 * Throws a `SegkitError` listing the valid names for an unknown `arch`, or naming each bad option.
 */
export function createModel<A extends ModelArch>(arch: A, options?: ModelOptions[A]): tf.LayersModel {
  if (!Object.hasOwn(BUILDERS, arch)) {
    throw new SegkitError(`unknown model "${String(arch)}"; valid: ${MODEL_ARCHS.join(", ")}`);
  }
  return BUILDERS[arch](options);
}
