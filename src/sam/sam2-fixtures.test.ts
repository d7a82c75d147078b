import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { rleArea } from "../masks/rle.js";
import { createOnnxSession, type OnnxValueInfo } from "../onnx/session.js";

// The SAM 2 fixtures written by scripts/fixtures/make_sam2.py: every graph declares the inputs and outputs the SAM 2
// predictors will feed and read (names, element types, shapes; strings are dynamic dimensions), and the references
// are well-formed. See src/sam/fixtures/sam2/README.md.
const fixture = (path: string) => fileURLToPath(new URL(`./fixtures/${path}`, import.meta.url));

type Io = [name: string, type: string, shape: (number | string)[]];
const C = 32;
const M = 8;

const GRAPHS: Record<string, { inputs: Io[]; outputs: Io[] }> = {
  "models/sam2-split/sam2_tiny.encoder.onnx": {
    inputs: [["image", "float32", [1, 3, 1024, 1024]]],
    outputs: [
      ["high_res_feats_0", "float32", [1, C / 8, 256, 256]],
      ["high_res_feats_1", "float32", [1, C / 4, 128, 128]],
      ["image_embed", "float32", [1, C, 64, 64]],
    ],
  },
  "models/sam2-split/sam2_tiny.decoder.onnx": {
    inputs: [
      ["image_embed", "float32", [1, C, 64, 64]],
      ["high_res_feats_0", "float32", [1, C / 8, 256, 256]],
      ["high_res_feats_1", "float32", [1, C / 4, 128, 128]],
      ["point_coords", "float32", ["num_labels", "num_points", 2]],
      ["point_labels", "float32", ["num_labels", "num_points"]],
      ["mask_input", "float32", ["num_labels", 1, 256, 256]],
      ["has_mask_input", "float32", ["num_labels"]],
    ],
    outputs: [
      ["masks", "float32", [-1, -1, -1, -1]],
      ["iou_predictions", "float32", [-1, 3]],
    ],
  },
  "models/sam2-ailia/image_encoder_tiny.onnx": {
    inputs: [["input_image", "float32", [1, 3, 1024, 1024]]],
    outputs: [
      ["vision_features", "float32", [1, C, 64, 64]],
      ["vision_pos_enc_0", "float32", [1, C, 256, 256]],
      ["vision_pos_enc_1", "float32", [1, C, 128, 128]],
      ["vision_pos_enc_2", "float32", [1, C, 64, 64]],
      ["backbone_fpn_0", "float32", [1, C / 8, 256, 256]],
      ["backbone_fpn_1", "float32", [1, C / 4, 128, 128]],
      ["backbone_fpn_2", "float32", [1, C, 64, 64]],
    ],
  },
  "models/sam2-ailia/prompt_encoder_tiny.onnx": {
    inputs: [
      ["coords", "float32", [1, "n", 2]],
      ["labels", "int32", [1, "n"]],
      ["masks", "float32", [1, 1, 256, 256]],
      ["masks_enable", "int32", [1]],
    ],
    outputs: [
      ["sparse_embeddings", "float32", [1, "n_plus_1", C]],
      ["dense_embeddings", "float32", [-1, C, 64, 64]],
      ["dense_pe", "float32", [1, C, 64, 64]],
    ],
  },
  "models/sam2-ailia/mask_decoder_tiny.onnx": {
    inputs: [
      ["image_embeddings", "float32", [1, C, 64, 64]],
      ["image_pe", "float32", [1, C, 64, 64]],
      ["sparse_prompt_embeddings", "float32", [1, "n", C]],
      ["dense_prompt_embeddings", "float32", [1, C, 64, 64]],
      ["high_res_features1", "float32", [1, C / 8, 256, 256]],
      ["high_res_features2", "float32", [1, C / 4, 128, 128]],
    ],
    outputs: [
      ["masks", "float32", [1, -1, 256, 256]],
      ["iou_pred", "float32", [-1, 4]],
      ["sam_tokens_out", "float32", [-1, -1, C]],
      ["object_score_logits", "float32", [-1, 1]],
    ],
  },
  "models/sam2-ailia/memory_attention_tiny.onnx": {
    inputs: [
      ["curr", "float32", [4096, 1, C]],
      ["memory_1", "float32", ["n_1", 1, M]],
      ["memory_2", "float32", ["n_2", 1, M]],
      ["curr_pos", "float32", [4096, 1, C]],
      ["memory_pos_1", "float32", ["n_1", 1, M]],
      ["memory_pos_2", "float32", ["n_2", 1, M]],
      ["attention_mask_1", "bool", ["n_1", 1]],
      ["attention_mask_2", "bool", ["n_2", 1]],
    ],
    outputs: [["pix_feat", "float32", [4096, 1, C]]],
  },
  "models/sam2-ailia/memory_encoder_tiny.onnx": {
    inputs: [
      ["pix_feat", "float32", [1, C, 64, 64]],
      ["masks", "float32", [1, 1, 1024, 1024]],
    ],
    outputs: [
      ["vision_features", "float32", [1, M, 64, 64]],
      ["vision_pos_enc", "float32", [1, M, 64, 64]],
    ],
  },
  "models/sam2-ailia/mlp_tiny.onnx": {
    inputs: [["x", "float32", ["n", C]]],
    outputs: [["x_out", "float32", ["n", C]]],
  },
  "models/sam2-ailia/obj_ptr_tpos_proj_tiny.onnx": {
    inputs: [["x", "float32", ["n", C]]],
    outputs: [["x_out", "float32", ["n", M]]],
  },
};

