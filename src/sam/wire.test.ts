import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decodeEmbeddingWire,
  decodeLowResWire,
  type EmbeddingWire,
  encodeEmbeddingWire,
  encodeLowResWire,
  LOW_RES_WIRE_TYPE,
} from "./wire.js";

const sample = (): EmbeddingWire => ({
  layout: "split",
  originalSize: { height: 480, width: 640 },
  inputSize: { height: 768, width: 1024 },
  embeddings: {
    image_embeddings: { data: Float32Array.from({ length: 24 }, (_, i) => i * 0.5 - 3), dims: [1, 2, 3, 4] },
    interm_embeddings: { data: Float32Array.of(Math.PI, -0, Number.MAX_VALUE, 1e-40), dims: [4] },
  },
});

/** Wire bytes with the JSON header replaced (the preamble's length and the padding recomputed). */
function withHeader(header: unknown, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const start = Math.ceil((8 + json.length) / 4) * 4;
  const out = new Uint8Array(start + data.length);
  out.set([0x53, 0x4b, 0x45, 0x31]);
  new DataView(out.buffer).setUint32(4, json.length, true);
  out.set(json, 8);
  out.set(data, start);
  return out;
}

const header = (bytes: Uint8Array) => {
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true);
  return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
};

describe("embedding wire format", () => {
  it("lays out SKE1, the header length, the JSON header, padding to 4, then float32 LE data", () => {
    const e = sample();
    const bytes = encodeEmbeddingWire(e);
    assert.deepEqual([...bytes.subarray(0, 4)], [0x53, 0x4b, 0x45, 0x31]);
    const n = new DataView(bytes.buffer).getUint32(4, true);
    const start = Math.ceil((8 + n) / 4) * 4;
    assert.ok(start - (8 + n) < 4);
    assert.ok(bytes.subarray(8 + n, start).every((b) => b === 0));
    assert.deepEqual(header(bytes), {
      layout: "split",
      originalSize: { height: 480, width: 640 },
      inputSize: { height: 768, width: 1024 },
      tensors: [
        { name: "image_embeddings", dims: [1, 2, 3, 4], offset: 0, length: 24 },
        { name: "interm_embeddings", dims: [4], offset: 96, length: 4 },
      ],
    });
    assert.equal(bytes.length, start + 4 * 28);
    const view = new DataView(bytes.buffer);
    assert.equal(view.getFloat32(start + 4, true), -2.5); // image_embeddings[1] = 0.5 - 3
    assert.equal(view.getFloat32(start + 96, true), Math.fround(Math.PI));
  });

  it("round-trips bit-exactly, also from an unaligned view into a larger buffer", () => {
    const e = sample();
    const bytes = encodeEmbeddingWire(e);
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 1);
    for (const input of [bytes, shifted.subarray(1, 1 + bytes.length)]) {
      const back = decodeEmbeddingWire(input);
      assert.equal(back.layout, "split");
      assert.deepEqual(back.originalSize, e.originalSize);
      assert.deepEqual(back.inputSize, e.inputSize);
      assert.deepEqual(Object.keys(back.embeddings), ["image_embeddings", "interm_embeddings"]);
      for (const [name, t] of Object.entries(e.embeddings)) {
        assert.deepEqual(back.embeddings[name]?.dims, t.dims);
        assert.deepEqual(back.embeddings[name]?.data, t.data);
      }
      assert.ok(Object.is(back.embeddings.interm_embeddings?.data[1], -0));
    }
  });

  it("encodes tensors that are views into larger buffers (only their own floats)", () => {
    const big = Float32Array.from({ length: 10 }, (_, i) => i);
    const e: EmbeddingWire = {
      ...sample(),
      layout: "transformers",
      embeddings: { a: { data: big.subarray(3, 7), dims: [2, 2] } },
    };
    const back = decodeEmbeddingWire(encodeEmbeddingWire(e));
    assert.equal(back.layout, "transformers");
    assert.deepEqual([...(back.embeddings.a?.data ?? [])], [3, 4, 5, 6]);
  });

  it("refuses to encode a tensor whose data does not match its dims", () => {
    const e = { ...sample(), embeddings: { x: { data: new Float32Array(5), dims: [2, 3] } } };
    assert.throws(() => encodeEmbeddingWire(e), /embedding `x` has 5 values for dims \[2,3\]/);
  });

  it("rejects every truncation with a clear error", () => {
    const bytes = encodeEmbeddingWire(sample());
    const n = new DataView(bytes.buffer).getUint32(4, true);
    const cases: [number, RegExp][] = [
      [0, /0 bytes, shorter than the 8-byte preamble/],
      [7, /7 bytes, shorter than the 8-byte preamble/],
      [8, new RegExp(`header of ${n} bytes but only 0 follow`)],
      [8 + n - 1, /header of .* but only/],
      [bytes.length - 1, /tensor `interm_embeddings` ends at byte 112 of a 111-byte data section/],
      [bytes.length - 16, /tensor `interm_embeddings` ends at byte 112 of a 96-byte data section/],
    ];
    for (const [length, message] of cases) {
      assert.throws(
        () => decodeEmbeddingWire(bytes.subarray(0, length)),
        (err: Error) =>
          err.name === "SegkitError" &&
          /^bad embedding \(application\/x-segkit-embedding\)/.test(err.message) &&
          message.test(err.message),
        `truncated to ${length}`,
      );
    }
  });

  it("rejects a bad magic, a huge or non-JSON header, and headers inconsistent with the data", () => {
    const good = encodeEmbeddingWire(sample());
    const data = good.subarray(good.length - 4 * 28);
    const h = header(good);
    const bad = (mutate: (h: Record<string, unknown> & { tensors: Record<string, unknown>[] }) => void) => {
      const copy = structuredClone(h);
      mutate(copy);
      return withHeader(copy, data);
    };
    const magic = good.slice();
    magic[3] = 0x32;
    assert.throws(() => decodeEmbeddingWire(magic), /does not start with SKE1/);
    const huge = good.slice();
    new DataView(huge.buffer).setUint32(4, 0xffffffff, true);
    assert.throws(() => decodeEmbeddingWire(huge), /header length 4294967295 exceeds 1048576/);
    const notJson = good.slice();
    notJson[8] = 0x7b + 1; // "{" -> "|"
    assert.throws(() => decodeEmbeddingWire(notJson), /header is not UTF-8 JSON/);
    assert.throws(() => decodeEmbeddingWire(withHeader([1, 2], data)), /unknown layout undefined/);
    const t = (x: { tensors: Record<string, unknown>[] }, i: number) => x.tensors[i] as Record<string, unknown>;
    const cases: [Parameters<typeof bad>[0], RegExp][] = [
      [
        (x) => {
          x.layout = "sam3";
        },
        /unknown layout "sam3"/,
      ],
      [
        (x) => {
          x.originalSize = { height: 0, width: 3 };
        },
        /`originalSize` must be \{ height, width \} positive integers/,
      ],
      [
        (x) => {
          x.inputSize = undefined;
        },
        /`inputSize` must be/,
      ],
      [
        (x) => {
          x.tensors = [];
        },
        /`tensors` must be a non-empty array/,
      ],
      [
        (x) => {
          t(x, 1).name = "image_embeddings";
        },
        /tensor name "image_embeddings" is missing, empty or repeated/,
      ],
      [
        (x) => {
          t(x, 0).dims = [1, -2];
        },
        /dims must be non-negative integers/,
      ],
      [
        (x) => {
          t(x, 0).length = 23;
        },
        /length 23 does not match dims \[1,2,3,4\]/,
      ],
      [
        (x) => {
          t(x, 1).offset = 98;
        },
        /offset 98 must be a non-negative multiple of 4/,
      ],
      [
        (x) => {
          t(x, 1).offset = 100;
        },
        /ends at byte 116 of a 112-byte data section/,
      ],
      [
        (x) => {
          x.tensors = x.tensors.slice(0, 1);
        },
        /data section holds 112 bytes, the tensors 96/,
      ],
    ];
    for (const [mutate, message] of cases) assert.throws(() => decodeEmbeddingWire(bad(mutate)), message);
    // the unmodified header through the same helper decodes: the cases above fail for their own reason
    assert.deepEqual(
      decodeEmbeddingWire(bad(() => {})).embeddings.image_embeddings?.data,
      sample().embeddings.image_embeddings?.data,
    );
  });
});

