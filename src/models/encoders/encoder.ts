import type { z } from "zod";
import type { Symbolic } from "../blocks.js";

/**
 * What an encoder declares to the decoders: its input (the `[B,H,W,3]` 0..255 image, rescaled inside) and
 * its stages, shallow to deep. Decoders read `stages[i].channels` and `features[i]` and nothing else.
 */
export interface EncoderStage {
  /** Name of the layer whose output is the stage's feature map. */
  layer: string;
  /** Channels of that feature map. */
  channels: number;
  /** Input pixels per feature pixel: the map is `[B, H/stride, W/stride, channels]`. */
  stride: number;
}

export interface Encoder {
  input: Symbolic;
  /** One feature map per stage, shallow to deep; the last one is where the decoder starts. */
  features: Symbolic[];
  stages: EncoderStage[];
}

/** An encoder from its input and feature maps (channels and strides read off their static shapes). */
export function declareEncoder(input: Symbolic, features: Symbolic[]): Encoder {
  const height = input.shape[1] as number;
  const stages = features.map((f) => ({
    layer: f.sourceLayer.name,
    channels: f.shape[3] as number,
    stride: height / (f.shape[1] as number),
  }));
  return { input, features, stages };
}

/**
 * An entry of the encoder registry (`encoders/registry.ts`): its options (a zod schema that fills the defaults
 * and rejects unknown keys), the strides of its stages for those options (known before anything is built, so a
 * decoder that does not fit is refused without building layers; the built stages must have these strides), and
 * the builder. `Out` is the validated options, `In` what a user writes.
 */
export interface EncoderDefinition<Out = unknown, In = Out> {
  /** One line: what it is, where it comes from. */
  description: string;
  schema: z.ZodType<Out, In>;
  /** Stage strides, shallow to deep (powers of two here). */
  strides(options: Out): number[];
  /** `[B, H, W, 3]` float32 0..255 input at `inputSize` = [H, W] -> the encoder's stages. */
  build(inputSize: readonly [number, number], options: Out): Encoder;
}

/** `definition`, typed (the identity: it only lets TypeScript infer `Out` and `In` from the schema). */
export function defineEncoder<Out, In>(definition: EncoderDefinition<Out, In>): EncoderDefinition<Out, In> {
  return definition;
}
