import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import onnxProto from "onnx-proto";
import { rewriteDecoder } from "./rewrite.js";
import { createOnnxSession, type Float32Input, type OnnxInput } from "./session.js";
import { createSplitOnnxSession } from "./split.js";

const { onnx } = onnxProto;
/** What changes per prompt when no mask is given (the split bakes mask_input and has_mask_input). */
const VARYING = ["point_coords", "point_labels", "orig_im_size"];
const models = join(import.meta.dirname, "..", "sam", "fixtures", "models");

/** Deterministic values in [-scale, scale) (xorshift). */
function noise(n: number, seed: number, scale: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 2 ** 32 - 0.5) * 2 * scale;
  });
}

/** The official decoder's feeds: `points` (x, y, label) in the 1024 frame, the padding point added. */
function feeds(dim: number, points: [number, number, number][], seed: number): Record<string, OnnxInput> {
  const all = [...points, [0, 0, -1]];
  return {
    image_embeddings: { data: noise(dim * 64 * 64, seed, 1), dims: [1, dim, 64, 64] },
    point_coords: { data: Float32Array.from(all.flatMap((p) => p.slice(0, 2))), dims: [1, all.length, 2] },
    point_labels: { data: Float32Array.from(all.map((p) => p[2])), dims: [1, all.length] },
    mask_input: { data: new Float32Array(256 * 256), dims: [1, 1, 256, 256] },
    has_mask_input: { data: Float32Array.of(0), dims: [1] },
    orig_im_size: { data: Float32Array.of(480, 640), dims: [2] },
  };
}

describe("rewriteDecoder", () => {
  it("rewrites SAM's output upscaling and cross attentions; every output as the original graph's", async () => {
    // SAM's prompt encoder + mask decoder at width 32 (scripts/make_sam_arch_fixture.py); a Node Buffer, as model.ts
    // reads it (protobufjs then decodes weights as views into it)
    const bytes = await readFile(join(models, "sam-arch", "decoder.onnx"));
    const rewritten = await rewriteDecoder(bytes, VARYING);
    assert.ok(rewritten);
    assert.deepEqual(rewritten.applied, ["upscaling", "attention"]);
    const count = (b: Uint8Array, op: string) =>
      onnx.ModelProto.decode(b).graph?.node?.filter((n) => n.opType === op).length;
    assert.deepEqual([count(bytes, "ConvTranspose"), count(rewritten.bytes, "ConvTranspose")], [2, 0]);
    // the masks' product and the two attentions of tokens to the image computed per prompt (block 2, final)
    assert.equal(count(rewritten.bytes, "FusedMatMul"), 3);
    const a = await createOnnxSession(bytes, { threads: 1 });
    const b = await createOnnxSession(rewritten.bytes, { threads: 1 });
    // as model.ts runs it: the image-only part once per image
    const split = await createSplitOnnxSession(rewritten.bytes, {
      threads: 1,
      varying: VARYING,
      baked: {
        mask_input: { data: new Float32Array(256 * 256), dims: [1, 1, 256, 256] },
        has_mask_input: { data: Float32Array.of(0), dims: [1] },
      },
      outputs: ["iou_predictions", "low_res_masks"],
    });
    assert.ok(split);
    try {
      const prompts: [number, number, number][][] = [
        [[300, 200, 1]],
        [
          [100, 700, 1],
          [900, 50, 0],
          [10, 20, 2],
          [600, 500, 3],
        ],
      ];
      for (const [k, points] of prompts.entries()) {
        const input = feeds(32, points, k + 1);
        const want = await a.run(input);
        // masks from the rewritten graph, the rest from its split (which must not decline the prompt)
        const parts = await split.run(input, ["iou_predictions", "low_res_masks"]);
        assert.ok(parts, `${points.length} points: the split declined`);
        const got: Record<string, Float32Input> = { masks: (await b.run(input)).masks as Float32Input, ...parts };
        for (const name of ["masks", "iou_predictions", "low_res_masks"]) {
          const w = want[name]?.data ?? new Float32Array();
          const g = got[name]?.data ?? new Float32Array();
          assert.deepEqual(got[name]?.dims, want[name]?.dims, name);
          const scale = w.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          const diff = w.reduce((m, v, i) => Math.max(m, Math.abs(v - (g[i] as number))), 0);
          // measured: |diff| <= 9e-8 on logits up to ~0.2
          assert.ok(scale > 0.01 && diff < 1e-5 * Math.max(1, scale), `${name}: |diff| ${diff}, values up to ${scale}`);
        }
      }
    } finally {
      await a.dispose();
      await b.dispose();
      await split.dispose();
    }
  });

  it("undefined for a graph without the pattern", async () => {
    const bytes = new Uint8Array(await readFile(join(models, "split", "decoder.onnx")));
    assert.equal(await rewriteDecoder(bytes, VARYING), undefined);
  });
});
