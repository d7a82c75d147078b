import { readFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { SegkitError } from "../core/errors.js";
import { writeFileAtomic } from "../io/fs.js";

/**
 * TF.js layers models on the local disk, in the format of `tensorflowjs_converter` and tfjs-node's `file://`:
 * `model.json` (topology + weights manifest) beside its weight shards. `@tensorflow/tfjs` has no file handler in
 * Node without tfjs-node, so this is one. `path` is a `.json` file or a directory holding `model.json`.
 * Saving writes one shard, `<name>.weights.bin`, then the JSON, each atomically (temporary file + rename), so a
 * crash never leaves a JSON that points at missing or partial weights.
 */
export function fileHandler(path: string): { save: tf.io.SaveHandler; load: tf.io.LoadHandler } {
  const jsonPath = path.endsWith(".json") ? path : join(path, "model.json");
  return {
    async save(artifacts) {
      const shard = `${basename(jsonPath, ".json")}.weights.bin`;
      const weights = artifacts.weightData ? tf.io.CompositeArrayBuffer.join(artifacts.weightData) : new ArrayBuffer(0);
      const modelJSON: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology ?? {},
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        weightsManifest: [{ paths: [shard], weights: artifacts.weightSpecs ?? [] }],
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
      };
      await writeFileAtomic(join(dirname(jsonPath), shard), new Uint8Array(weights));
      await writeFileAtomic(jsonPath, JSON.stringify(modelJSON));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
    async load() {
      const modelJSON = await readJSON(jsonPath);
      if (!modelJSON.modelTopology && !modelJSON.weightsManifest) {
        throw new SegkitError("not a TF.js model (no modelTopology, no weightsManifest)", { file: jsonPath });
      }
      return tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
        const shards = manifest.flatMap((group) => group.paths.map((p) => join(dirname(jsonPath), p)));
        const buffers = await Promise.all(shards.map(readBinary));
        return [tf.io.getWeightSpecs(manifest), tf.io.CompositeArrayBuffer.join(buffers)];
      });
    },
  };
}

async function readJSON(file: string): Promise<tf.io.ModelJSON> {
  const text = new TextDecoder().decode(await readBinary(file));
  try {
    return JSON.parse(text) as tf.io.ModelJSON;
  } catch (err) {
    throw new SegkitError("not valid JSON", { file, cause: err });
  }
}

async function readBinary(file: string): Promise<ArrayBuffer> {
  try {
    const bytes = await readFile(file);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SegkitError(code === "ENOENT" ? "file not found" : `cannot read (${code})`, { file, cause: err });
  }
}

/** Saves the topology, the weights and the segkit metadata (not the optimizer) under `path`. */
export async function saveModel(model: tf.LayersModel, path: string): Promise<void> {
  await model.save(fileHandler(path));
}

/** Loads a model saved by `saveModel` (or any TF.js layers model.json on disk). */
export async function loadModel(path: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(fileHandler(path));
}

/** The weights of a TF.js model on disk by their saved names (`layer/weight`); the caller disposes them. */
export async function readWeights(path: string): Promise<tf.NamedTensorMap> {
  const artifacts = await fileHandler(path).load();
  return tf.io.decodeWeights(artifacts.weightData ?? new ArrayBuffer(0), artifacts.weightSpecs ?? []);
}
