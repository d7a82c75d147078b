import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import { apply, imageInput, type Symbolic } from "../blocks.js";
import { declareEncoder, defineEncoder, type Encoder } from "./encoder.js";

/** The width multipliers Keras publishes ImageNet weights for. */
export const MOBILENET_V2_ALPHAS = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4] as const;
export type MobileNetV2Alpha = (typeof MOBILENET_V2_ALPHAS)[number];

/** MobileNetV2 1.0, as the TensorFlow segmentation tutorial uses it. */
export const DEFAULT_MOBILENETV2_ENCODER_OPTIONS = { alpha: 1.0 as MobileNetV2Alpha };

/** The MobileNetV2 encoder's options (shared with the `mobilenetv2-unet` preset). */
export const mobileNetV2EncoderOptions = {
  /** Width multiplier: channels x alpha, rounded to multiples of 8 (Keras). */
  alpha: z.literal(MOBILENET_V2_ALPHAS).default(DEFAULT_MOBILENETV2_ENCODER_OPTIONS.alpha),
};

export const MOBILENET_V2_STAGE_LAYERS = [
  "block_1_expand_relu",
  "block_3_expand_relu",
  "block_6_expand_relu",
  "block_13_expand_relu",
  "block_16_project",
] as const;

/** Keras `_make_divisible`: the nearest multiple of `divisor`, never more than 10% below `v`. */
export function makeDivisible(v: number, divisor = 8): number {
  const rounded = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  return rounded < 0.9 * v ? rounded + divisor : rounded;
}

/** [output filters (before alpha), stride, expansion] of blocks 0..16 (Keras `MobileNetV2`). */
const BLOCKS: ReadonlyArray<readonly [number, number, number]> = [
  [16, 1, 1],
  [24, 2, 6],
  [24, 1, 6],
  [32, 2, 6],
  [32, 1, 6],
  [32, 1, 6],
  [64, 2, 6],
  [64, 1, 6],
  [64, 1, 6],
  [64, 1, 6],
  [96, 1, 6],
  [96, 1, 6],
  [96, 1, 6],
  [160, 2, 6],
  [160, 1, 6],
  [160, 1, 6],
  [320, 1, 6],
];

const PAD_BOTTOM_RIGHT: [[number, number], [number, number]] = [
  [0, 1],
  [0, 1],
];
const bn = (name: string) => tf.layers.batchNormalization({ epsilon: 1e-3, momentum: 0.999, name });
const relu6 = (name: string) => tf.layers.reLU({ maxValue: 6, name });

/** Keras `_inverted_res_block`: [1x1 expand] -> 3x3 depthwise -> 1x1 linear project [+ residual]. */
function invertedResidual(
  inputs: Symbolic,
  id: number,
  [filters, stride, expansion]: readonly [number, number, number],
  taps: Map<string, Symbolic>,
): Symbolic {
  const inChannels = inputs.shape[3] as number;
  const outChannels = makeDivisible(Math.trunc(filters));
  const p = id ? `block_${id}_` : "expanded_conv_";
  let x = inputs;
  if (id) {
    const expand = tf.layers.conv2d({
      filters: expansion * inChannels,
      kernelSize: 1,
      useBias: false,
      name: `${p}expand`,
    });
    x = apply(relu6(`${p}expand_relu`), apply(bn(`${p}expand_BN`), apply(expand, x)));
    taps.set(`${p}expand_relu`, x);
  }
  // Keras pads stride-2 depthwise convs by (0, 1) on each axis (`correct_pad` for even sizes), then 'valid'.
  if (stride === 2) x = apply(tf.layers.zeroPadding2d({ padding: PAD_BOTTOM_RIGHT, name: `${p}pad` }), x);
  const depthwise = tf.layers.depthwiseConv2d({
    kernelSize: 3,
    strides: stride,
    padding: stride === 1 ? "same" : "valid",
    useBias: false,
    name: `${p}depthwise`,
  });
  x = apply(relu6(`${p}depthwise_relu`), apply(bn(`${p}depthwise_BN`), apply(depthwise, x)));
  const project = tf.layers.conv2d({ filters: outChannels, kernelSize: 1, useBias: false, name: `${p}project` });
  x = apply(project, x);
  taps.set(`${p}project`, x);
  if (id === 16) return x; // the encoder ends here: the tutorial's last skip is this conv's output
  x = apply(bn(`${p}project_BN`), x);
  return inChannels === outChannels && stride === 1 ? apply(tf.layers.add({ name: `${p}add` }), [inputs, x]) : x;
}

/**
 * MobileNetV2 (Sandler et al. 2018) as `keras.applications.MobileNetV2` builds it, with the same layer names
 * (Conv1, bn_Conv1, Conv1_relu, expanded_conv_*, block_1_expand ... block_16_project), so that Keras-application
 * weights converted to TF.js format load by name. Cut after `block_16_project`, like the encoder of the
 * TensorFlow segmentation tutorial. The input is rescaled to [-1, 1] (Keras `mobilenet_v2.preprocess_input`).
 *
 * Stages (the tutorial's skips), at a `[B,H,W,3]` input with H, W multiples of 32:
 * block_1_expand_relu `[B,H/2,W/2,·]`, block_3_expand_relu `H/4`, block_6_expand_relu `H/8`,
 * block_13_expand_relu `H/16`, block_16_project `[B,H/32,W/32,·]`.
 */
export function mobileNetV2Encoder(inputSize: readonly [number, number], alpha: MobileNetV2Alpha): Encoder {
  const [input, rescaled] = imageInput(inputSize, 1 / 127.5, -1);
  const conv1 = tf.layers.conv2d({
    filters: makeDivisible(32 * alpha),
    kernelSize: 3,
    strides: 2,
    padding: "same",
    useBias: false,
    name: "Conv1",
  });
  let x = apply(relu6("Conv1_relu"), apply(bn("bn_Conv1"), apply(conv1, rescaled)));
  const taps = new Map<string, Symbolic>();
  for (const [id, [filters, stride, expansion]] of BLOCKS.entries()) {
    x = invertedResidual(x, id, [filters * alpha, stride, expansion], taps);
  }
  return declareEncoder(
    input,
    MOBILENET_V2_STAGE_LAYERS.map((name) => taps.get(name) as Symbolic),
  );
}

export const MOBILENETV2_ENCODER = defineEncoder({
  description: "MobileNetV2 as keras.applications builds it (Keras layer names), stages at strides 2 to 32",
  schema: z.strictObject(mobileNetV2EncoderOptions),
  strides: () => [2, 4, 8, 16, 32],
  build: (inputSize, o) => mobileNetV2Encoder(inputSize, o.alpha),
});