describe("low-res answer wire format", () => {
  const area = 256 * 256;
  const answer = {
    layout: "split" as const,
    originalSize: { height: 48, width: 64 },
    inputSize: { height: 768, width: 1024 },
    scores: Float32Array.of(0.9, 0.25),
    lowRes: Float32Array.from({ length: 2 * area }, (_, i) => (i % 7) - 3.5),
  };

  it("round-trips scores and logits with the sizes", () => {
    const back = decodeLowResWire(encodeLowResWire(answer));
    assert.deepEqual(back, answer);
  });

  it("names its own type and the missing tensor in errors, not the embedding's", () => {
    assert.throws(
      () => decodeLowResWire(new Uint8Array(3)),
      (err: Error) => err.message.includes(LOW_RES_WIRE_TYPE),
    );
    assert.throws(() => decodeLowResWire(encodeEmbeddingWire(sample())), /bad low-res answer .*lacks the `scores`/);
    const short = encodeEmbeddingWire({
      ...answer,
      embeddings: {
        scores: { data: answer.scores, dims: [2] },
        low_res_masks: { data: answer.lowRes.subarray(0, area), dims: [1, 256, 256] },
      },
    });
    assert.throws(() => decodeLowResWire(short), /65536 logits for 2 candidates of 65536/);
    assert.throws(() => encodeLowResWire({ ...answer, scores: Float32Array.of(1) }), /131072 logits for 1 candidates/);
  });
});
