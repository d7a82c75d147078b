import { open } from "node:fs/promises";
import { resolve } from "node:path";
import type { Group } from "h5wasm";
import { SegkitError } from "../core/errors.js";
import type { SafetensorsEntry } from "./safetensors.js";

/**
 * A reader of Keras weight files in HDF5, through h5wasm (the HDF5 C library compiled to WebAssembly):
 *
 * - Keras 2 (`model.save_weights("x.h5")`, the keras.applications downloads such as
 *   `mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5`, and `model.save("x.h5")` whose weights
 *   sit under `model_weights/`): root attribute `layer_names` (or `layer_names0`, `layer_names1`, ... when Keras
 *   split a long list), one group per layer with attribute `weight_names` (`Conv1/kernel:0`, ...), each weight a
 *   dataset at `<layer>/<weight name>`. Keys: the weight name's last two parts without `:0` (`Conv1/kernel`), so a
 *   nested model's layers come out under their own names.
 * - Keras 3 (`model.save_weights("x.weights.h5")`): `layers/<layer>/vars/0, 1, ...` in the layer's weight order.
 *   Keys: `<layer>/#<index>` (`Conv1/#0`), matched by position (`loadEncoderWeights`).
 *
 * Values come out as float32 with their Keras shapes (HWIO kernels, `[kh, kw, C, 1]` depthwise kernels).
 */

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** Whether `bytes` (a file's first 8 or more) start with the HDF5 signature. */
export const isHdf5 = (bytes: Uint8Array) => HDF5_SIGNATURE.every((b, i) => bytes[i] === b);

type Hdf5 = typeof import("h5wasm");

let h5: Promise<Hdf5> | null = null;
/** h5wasm for Node (host files through Emscripten's NODERAWFS), loaded on first use. */
function h5wasm(): Promise<Hdf5> {
  h5 ??= import("h5wasm/node").then(async (m) => {
    // HDF5 errors as thrown JS errors, not a stack printed on stderr and a dead handle
    (await m.ready).activate_throwing_error_handler();
    return m as unknown as Hdf5;
  });
  return h5;
}

/** A string-list attribute, whole or in Keras' chunks `name0`, `name1`, ... (`load_attributes_from_hdf5_group`). */
function stringsAttr(group: Group, name: string): string[] | null {
  const attrs = group.attrs;
  const list = (a: unknown) => (Array.isArray(a) ? a.map(String) : typeof a === "string" ? [a] : []);
  if (attrs[name]) return list(attrs[name].value);
  if (!attrs[`${name}0`]) return null;
  const out: string[] = [];
  for (let i = 0; attrs[`${name}${i}`]; i++) out.push(...list(attrs[`${name}${i}`]?.value));
  return out;
}

/** `Conv1/kernel:0` (or `Conv1/kernel`) in layer group `layer` -> `Conv1/kernel`. */
function weightKey(layer: string, weightName: string): string {
  const parts = weightName.replace(/:\d+$/, "").split("/");
  return parts.length >= 2 ? parts.slice(-2).join("/") : `${layer}/${parts[0]}`;
}

/** Reads every weight of a Keras `.h5` / `.weights.h5` file (see the module comment), keyed `layer/weight`. */
export async function readKerasH5(file: string): Promise<Map<string, SafetensorsEntry>> {
  const path = resolve(file);
  // h5wasm does not throw on a missing or foreign file (HDF5 prints its error stack): check first
  const handle = await open(path, "r").catch((err: NodeJS.ErrnoException) => {
    throw new SegkitError(err.code === "ENOENT" ? "file not found" : `cannot read (${err.code})`, { file });
  });
  try {
    const head = new Uint8Array(8);
    await handle.read(head, 0, 8, 0);
    if (!isHdf5(head)) throw new SegkitError("not an HDF5 file (no HDF5 signature)", { file });
  } finally {
    await handle.close();
  }
  const { File, Dataset, Group } = await h5wasm();
  const fail = (problem: string) => new SegkitError(problem, { file });
  let f: InstanceType<typeof File>;
  try {
    f = new File(path, "r");
  } catch (err) {
    throw hdf5Error(err, file);
  }
  try {
    const out = new Map<string, SafetensorsEntry>();
    const read = (key: string, entity: unknown) => {
      if (!(entity instanceof Dataset)) throw fail(`${key} is not a dataset`);
      const shape = entity.shape ?? [];
      const value = entity.value;
      const isFloat = value instanceof Float32Array || value instanceof Float64Array;
      out.set(key, {
        dtype: entity.dtype.toString(),
        shape: [...shape],
        values: isFloat ? Float32Array.from(value) : null,
      });
    };
    const root = stringsAttr(f, "layer_names") ? f : f.get("model_weights");
    if (root instanceof Group && stringsAttr(root, "layer_names")) {
      for (const layer of stringsAttr(root, "layer_names") ?? []) {
        const group = root.get(layer);
        if (!(group instanceof Group)) throw fail(`layer "${layer}" is listed in layer_names but has no group`);
        for (const name of stringsAttr(group, "weight_names") ?? []) read(weightKey(layer, name), group.get(name));
      }
      return out;
    }
    const layers = f.get("layers");
    if (layers instanceof Group) {
      // Keras 3: layers/<name>/vars/<i>, and nested models' layers below layers/<model>/layers/...
      const walk = (g: Group) => {
        for (const name of g.keys()) {
          const sub = g.get(name);
          if (!(sub instanceof Group)) continue;
          const vars = sub.get("vars");
          if (vars instanceof Group) {
            for (const i of vars.keys()) read(`${name}/#${i}`, vars.get(i));
          }
          const inner = sub.get("layers");
          if (inner instanceof Group) walk(inner);
        }
      };
      walk(layers);
      return out;
    }
    throw fail("not a Keras weight file: no layer_names attribute (Keras 2 .h5) and no layers/ group (Keras 3)");
  } catch (err) {
    throw hdf5Error(err, file);
  } finally {
    f.close();
  }
}

/** An HDF5 library error (its message is HDF5's error stack) as one line: the innermost cause. */
function hdf5Error(err: unknown, file: string): unknown {
  if (err instanceof SegkitError) return err;
  const text = err instanceof Error ? err.message : String(err);
  const causes = [...text.matchAll(/#\d+: .* in \S+\(\): (.*)/g)].map((m) => m[1]);
  return new SegkitError(`cannot read the HDF5 file (damaged or truncated?): ${causes.at(-1) ?? text}`, {
    file,
    cause: err,
  });
}
