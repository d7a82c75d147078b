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
