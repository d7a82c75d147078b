/**
 * The embedding wire format, `application/x-segkit-embedding`: one image's SAM embeddings as the studio server
 * sends them to the browser (and, as `application/x-segkit-low-res`, a decoder's low-res answer). Pure (no Node
 * modules): the browser bundle decodes it.
 *
 * Bytes: `SKE1` (4), u32 little-endian header length N, N bytes of UTF-8 JSON
 * `{ layout, originalSize: { height, width }, inputSize: { height, width },
 *    tensors: [{ name, dims, offset (bytes from the start of the data section), length (floats) }] }`,
 * zero padding to a multiple of 4 bytes from the start, then the float32 little-endian data.
 */
import { SegkitError } from "../core/errors.js";
import { SAM_LAYOUTS, type SamEmbeddings, type SamLayout, type SamTensor } from "./decoder-feeds.js";
import { SAM_LOW_RES_SIZE, type SamSize } from "./transforms.js";

export const EMBEDDING_WIRE_TYPE = "application/x-segkit-embedding";
/**
 * A decoder's low-res answer in the same bytes: tensors `scores` `[n]` and `low_res_masks` `[n, 256, 256]` (logits),
 * best score first, with the image's sizes (what `POST /api/images/:id/decode` sends for this `Accept`).
 */
export const LOW_RES_WIRE_TYPE = "application/x-segkit-low-res";

/** One image's embeddings with the sizes the decoder's geometry needs. */
export interface EmbeddingWire {
  layout: SamLayout;
  originalSize: SamSize;
  inputSize: SamSize;
  embeddings: SamEmbeddings;
}

interface WireTensor {
  name: string;
  dims: number[];
  offset: number;
  length: number;
}

const MAGIC = [0x53, 0x4b, 0x45, 0x31]; // "SKE1"
/** Headers are a few hundred bytes; a larger one is not an embedding. */
const MAX_HEADER = 1 << 20;
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

const LOW_RES_AREA = SAM_LOW_RES_SIZE * SAM_LOW_RES_SIZE;
const align4 = (n: number) => Math.ceil(n / 4) * 4;
type Fail = (problem: string) => SegkitError;
const failFor =
  (what: string, type: string, writer: string): Fail =>
  (problem) =>
    new SegkitError(`bad ${what} (${type}): ${problem}`, {
      hint: `the body is truncated or was not written by ${writer}`,
    });
const fail = failFor("embedding", EMBEDDING_WIRE_TYPE, "encodeEmbeddingWire");
const failLowRes = failFor("low-res answer", LOW_RES_WIRE_TYPE, "encodeLowResWire");

/** The wire bytes of `e` (tensors in the record's order, back to back). */
export function encodeEmbeddingWire(e: EmbeddingWire): Uint8Array {
  const tensors: WireTensor[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(e.embeddings)) {
    if (t.data.length !== product(t.dims)) {
      throw new SegkitError(`embedding \`${name}\` has ${t.data.length} values for dims [${t.dims}]`);
    }
    tensors.push({ name, dims: [...t.dims], offset, length: t.data.length });
    offset += 4 * t.data.length;
  }
  const size = (s: SamSize) => ({ height: s.height, width: s.width });
  const header = new TextEncoder().encode(
    JSON.stringify({ layout: e.layout, originalSize: size(e.originalSize), inputSize: size(e.inputSize), tensors }),
  );
  const start = align4(8 + header.length);
  const out = new Uint8Array(start + offset);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(4, header.length, true);
  out.set(header, 8);
  for (const t of tensors) {
    const data = (e.embeddings[t.name] as SamTensor).data;
    const at = start + t.offset;
    if (LITTLE_ENDIAN) out.set(new Uint8Array(data.buffer, data.byteOffset, 4 * data.length), at);
    else {
      const view = new DataView(out.buffer, at, 4 * data.length);
      for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i] as number, true);
    }
  }
  return out;
}

/** Parses wire bytes; a SegkitError saying what is wrong for a truncated or inconsistent body. Data is copied. */
export function decodeEmbeddingWire(bytes: Uint8Array): EmbeddingWire {
  return decodeWire(bytes, fail);
}

/** A decoder's answer as `LOW_RES_WIRE_TYPE` carries it: candidates best first. */
export interface LowResAnswer {
  layout: SamLayout;
  originalSize: SamSize;
  inputSize: SamSize;
  /** `[n]`, best first. */
  scores: Float32Array;
  /** `[n, 256, 256]` logits, in the order of `scores`. */
  lowRes: Float32Array;
}

