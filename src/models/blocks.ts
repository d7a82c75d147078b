import * as tf from "@tensorflow/tfjs";
import { batchNormalization } from "./batch-norm.js";

/**
 * The building blocks the architectures share. Every block takes and returns `[B, H, W, C]` symbolic tensors
 * (NHWC, float32) and names its layers `${name}_conv`, `${name}_bn`, ... so that saved weights read by name.
 */
export type Symbolic = tf.SymbolicTensor;

/** `layer(x)` typed for the single-output layers used here. */
export function apply(layer: tf.layers.Layer, x: Symbolic | Symbolic[]): Symbolic {
  return layer.apply(x) as Symbolic;
}

export interface ConvBlockOptions {
  filters: number;
  kernelSize?: number;
  strides?: number;
  /** Conv2DTranspose instead of Conv2D (with stride 2 it doubles H and W). */
  transpose?: boolean;
  /** Batch norm between the convolution and the ReLU (the convolution then has no bias). */
  batchNorm?: boolean;
  /** Dropout rate after the ReLU; 0 for none. */
  dropout?: number;
}

/** Conv (or transposed conv), 'same' padding -> [batch norm] -> ReLU -> [dropout]. `[B,H,W,C]` -> `[B,H/s,W/s,filters]` (x s when transposed). */
export function convBlock(x: Symbolic, name: string, o: ConvBlockOptions): Symbolic {
  const batchNorm = o.batchNorm ?? false;
  const args = {
    filters: o.filters,
    kernelSize: o.kernelSize ?? 3,
    strides: o.strides ?? 1,
    padding: "same" as const,
    useBias: !batchNorm,
    name: `${name}_conv`,
  };
  let y = apply(o.transpose ? tf.layers.conv2dTranspose(args) : tf.layers.conv2d(args), x);
  if (batchNorm) y = apply(batchNormalization({ name: `${name}_bn` }), y);
  y = apply(tf.layers.reLU({ name: `${name}_relu` }), y);
  if (o.dropout) y = apply(tf.layers.dropout({ rate: o.dropout, name: `${name}_dropout` }), y);
  return y;
}

/** Two 3x3 convBlocks (the U-Net "double conv"); the first one carries `strides`, the second the dropout. */
export function doubleConv(x: Symbolic, name: string, o: ConvBlockOptions): Symbolic {
  const first = convBlock(x, `${name}_a`, { ...o, dropout: 0 });
  return convBlock(first, `${name}_b`, { ...o, strides: 1 });
}

/**
 * The last layer: `[B,H,W,C]` -> logits `[B,H,W,numClasses]` (or `[B,2H,2W,numClasses]` with `upsample`, a
 * stride-2 Conv2DTranspose as in the pix2pix decoder). No activation: losses and predictions apply
 * sigmoid (numClasses 1) or softmax (numClasses >= 2) themselves, for numerical stability.
 */
export function logitsHead(x: Symbolic, numClasses: number, o: { kernelSize: number; upsample?: boolean }): Symbolic {
  const args = { filters: numClasses, kernelSize: o.kernelSize, padding: "same" as const, name: "logits" };
  return apply(o.upsample ? tf.layers.conv2dTranspose({ ...args, strides: 2 }) : tf.layers.conv2d(args), x);
}

/** The `[B,H,W,3]` 0..255 float32 image input and its rescaling (to `x * scale + offset`) inside the model. */
export function imageInput(inputSize: readonly [number, number], scale: number, offset = 0): [Symbolic, Symbolic] {
  const input = tf.input({ shape: [inputSize[0], inputSize[1], 3], name: "image" });
  return [input, apply(tf.layers.rescaling({ scale, offset, name: "rescaling" }), input)];
}
