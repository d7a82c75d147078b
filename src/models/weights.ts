import * as tf from "@tensorflow/tfjs";
import { SegkitError } from "../core/errors.js";
import type { SegkitModelMetadata } from "./registry.js";
import { readWeightFile, type TensorOrigin, type WeightFile, type WeightFileFormat } from "./weight-files.js";

type Layer = tf.layers.Layer;

/**
 * The encoder's layers: the last declared stage's layer and everything it depends on (input and rescaling
 * included), read from the metadata `createModel` stores in the model (kept by save and load).
 */
export function encoderLayers(model: tf.LayersModel): Layer[] {
  const meta = model.getUserDefinedMetadata() as SegkitModelMetadata | undefined;
  const last = meta?.segkit?.encoder?.at(-1)?.layer;
  if (!last) throw new SegkitError(`model "${model.name}" has no segkit encoder metadata; build it with createModel`);
  const seen = new Set<Layer>();
  const stack = [model.getLayer(last)];
  for (let layer = stack.pop(); layer; layer = stack.pop()) {
    if (seen.has(layer)) continue;
    seen.add(layer);
    for (const node of layer.inboundNodes) stack.push(...node.inboundLayers);
  }
  return model.layers.filter((l) => seen.has(l));
}

const inferenceCalls = new WeakMap<Layer, Layer["call"]>();

/**
 * Freezes (or, with `frozen` false, unfreezes) the encoder: its weights stop training, and its batch norm
 * layers run in inference mode (moving statistics used, not updated), as Keras does for non-trainable batch
 * norm (tfjs would otherwise keep updating them in `fit`). Compile (again) after changing it.
 * Not saved: freeze again after `loadModel`.
 */
export function freezeEncoder(model: tf.LayersModel, frozen = true): void {
  for (const layer of encoderLayers(model)) {
    layer.trainable = !frozen;
    if (layer.getClassName() !== "BatchNormalization") continue;
    const original = inferenceCalls.get(layer);
    if (frozen && !original) {
      const call = layer.call;
      inferenceCalls.set(layer, call);
      layer.call = (inputs, kwargs) => call.call(layer, inputs, { ...kwargs, training: false });
    } else if (!frozen && original) {
      layer.call = original;
      inferenceCalls.delete(layer);
    }
  }
}

/** `layer/weight` (the last two parts of a saved weight name, so that model-name prefixes do not matter). */
const weightKey = (name: string) => name.split("/").slice(-2).join("/");
const shape = (s: readonly (number | null)[]) => `[${s.join(",")}]`;

/** What `loadEncoderWeightFile` loaded: recorded in a training run's card. */
export interface EncoderWeightsInfo {
  /** The file as given. */
  file: string;
  format: WeightFileFormat;
  /** The names the file used: segkit's (Keras) own, or a PyTorch naming mapped onto them. */
  naming: WeightFile["naming"];
  /** Weight tensors copied into the model. */
  tensors: number;
}

/**
 * Copies encoder weights into `model` by layer name, from:
 * - a TF.js layers model on disk (`model.json` path or its directory: a model saved by `saveModel`, or Keras weights
 *   converted with `tensorflowjs_converter`), or a model in memory;
 * - a Keras weight file in HDF5 (`model.save_weights("x.h5")`, the keras.applications downloads such as
 *   `mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5`, Keras 3 `.weights.h5`);
 * - a `.safetensors` file with torchvision or timm MobileNetV2 names (mapped and transposed, see `weight-files.ts`
 *   and `encoders/mobilenet-v2-names.ts`).
 * Files are told apart by content. Every encoder weight must be found with the same shape, otherwise nothing is
 * copied and the error names the file and the missing and mismatched weights with both shapes (and the name the
 * file gives them). Other weights in the source are ignored. Returns the number of weight tensors copied.
 */
export async function loadEncoderWeights(model: tf.LayersModel, source: string | tf.LayersModel): Promise<number> {
  if (typeof source === "string") return (await loadEncoderWeightFile(model, source)).tensors;
  const named = Object.fromEntries(source.weights.map((w) => [w.originalName, w.read()]));
  return assignEncoderWeights(model, named, new Map(), `model "${source.name}"`);
}

/** `loadEncoderWeights` from a file, saying what the file was. */
export async function loadEncoderWeightFile(model: tf.LayersModel, file: string): Promise<EncoderWeightsInfo> {
  const read = await readWeightFile(file);
  try {
    const tensors = assignEncoderWeights(model, read.tensors, read.origins, file);
    return { file, format: read.format, naming: read.naming, tensors };
  } finally {
    tf.dispose(read.tensors);
  }
}

/** The all-or-nothing copy of `loadEncoderWeights`; `named` keyed `layer/weight` or `layer/#index`. */
function assignEncoderWeights(
  model: tf.LayersModel,
  named: tf.NamedTensorMap,
  origins: ReadonlyMap<string, TensorOrigin>,
  from: string,
): number {
  const available = new Map(Object.entries(named).map(([name, t]) => [weightKey(name), t]));
  const problems: string[] = [];
  const plan: [Layer, tf.Tensor[]][] = [];
  for (const layer of encoderLayers(model)) {
    const values = layer.weights.map((w, i) => {
      const key = `${layer.name}/${weightKey(w.originalName).split("/")[1]}`;
      const found = available.get(key) ?? available.get(`${layer.name}/#${i}`);
      const origin = origins.get(key);
      if (!found) problems.push(`${key} ${shape(w.shape)} missing${origin ? ` (as ${origin.name})` : ""}`);
      else if (!tf.util.arraysEqual(found.shape, w.shape as number[])) {
        const as = origin?.shape ? ` (${origin.name} ${shape(origin.shape)} in the file)` : "";
        problems.push(`${key} is ${shape(found.shape)} there${as}, the model needs ${shape(w.shape)}`);
      }
      return found as tf.Tensor;
    });
    if (values.length) plan.push([layer, values]);
  }
  if (problems.length) {
    const more = problems.length > 5 ? `; and ${problems.length - 5} more` : "";
    throw new SegkitError(`encoder weights do not fit: ${problems.slice(0, 5).join("; ")}${more}`, {
      file: from,
      hint: "is it the same encoder and width (alpha)?",
    });
  }
  for (const [layer, values] of plan) layer.setWeights(values);
  return plan.reduce((n, [, values]) => n + values.length, 0);
}
