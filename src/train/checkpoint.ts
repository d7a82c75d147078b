import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { SegkitError } from "../core/errors.js";
import { readJson, writeFileAtomic } from "../io/fs.js";
import { replaceCheckpoint } from "../models/checkpoint.js";
import { saveModel } from "../models/io.js";
import type { TrainOptimizer } from "./optimizer.js";

/**
 * What training adds to a checkpoint (the layout, the swap and the file names are models/checkpoint.ts's):
 * `optimizer.json` + `optimizer.weights.bin`, the optimizer's configuration, scalars and slots (Adam moments or
 * momentum buffers, in the order of the model's trainable weights) in tfjs's weight format.
 */

interface OptimizerFile {
  format: "segkit-optimizer";
  config: TrainOptimizer["config"];
  scalars: Record<string, number>;
  weightSpecs: tf.io.WeightsManifestEntry[];
}

/** Writes `json` (file name -> JSON-able value), the model and the optimizer as checkpoint `dir/name/`. */
export async function writeCheckpoint(
  dir: string,
  name: string,
  model: tf.LayersModel,
  optimizer: TrainOptimizer,
  json: Record<string, unknown>,
): Promise<string> {
  return replaceCheckpoint(dir, name, async (fresh) => {
    await saveModel(model, fresh);
    const { tensors, scalars } = await optimizer.getState();
    try {
      const { data, specs } = await tf.io.encodeWeights(tensors);
      const file: OptimizerFile = { format: "segkit-optimizer", config: optimizer.config, scalars, weightSpecs: specs };
      await writeFileAtomic(join(fresh, "optimizer.weights.bin"), new Uint8Array(data));
      await writeFileAtomic(join(fresh, "optimizer.json"), JSON.stringify(file));
    } finally {
      tf.dispose(tensors.map((t) => t.tensor));
    }
    for (const [file, value] of Object.entries(json)) {
      await writeFileAtomic(join(fresh, file), `${JSON.stringify(value, null, 2)}\n`);
    }
  });
}

/** Restores a checkpoint's optimizer state into `optimizer` (fresh, of the same configuration). */
export async function loadOptimizerState(path: string, optimizer: TrainOptimizer): Promise<void> {
  const jsonPath = join(path, "optimizer.json");
  const file = await readJson<OptimizerFile>(jsonPath);
  if (file.format !== "segkit-optimizer" || file.config?.name !== optimizer.config.name) {
    throw new SegkitError(`not a saved ${optimizer.config.name} optimizer state`, { file: jsonPath });
  }
  const bytes = await readFile(join(path, "optimizer.weights.bin"));
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const map = tf.io.decodeWeights(buffer, file.weightSpecs);
  // decodeWeights gives a map keyed by name: rebuild the saved order from the specs
  const tensors = file.weightSpecs.map((s) => ({ name: s.name, tensor: map[s.name] as tf.Tensor }));
  try {
    await optimizer.setState(tensors, file.scalars);
  } finally {
    tf.dispose(Object.values(map));
  }
}
