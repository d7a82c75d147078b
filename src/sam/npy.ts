import { SegkitError } from "../core/errors.js";
import type { SamTensor } from "./model.js";

/**
 * NumPy `.npy` files (format version 1.0, https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html)
 * for float32 tensors: what `np.load` reads and `np.save` writes, so logits pass between segkit and Python.
 *
 * Layout: the magic `\x93NUMPY`, version bytes 1 0, a little-endian uint16 header length, then an ASCII dict
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (256, 256), }` padded with spaces and a newline so that the
 * data starts at a multiple of 64 bytes, then the values row-major (C order), little-endian.
 */

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** `t` as the bytes of an `.npy` file: `<f4`, C order, shape `t.dims` (a 1-tuple written `(n,)`). */
export function encodeNpy(t: SamTensor): Uint8Array {
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (count !== t.data.length) {
    throw new SegkitError(`tensor dims [${t.dims.join(",")}] hold ${count} values, the data ${t.data.length}`);
  }
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(", ")})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = `${header.padEnd(total - 10 - 1)}\n`;
  const out = new Uint8Array(total + 4 * count);
  out.set(MAGIC);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  const view = new DataView(out.buffer, total);
  for (let i = 0; i < count; i++) view.setFloat32(4 * i, t.data[i] as number, true);
  return out;
}

/**
 * Decodes an `.npy` file holding float32 or float64 values (either byte order, C order) into float32 with its
 * shape. Other dtypes, Fortran order and object arrays are errors naming `file`.
 */
export function decodeNpy(bytes: Uint8Array, file = "<npy>"): SamTensor {
  const bad = (what: string) =>
    new SegkitError(what, { file, hint: "expected a float32/float64 array saved with np.save" });
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) throw bad("not an .npy file (no \\x93NUMPY magic)");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6] ?? 0;
  if (major < 1 || major > 3) throw bad(`unknown .npy format version ${major}`);
  const lenBytes = major === 1 ? 2 : 4;
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes + headerLen;
  if (start > bytes.length) throw bad("truncated header");
  const header = new TextDecoder("latin1").decode(bytes.subarray(8 + lenBytes, start));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw bad(`unreadable header ${header}`);
  if (fortran === "True") throw bad("Fortran-ordered arrays are not supported");
  const m = /^([<>|=])f([48])$/.exec(descr);
  if (!m) throw bad(`dtype ${descr} is not supported`);
  const little = m[1] !== ">";
  const size = Number(m[2]);
  const dims = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map(Number);
  if (!dims.every((d) => Number.isInteger(d) && d >= 0)) throw bad(`bad shape (${shapeText})`);
  const count = dims.reduce((a, b) => a * b, 1);
  if (bytes.length - start < count * size) {
    throw bad(`truncated data: shape (${dims.join(", ")}) needs ${count * size} bytes, found ${bytes.length - start}`);
  }
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const o = start + i * size;
    data[i] = size === 4 ? view.getFloat32(o, little) : view.getFloat64(o, little);
  }
  return { data, dims };
}
