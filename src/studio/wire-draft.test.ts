import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeEmbeddingWire, encodeEmbeddingWire } from "./wire-draft.js";

test("embedding wire (draft): round trip, float data 4-byte aligned, truncation refused", () => {
  const e = {
    layout: "split" as const,
    originalSize: { height: 3, width: 5 },
    inputSize: { height: 614, width: 1024 },
    embeddings: {
      image_embeddings: { data: Float32Array.of(1.5, -2, 3.25, 0), dims: [1, 1, 2, 2] },
      a: { data: Float32Array.of(7), dims: [1] },
    },
  };
  const bytes = encodeEmbeddingWire(e);
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), "SKE1");
  const n = new DataView(bytes.buffer).getUint32(4, true);
  const head = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  assert.deepEqual(head.tensors, [
    { name: "a", dims: [1], offset: 0, length: 1 },
    { name: "image_embeddings", dims: [1, 1, 2, 2], offset: 4, length: 4 },
  ]);
  const start = Math.ceil((8 + n) / 4) * 4;
  assert.equal(bytes.length, start + 20);
  assert.deepEqual(Array.from(new Float32Array(bytes.buffer.slice(start + 4))), [1.5, -2, 3.25, 0]);
  assert.deepEqual(decodeEmbeddingWire(bytes), e);
  assert.throws(() => decodeEmbeddingWire(bytes.subarray(0, bytes.length - 1)), /truncated/);
  assert.throws(() => decodeEmbeddingWire(bytes.subarray(0, 10)), /truncated header/);
  assert.throws(() => decodeEmbeddingWire(Uint8Array.of(1, 2, 3, 4, 0, 0, 0, 0)), /magic/);
});