/** The `LOW_RES_WIRE_TYPE` bytes of an answer. */
export function encodeLowResWire(a: LowResAnswer): Uint8Array {
  const n = a.scores.length;
  if (a.lowRes.length !== n * LOW_RES_AREA) {
    throw new SegkitError(`low-res answer: ${a.lowRes.length} logits for ${n} candidates of ${LOW_RES_AREA}`);
  }
  const embeddings = {
    scores: { data: a.scores, dims: [n] },
    low_res_masks: { data: a.lowRes, dims: [n, SAM_LOW_RES_SIZE, SAM_LOW_RES_SIZE] },
  };
  return encodeEmbeddingWire({ layout: a.layout, originalSize: a.originalSize, inputSize: a.inputSize, embeddings });
}

/** Parses `LOW_RES_WIRE_TYPE` bytes; a SegkitError naming that type for a bad body. */
export function decodeLowResWire(bytes: Uint8Array): LowResAnswer {
  const { layout, originalSize, inputSize, embeddings } = decodeWire(bytes, failLowRes);
  const scores = embeddings.scores?.data;
  const lowRes = embeddings.low_res_masks?.data;
  if (!scores || !lowRes) throw failLowRes("it lacks the `scores` or `low_res_masks` tensor");
  if (lowRes.length !== scores.length * LOW_RES_AREA) {
    throw failLowRes(`${lowRes.length} logits for ${scores.length} candidates of ${LOW_RES_AREA}`);
  }
  return { layout, originalSize, inputSize, scores, lowRes };
}

function decodeWire(bytes: Uint8Array, fail: Fail): EmbeddingWire {
  if (bytes.length < 8) throw fail(`${bytes.length} bytes, shorter than the 8-byte preamble`);
  if (!MAGIC.every((b, i) => bytes[i] === b)) throw fail("does not start with SKE1");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(4, true);
  if (n > MAX_HEADER) throw fail(`header length ${n} exceeds ${MAX_HEADER}`);
  if (8 + n > bytes.length) throw fail(`header of ${n} bytes but only ${bytes.length - 8} follow the preamble`);
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (err) {
    throw fail(`header is not UTF-8 JSON (${(err as Error).message})`);
  }
  if (!h || typeof h !== "object") throw fail("header is not a JSON object");
  const layout = h.layout as SamLayout;
  if (!SAM_LAYOUTS.includes(layout)) throw fail(`unknown layout ${JSON.stringify(h.layout)}`);
  const originalSize = wireSize(h.originalSize, "originalSize", fail);
  const inputSize = wireSize(h.inputSize, "inputSize", fail);
  if (!Array.isArray(h.tensors) || h.tensors.length === 0) throw fail("`tensors` must be a non-empty array");
  const start = align4(8 + n);
  const dataBytes = bytes.length - start;
  const embeddings: Record<string, SamTensor> = {};
  let end = 0;
  for (const t of h.tensors as Partial<WireTensor>[]) {
    const { name, dims, offset, length } = t ?? {};
    if (typeof name !== "string" || !name || Object.hasOwn(embeddings, name)) {
      throw fail(`tensor name ${JSON.stringify(name)} is missing, empty or repeated`);
    }
    if (!Array.isArray(dims) || !dims.every((d) => Number.isInteger(d) && d >= 0)) {
      throw fail(`tensor \`${name}\`: dims must be non-negative integers, got ${JSON.stringify(dims)}`);
    }
    if (!Number.isInteger(length) || length !== product(dims)) {
      throw fail(`tensor \`${name}\`: length ${length} does not match dims [${dims}]`);
    }
    if (!Number.isInteger(offset) || (offset as number) < 0 || (offset as number) % 4 !== 0) {
      throw fail(`tensor \`${name}\`: offset ${offset} must be a non-negative multiple of 4`);
    }
    const from = offset as number;
    const to = from + 4 * (length as number);
    if (to > dataBytes)
      throw fail(`tensor \`${name}\` ends at byte ${to} of a ${Math.max(0, dataBytes)}-byte data section`);
    end = Math.max(end, to);
    embeddings[name] = { data: readFloats(bytes, start + from, length as number), dims: [...dims] };
  }
  if (end !== dataBytes) throw fail(`data section holds ${dataBytes} bytes, the tensors ${end}`);
  return { layout, originalSize, inputSize, embeddings };
}

function wireSize(v: unknown, key: string, fail: Fail): SamSize {
  const s = v as Partial<SamSize> | null;
  const ok = (x: unknown) => Number.isInteger(x) && (x as number) > 0;
  if (!s || typeof s !== "object" || !ok(s.height) || !ok(s.width)) {
    throw fail(`\`${key}\` must be { height, width } positive integers, got ${JSON.stringify(v)}`);
  }
  return { height: s.height as number, width: s.width as number };
}

function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** `length` float32 LE values at byte `at` of `bytes`, copied (any alignment). */
function readFloats(bytes: Uint8Array, at: number, length: number): Float32Array {
  const out = new Float32Array(length);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bytes.subarray(at, at + 4 * length));
  else {
    const view = new DataView(bytes.buffer, bytes.byteOffset + at, 4 * length);
    for (let i = 0; i < length; i++) out[i] = view.getFloat32(4 * i, true);
  }
  return out;
}
