import { readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { SegkitError } from "../core/errors.js";
import { pathExists, readJson, renameDurably, writeFileAtomic } from "../io/fs.js";
import { saveModel } from "../models/io.js";
import type { TrainOptimizer } from "./optimizer.js";

/**
 * Checkpoint directories (`last/`, `best/` in a run directory), written so that a kill at any moment leaves the
 * previous checkpoint loadable:
 *   1. every file goes into `.NAME.new/` (each file itself written atomically);
 *   2. the current `NAME/`, if any, is renamed to `.NAME.old/`;
 *   3. `.NAME.new/` is renamed to `NAME/`;
 *   4. `.NAME.old/` is removed.
 * Between 2 and 3 there is no `NAME/`, but `.NAME.old/` is complete: `checkpointDir` finds it. (Surviving a power
 * loss would also need fsyncs, which this does not do; a killed process is covered.)
 *
 * A checkpoint holds:
 * - `model.json` + `model.weights.bin`: the model (`saveModel`; `loadModel` reads it back);
 * - `optimizer.json` + `optimizer.weights.bin`: the optimizer's configuration, scalars and slots (Adam moments or
 *   momentum buffers, in the order of the model's trainable weights) in tfjs's weight format;
 * - `train-state.json`: where training stands (epoch, schedule, monitor, history), for resuming;
 * - `card.json`: the model card (see `card.ts`).
 */

export const CHECKPOINT_FILES = [
  "model.json",
  "model.weights.bin",
  "optimizer.json",
  "optimizer.weights.bin",
  "train-state.json",
  "card.json",
] as const;

interface OptimizerFile {
  format: "segkit-optimizer";
  config: TrainOptimizer["config"];
  scalars: Record<string, number>;
  weightSpecs: tf.io.WeightsManifestEntry[];
}

/** Writes `files` (name -> JSON-able value or bytes) and the model and optimizer as checkpoint `dir/name/`. */
export async function writeCheckpoint(
  dir: string,
  name: string,
  model: tf.LayersModel,
  optimizer: TrainOptimizer,
  json: Record<string, unknown>,
): Promise<string> {
  const target = join(dir, name);
  const fresh = join(dir, `.${name}.new`);
  const old = join(dir, `.${name}.old`);
  await rm(fresh, { recursive: true, force: true });
  // 1. everything into the fresh directory
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
  // 2.-4. swap it in
  if (await pathExists(target)) {
    await rm(old, { recursive: true, force: true });
    await rename(target, old);
  }
  await renameDurably(fresh, target);
  await rm(old, { recursive: true, force: true });
  return target;
}

/**
 * The complete checkpoint `dir/name/` (or the previous one left by a kill mid-swap), or null when there is none.
 * Complete: it holds `marker`, written last (`train-state.json`; `model.json` is enough to predict).
 */
export async function checkpointDir(dir: string, name: string, marker = "train-state.json"): Promise<string | null> {
  for (const candidate of [join(dir, name), join(dir, `.${name}.old`)]) {
    if (await pathExists(join(candidate, marker))) return candidate;
  }
  return null;
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
