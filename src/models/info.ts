import * as tf from "@tensorflow/tfjs";
import { SegkitError } from "../core/errors.js";

/**
 * Size and cost of a model, per image.
 *
 * FLOPs CONVENTION: 2 x multiply-accumulates of Conv2D, DepthwiseConv2D, Conv2DTranspose and Dense, from the
 * kernel shapes and the static layer shapes (input size fixed at build time); biases, batch norm,
 * activations, pooling, resizing, padding, add and concatenate are not counted (they are a few percent).
 * - Conv2D: H_out * W_out * kh * kw * C_in * C_out
 * - DepthwiseConv2D: H_out * W_out * kh * kw * C_in * depthMultiplier
 * - Conv2DTranspose: H_in * W_in * kh * kw * C_in * C_out (each input pixel scatters a kernel)
 * - Dense: (positions) * C_in * units
 */
export interface ModelInfo {
  /** All weights, including batch norm moving statistics. */
  totalParams: number;
  trainableParams: number;
  /** FLOPs for one image (see the convention above). */
  flops: number;
}

const product = (xs: readonly number[]) => xs.reduce((p, x) => p * x, 1);

/** Spatial positions of the layer's `[B, ...spatial, C]` input or output (batch and channels left out). */
function positions(layer: tf.layers.Layer, side: "input" | "output"): number {
  const s = (layer[side] as tf.SymbolicTensor).shape;
  const spatial = s.slice(1, -1);
  if (spatial.some((d) => d == null)) {
    throw new SegkitError(
      `modelInfo: layer ${layer.name} has a dynamic shape ${JSON.stringify(s)}; FLOPs need fixed sizes`,
    );
  }
  return product(spatial as number[]);
}

function layerMacs(layer: tf.layers.Layer): number {
  const kind = layer.getClassName();
  const kernel = layer.weights.find((w) => /kernel$/.test(w.originalName))?.shape as number[] | undefined;
  if (!kernel) return 0;
  switch (kind) {
    case "Conv2D":
    case "DepthwiseConv2D":
    case "Dense":
      return positions(layer, "output") * product(kernel);
    case "Conv2DTranspose":
      return positions(layer, "input") * product(kernel);
    default:
      return 0;
  }
}

export function modelInfo(model: tf.LayersModel): ModelInfo {
  let macs = 0;
  const visit = (m: tf.LayersModel) => {
    for (const layer of m.layers) {
      if (layer instanceof tf.LayersModel) visit(layer);
      else macs += layerMacs(layer);
    }
  };
  visit(model);
  const count = (ws: readonly tf.LayerVariable[]) => ws.reduce((n, w) => n + product(w.shape as number[]), 0);
  return { totalParams: count(model.weights), trainableParams: count(model.trainableWeights), flops: 2 * macs };
}
