import { CONV_STACK_ENCODER } from "./conv-stack.js";
import { MOBILENETV2_ENCODER } from "./mobilenet-v2.js";
import { UNET_ENCODER } from "./unet.js";

/**
 * The encoder registry, segmentation_models_pytorch's `encoders` table: name -> definition (options schema, stage
 * strides, builder; see `EncoderDefinition`). Adding an encoder: one file exporting a `defineEncoder(...)`, and its
 * line here.
 */
export const ENCODERS = {
  unet: UNET_ENCODER,
  "conv-stack": CONV_STACK_ENCODER,
  mobilenetv2: MOBILENETV2_ENCODER,
};

export type EncoderName = keyof typeof ENCODERS;
export const ENCODER_NAMES = Object.keys(ENCODERS) as EncoderName[];
