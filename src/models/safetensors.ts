import { open } from "node:fs/promises";
import { SegkitError } from "../core/errors.js";

/**
 * A reader of safetensors files (Hugging Face's format, what `safetensors.torch.save_file` and timm / torchvision
 * exports write): an 8-byte little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {...}}`, then the raw data, little-endian,
 * row-major, offsets relative to the end of the header.
 *
 * Untrusted input: the header is at most `MAX_HEADER_BYTES`, every tensor's offsets must lie inside the data and
 * hold exactly shape x item size bytes; anything else is one error naming the file and the tensor.
 */

/** The header limit of the reference implementation (safetensors' MAX_HEADER_SIZE). */
export const MAX_HEADER_BYTES = 100_000_000;

const ITEM_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

/** The float dtypes read as float32 values. */
export const SAFETENSORS_FLOAT_DTYPES = ["F32", "F16", "BF16", "F64"] as const;

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** The values as float32 for the float dtypes; null for the others (integer counters such as num_batches_tracked). */
  values: Float32Array | null;
}

/** IEEE half-precision bits -> float. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function decode(dtype: string, bytes: Uint8Array): Float32Array | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = ITEM_BYTES[dtype] ?? 1;
  const out = new Float32Array(bytes.byteLength / size);
  if (dtype === "F32") for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  else if (dtype === "F64") for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(8 * i, true);
  else if (dtype === "F16") for (let i = 0; i < out.length; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
  else if (dtype === "BF16") {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < out.length; i++) bits[i] = view.getUint16(2 * i, true) << 16;
  } else return null;
  return out;
}

const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/** Parses a whole safetensors file held in memory; `file` names it in errors. */
export function parseSafetensors(bytes: Uint8Array, file: string): Map<string, SafetensorsEntry> {
  const fail = (problem: string) => new SegkitError(`not a valid safetensors file: ${problem}`, { file });
  if (bytes.byteLength < 8) throw fail(`${bytes.byteLength} bytes, less than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = view.getBigUint64(0, true);
  if (headerBytes > BigInt(Math.min(MAX_HEADER_BYTES, bytes.byteLength - 8))) {
    throw fail(`header length ${headerBytes} exceeds the file (${bytes.byteLength} bytes) or ${MAX_HEADER_BYTES}`);
  }
  const dataStart = 8 + Number(headerBytes);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (err) {
    throw fail(`the header is not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) throw fail("the header is not a map");
  const dataBytes = bytes.byteLength - dataStart;
  const out = new Map<string, SafetensorsEntry>();
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") continue;
    const { dtype, shape, data_offsets: offsets } = (info ?? {}) as Record<string, unknown>;
    const size = typeof dtype === "string" ? ITEM_BYTES[dtype] : undefined;
    if (typeof dtype !== "string" || size === undefined)
      throw fail(`tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every(isCount)) throw fail(`tensor "${name}" has a bad shape`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      throw fail(`tensor "${name}" has bad data_offsets`);
    }
    const [begin, end] = offsets as [number, number];
    const need = shape.reduce((a: number, b: number) => a * b, size);
    if (end < begin || end > dataBytes) {
      throw fail(`tensor "${name}" at bytes [${begin}, ${end}) lies outside the ${dataBytes} bytes of data`);
    }
    if (end - begin !== need) {
      throw fail(`tensor "${name}" ${dtype} [${shape.join(",")}] needs ${need} bytes, its offsets give ${end - begin}`);
    }
    out.set(name, {
      dtype,
      shape: [...shape],
      values: decode(dtype, bytes.subarray(dataStart + begin, dataStart + end)),
    });
  }
  return out;
}

/** The largest safetensors file read (whole, into memory): far above any encoder's weights. */
export const MAX_SAFETENSORS_BYTES = 2 ** 31 - 1;

/** Reads a safetensors file from disk (see `parseSafetensors`). */
export async function readSafetensors(file: string): Promise<Map<string, SafetensorsEntry>> {
  const handle = await open(file, "r").catch((err: NodeJS.ErrnoException) => {
    throw new SegkitError(err.code === "ENOENT" ? "file not found" : `cannot read (${err.code})`, { file });
  });
  try {
    const { size } = await handle.stat();
    if (size > MAX_SAFETENSORS_BYTES) {
      throw new SegkitError(`${size} bytes, more than the ${MAX_SAFETENSORS_BYTES} read`, { file });
    }
    return parseSafetensors(await handle.readFile(), file);
  } finally {
    await handle.close();
  }
}
