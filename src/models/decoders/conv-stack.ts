import { convBlock, type Symbolic } from "../blocks.js";
import type { Encoder } from "../encoders/encoder.js";

/**
 * The transposed-convolution stack of Deep Learning with Python (3rd ed., ch. 11), mirroring the encoder: per
 * stage from the deepest, a 3x3 Conv2DTranspose with stride 1, then one with stride 2, both ReLU, with the
 * stage's declared channels. No skips. `[B, H/s, W/s, ·]` (s = the deepest stride) -> `[B, H, W, channels[0]]`.
 */
export function convStackDecoder(encoder: Encoder): Symbolic {
  const { features, stages } = encoder;
  let x = features[features.length - 1] as Symbolic;
  for (let i = stages.length - 1; i >= 0; i--) {
    const filters = (stages[i] as { channels: number }).channels;
    x = convBlock(x, `dec${i}_a`, { filters, transpose: true });
    x = convBlock(x, `dec${i}_b`, { filters, transpose: true, strides: 2 });
  }
  return x;
}
