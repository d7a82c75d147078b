import { CONV_STACK_DECODER } from "./conv-stack.js";
import { UNET_DECODER } from "./unet.js";

/**
 * The decoder registry: name -> definition (options schema, fit check against an encoder's stage strides, builder
 * of the decoder and its head; see `DecoderDefinition`). Adding a decoder: one file exporting a `defineDecoder(...)`,
 * and its line here.
 */
export const DECODERS = {
  unet: UNET_DECODER,
  "conv-stack": CONV_STACK_DECODER,
};

export type DecoderName = keyof typeof DECODERS;
export const DECODER_NAMES = Object.keys(DECODERS) as DecoderName[];
