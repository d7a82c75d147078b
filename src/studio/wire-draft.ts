/**
 * DRAFT copy of the embedding wire format (STUDIO.md), to be replaced by `src/sam/wire.ts` (helper WEB) at merge:
 * same function names and shapes. `application/x-segkit-embedding`: `SKE1`, a u32 LE header length N, N bytes of
 * UTF-8 JSON `{ layout, originalSize, inputSize, tensors: [{ name, dims, offset, length }] }`, zero padding to a
 * multiple of 4 bytes from the start, then the float32 LE data (`offset` in bytes from the start of the data,
 * `length` in floats).
 */
import type { SamEmbeddings, SamLayout, SamTensor } from "../sam/model.js";
import type { SamSize } from "../sam/transforms.js";

export const EMBEDDING_WIRE_TYPE = "application/x-segkit-embedding";

export interface EmbeddingWire {
  layout: SamLayout;
  originalSize: SamSize;
  inputSize: SamSize;
  embeddings: SamEmbeddings;
}

const MAGIC = "SKE1";

export function encodeEmbeddingWire(e: EmbeddingWire): Uint8Array {
  let offset = 0;
  const names = Object.keys(e.embeddings).sort();
  const tensors = names.map((name) => {
    const t = e.embeddings[name] as SamTensor;
    const entry = { name, dims: t.dims, offset, length: t.data.length };
    offset += 4 * t.data.length;
    return entry;
  });
  const { layout, originalSize, inputSize } = e;
  const json = new TextEncoder().encode(JSON.stringify({ layout, originalSize, inputSize, tensors }));
  const start = Math.ceil((8 + json.length) / 4) * 4;
  const out = new Uint8Array(start + offset);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(4, json.length, true);
  out.set(json, 8);
  const data = new DataView(out.buffer, start);
  for (const [k, name] of names.entries()) {
    const values = (e.embeddings[name] as SamTensor).data;
    const at = (tensors[k] as { offset: number }).offset;
    for (let i = 0; i < values.length; i++) data.setFloat32(at + 4 * i, values[i] as number, true);
  }
  return out;
}

export function decodeEmbeddingWire(bytes: Uint8Array): EmbeddingWire {
  const fail = (why: string): never => {
    throw new Error(`not a segkit embedding: ${why}`);
  };
  if (bytes.length < 8 || new TextDecoder().decode(bytes.subarray(0, 4)) !== MAGIC) fail("no SKE1 magic");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(4, true);
  if (8 + n > bytes.length) fail("truncated header");
  let head: Omit<EmbeddingWire, "embeddings"> & {
    tensors: { name: string; dims: number[]; offset: number; length: number }[];
  };
  try {
    head = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch {
    return fail("header is not JSON");
  }
  if (!Array.isArray(head?.tensors)) fail("no tensors");
  const start = Math.ceil((8 + n) / 4) * 4;
  const embeddings: Record<string, SamTensor> = {};
  for (const t of head.tensors) {
    const count = Array.isArray(t.dims) ? t.dims.reduce((a, b) => a * b, 1) : -1;
    if (!Number.isInteger(t.length) || count !== t.length || !Number.isInteger(t.offset) || t.offset < 0) {
      fail(`tensor ${t.name}: dims and length disagree`);
    }
    if (start + t.offset + 4 * t.length > bytes.length) fail(`tensor ${t.name}: data truncated`);
    const data = new Float32Array(t.length);
    for (let i = 0; i < t.length; i++) data[i] = view.getFloat32(start + t.offset + 4 * i, true);
    embeddings[t.name] = { data, dims: t.dims };
  }
  return { layout: head.layout, originalSize: head.originalSize, inputSize: head.inputSize, embeddings };
}
