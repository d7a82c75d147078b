import { open, stat } from "node:fs/promises";
import * as tf from "@tensorflow/tfjs";
import { SegkitError } from "../core/errors.js";
import { detectTorchNaming, mobileNetV2TorchNames, type TorchNaming } from "./encoders/mobilenet-v2-names.js";
import { readWeights } from "./io.js";
import { isHdf5, readKerasH5 } from "./keras-h5.js";
import { readSafetensors, type SafetensorsEntry } from "./safetensors.js";

/**
 * Weight files of pretrained encoders, whatever wrote them, as tfjs tensors under segkit's names (`layer/weight`,
 * Keras' names): a TF.js layers model (`model.json` or its directory), a Keras `.h5` / `.weights.h5` file
 * (`keras-h5.ts`), or a `.safetensors` file (`safetensors.ts`) with torchvision or timm MobileNetV2 names, mapped by
 * the table of `encoders/mobilenet-v2-names.ts` (a safetensors file with other names keeps them). The format is
 * told by the content (HDF5 signature, JSON, safetensors header), not the extension.
 *
 * Batch norm epsilon: PyTorch's is 1e-5, segkit's (Keras') 1e-3. A torch `gamma` is scaled by
 * sqrt((var + 1e-3) / (var + 1e-5)) with that layer's `running_var`, so that in inference (a frozen encoder) the
 * layer computes exactly what it did in PyTorch; in training mode the batch statistics take over anyway.
 * Not adjusted, for fine-tuning to absorb: the input normalisation (segkit feeds the encoder x / 127.5 - 1; torch
 * models were trained on ImageNet mean / std) and stride-2 padding (Keras pads bottom-right, PyTorch both sides).
 */

export type WeightFileFormat = "tfjs" | "keras-h5" | "safetensors";

export interface TensorOrigin {
  name: string;
  shape: number[] | null;
}

export interface WeightFile {
  format: WeightFileFormat;
  /** The names the file uses: segkit's own (Keras, TF.js) or a PyTorch naming mapped onto them. */
  naming: "keras" | TorchNaming;
  /** `layer/weight` -> values in tfjs layout (Keras 3 files: `layer/#index`); the caller disposes them. */
  tensors: tf.NamedTensorMap;
  /** `layer/weight` -> the tensor's name in the file and its shape there (null: not in the file), where they differ. */
  origins: Map<string, TensorOrigin>;
}

/** PyTorch's BatchNorm2d epsilon and segkit's (Keras'). */
export const TORCH_BN_EPSILON = 1e-5;
export const KERAS_BN_EPSILON = 1e-3;

/** The format of a weight file or directory, from its first bytes. */
export async function weightFileFormat(path: string): Promise<WeightFileFormat> {
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw new SegkitError(err.code === "ENOENT" ? "file not found" : `cannot read (${err.code})`, { file: path });
  });
  if (info.isDirectory()) return "tfjs";
  const head = new Uint8Array(16);
  const handle = await open(path, "r");
  try {
    await handle.read(head, 0, 16, 0);
  } finally {
    await handle.close();
  }
  if (isHdf5(head)) return "keras-h5";
  const text = new TextDecoder().decode(head).trimStart();
  if (text.startsWith("{")) return "tfjs";
  if (info.size >= 8 && head[8] === 0x7b) return "safetensors"; // an 8-byte length, then the JSON header's "{"
  throw new SegkitError("not a weight file segkit reads", {
    file: path,
    hint: "give a TF.js model.json (or its directory), a Keras .h5 or a .safetensors file",
  });
}

/** Reads a weight file (see the module comment). */
export async function readWeightFile(path: string): Promise<WeightFile> {
  const format = await weightFileFormat(path);
  if (format === "tfjs") return { format, naming: "keras", tensors: await readWeights(path), origins: new Map() };
  const entries = format === "keras-h5" ? await readKerasH5(path) : await readSafetensors(path);
  const torch = format === "safetensors" ? detectTorchNaming(entries.keys()) : null;
  if (!torch) {
    const tensors: tf.NamedTensorMap = {};
    for (const [name, e] of entries) if (e.values) tensors[name] = tf.tensor(e.values, e.shape);
    return { format, naming: "keras", tensors, origins: new Map() };
  }
  const { tensors, origins } = fromTorch(entries, torch.naming, torch.prefix, path);
  return { format, naming: torch.naming, tensors, origins };
}

/** A torch state dict's MobileNetV2 tensors under segkit's names, in tfjs layout (see the name table). */
function fromTorch(
  entries: Map<string, SafetensorsEntry>,
  naming: TorchNaming,
  prefix: string,
  file: string,
): { tensors: tf.NamedTensorMap; origins: Map<string, TensorOrigin> } {
  const tensors: tf.NamedTensorMap = {};
  const origins = new Map<string, TensorOrigin>();
  try {
    for (const [name, target] of mobileNetV2TorchNames(naming)) {
      const e = entries.get(prefix + name);
      origins.set(target.key, { name: prefix + name, shape: e ? [...e.shape] : null });
      if (!e) continue;
      if (!e.values) throw new SegkitError(`tensor "${prefix}${name}" is ${e.dtype}, not a float type`, { file });
      let values = e.values;
      const variance = entries.get(`${prefix}${name.replace(/weight$/, "running_var")}`)?.values;
      if (target.key.endsWith("/gamma") && variance?.length === values.length) {
        values = values.map((g, i) => {
          const v = variance[i] as number;
          return g * Math.sqrt((v + KERAS_BN_EPSILON) / (v + TORCH_BN_EPSILON));
        });
      }
      const rank4 = e.shape.length === 4 && target.layout !== "bn";
      tensors[target.key] = tf.tidy(() => {
        const t = tf.tensor(values, e.shape);
        if (!rank4) return t;
        // OIHW -> HWIO; depthwise [C, 1, kh, kw] -> [kh, kw, C, 1]
        return t.transpose(target.layout === "conv" ? [2, 3, 1, 0] : [2, 3, 0, 1]);
      });
    }
  } catch (err) {
    tf.dispose(tensors);
    throw err;
  }
  return { tensors, origins };
}