/** Declared I/O, symbolic dimensions the exporter named itself (not given in dynamic_axes) written as -1. */
function declared(values: readonly OnnxValueInfo[], expected: Io[]): Io[] {
  return values.map((v, i) => {
    const want = expected[i]?.[2] ?? [];
    const shape = v.shape.map((d, k) => (typeof d === "string" && want[k] === -1 ? -1 : d));
    return [v.name, v.type, shape];
  });
}

describe("SAM 2 fixtures", () => {
  for (const [path, io] of Object.entries(GRAPHS)) {
    test(`${path} declares the expected inputs and outputs`, async () => {
      const session = await createOnnxSession(fixture(path));
      try {
        assert.deepEqual(declared(session.inputs, io.inputs), io.inputs);
        assert.deepEqual(declared(session.outputs, io.outputs), io.outputs);
      } finally {
        await session.dispose();
      }
    });
  }

  test("obj_ptr_tpos_proj is a linear map C -> M (n rows in, n rows out; zero in gives the bias for every row)", async () => {
    const session = await createOnnxSession(fixture("models/sam2-ailia/obj_ptr_tpos_proj_tiny.onnx"));
    try {
      const out = await session.run({ x: { data: new Float32Array(3 * C), dims: [3, C] } });
      const y = out.x_out;
      assert.ok(y);
      assert.deepEqual(y.dims, [3, M]);
      const rows = [0, 1, 2].map((r) => Array.from(y.data.subarray(r * M, (r + 1) * M)));
      assert.deepEqual(rows[1], rows[0]);
      assert.deepEqual(rows[2], rows[0]);
      assert.ok(rows[0]?.some((v) => v !== 0));
    } finally {
      await session.dispose();
    }
  });

  test("constants_tiny.json holds every tensor with the graphs' widths, and the scalars", () => {
    const k = JSON.parse(readFileSync(fixture("models/sam2-ailia/constants_tiny.json"), "utf8"));
    assert.equal(k.no_mem_embed.length, C);
    assert.equal(k.no_mem_pos_enc.length, C);
    assert.equal(k.no_obj_ptr.length, C);
    assert.equal(k.no_obj_embed_spatial.length, M);
    assert.equal(k.maskmem_tpos_enc.length, 7);
    for (const row of k.maskmem_tpos_enc) assert.equal(row.length, M);
    assert.equal(k.mask_downsample_weight.length, 4);
    assert.equal(typeof k.mask_downsample_bias, "number");
    assert.deepEqual(
      [k.hidden_dim, k.mem_dim, k.image_size, k.num_maskmem, k.max_obj_ptrs_in_encoder],
      [C, M, 1024, 7, 16],
    );
    assert.deepEqual([k.sigmoid_scale_for_mem_enc, k.sigmoid_bias_for_mem_enc], [20, -10]);
    assert.deepEqual([k.dynamic_multimask_stability_delta, k.dynamic_multimask_stability_thresh], [0.05, 0.98]);
  });

  test("the references' masks are at image / frame size, and not all empty or full", () => {
    const img = JSON.parse(readFileSync(fixture("sam2/image-refs.json"), "utf8"));
    const sizes: Record<string, number[]> = { "a.png": [64, 96], "b.png": [100, 60] };
    let partial = 0;
    for (const c of img.cases) {
      assert.equal(c.masks.length, c.multimask ? 3 : 1, c.id);
      assert.equal(c.scores.length, c.masks.length, c.id);
      for (const m of c.masks) {
        assert.deepEqual(m.size, sizes[c.image]);
        const area = rleArea(m);
        if (area > 0 && area < m.size[0] * m.size[1]) partial++;
      }
    }
    assert.ok(partial > 10, `${partial} partial image masks`);
    const video = JSON.parse(readFileSync(fixture("sam2/video-refs.json"), "utf8"));
    assert.deepEqual([video.width, video.height, video.frames.length], [64, 48, 8]);
    for (const steps of Object.values(video.scenarios) as {
      frames: { objects: { mask: { size: number[] } }[] }[];
    }[][]) {
      for (const step of steps) {
        for (const f of step.frames) for (const o of f.objects) assert.deepEqual(o.mask.size, [48, 64]);
      }
    }
  });
});
