import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import onnxProto from "onnx-proto";
import { SegkitError } from "../core/errors.js";
import { valueInfo } from "../onnx/proto.js";
import { loadSamModel, SAM_PREPROCESS, type SamModel } from "./model.js";

// Tiny models from scripts/make_sam_fixtures.py. Their low-res logit of channel k at low-res pixel (i, j), centre
// (4j + 2, 4i + 2) in the 1024 frame, is 8 * sum_p w(label_p) * exp(-d^2 / (2 sigma_k^2)) - 2 + 0.01 * e_k
// (+ mask_input, + 4 inside a box), so differences between two prompts are known by hand.
const FIXTURES = join(import.meta.dirname, "fixtures", "models");
const SPLIT_SIGMAS = [48, 64, 96, 128];
const TRANSFORMERS_SIGMAS = [64, 96, 128];

const temps: string[] = [];
after(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

/** A temp directory holding copies of fixture files: `{ "name in dir": "path under FIXTURES" }`. */
async function modelDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "segkit-sam-model-"));
  temps.push(dir);
  for (const [to, from] of Object.entries(files)) {
    await mkdir(join(dir, to, ".."), { recursive: true });
    await copyFile(join(FIXTURES, from), join(dir, to));
  }
  return dir;
}

async function withModel<T>(dir: string, fn: (m: SamModel) => Promise<T>, options = {}): Promise<T> {
  const model = await loadSamModel(dir, { threads: 1, ...options });
  try {
    return await fn(model);
  } finally {
    await model.dispose();
    await model.dispose(); // a second time releases nothing (onnxruntime's release throws then)
  }
}

/** A deterministic RGB image [H,W,3] in 0..255. */
function pattern(h: number, w: number): Float32Array {
  const out = new Float32Array(h * w * 3);
  for (let i = 0; i < out.length; i++) out[i] = (i * 37 + Math.floor(i / 4099) * 11) % 256;
  return out;
}

/** SAM's preprocessing of a resized HWC image: normalise, to CHW, pad bottom-right with zeros to 1024. */
function toNchw(hwc: Float32Array, h: number, w: number): Float32Array {
  const S = 1024;
  const out = new Float32Array(3 * S * S);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        const v = hwc[(y * w + x) * 3 + c] ?? Number.NaN;
        out[c * S * S + y * S + x] = (v - (SAM_PREPROCESS.mean[c] ?? 0)) / (SAM_PREPROCESS.std[c] ?? 1);
      }
    }
  }
  return out;
}

/** |actual - expected| <= tol, with a message (assert.ok without one re-reads the source to write it: slow). */
function near(actual: number | undefined, expected: number, tol: number, what: string): void {
  assert.ok(actual !== undefined && Math.abs(actual - expected) <= tol, `${what}: ${actual}, expected ${expected}`);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return m;
}

/** The low-res value of channel k at pixel (i, j) of a [C,256,256] plane stack. */
function at(data: Float32Array, k: number, i: number, j: number): number {
  return data[k * 65536 + i * 256 + j] ?? Number.NaN;
}

/** 8 * exp(-d^2 / (2 sigma^2)): the fixture's bump of one point at low-res pixel (i, j). */
function bump(x: number, y: number, i: number, j: number, sigma: number): number {
  const dx = 4 * j + 2 - x;
  const dy = 4 * i + 2 - y;
  return 8 * Math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
}

const PIXELS: [number, number][] = [
  [93, 125], // the pixel holding (500, 375)
  [100, 130],
  [60, 150],
  [0, 0],
  [255, 255],
];

describe("loadSamModel: split layout (normalised NCHW encoder)", () => {
  test("encodes and decodes with the official signature; logits follow the prompt", async () => {
    await withModel(join(FIXTURES, "split"), async (m) => {
      assert.equal(m.layout, "split");
      assert.equal(m.encoderInput, "nchw");
      assert.equal(m.maskChannels, 4);
      assert.deepEqual(m.preprocess, SAM_PREPROCESS);
      assert.equal(m.files.encoder, join(FIXTURES, "split", "encoder.onnx"));
      assert.equal(m.files.decoder, join(FIXTURES, "split", "decoder.onnx"));

      const emb = await m.encode({ data: toNchw(pattern(683, 1024), 683, 1024), dims: [1, 3, 1024, 1024] });
      assert.deepEqual(Object.keys(emb), ["image_embeddings"]);
      assert.deepEqual(emb.image_embeddings?.dims, [1, 256, 64, 64]);

      const points = new Float32Array([500, 375, 0, 0]);
      const origSize = [480, 640] as const;
      const fg = await m.decode(emb, { points, labels: new Float32Array([1, -1]), origSize });
      const none = await m.decode(emb, { points, labels: new Float32Array([-1, -1]), origSize });
      assert.deepEqual(fg.lowRes.dims, [4, 256, 256]);
      assert.equal(fg.scores.length, 4);
      assert.equal(fg.masks, undefined);
      for (const [k, sigma] of SPLIT_SIGMAS.entries()) {
        for (const [i, j] of PIXELS) {
          const d = at(fg.lowRes.data, k, i, j) - at(none.lowRes.data, k, i, j);
          near(d, bump(500, 375, i, j, sigma), 1e-4, `channel ${k} (${i},${j})`);
        }
        // predicted IoU = sigmoid(mean low-res logit of the channel), the mean summed in float32 by onnxruntime
        let sum = 0;
        for (let p = 0; p < 65536; p++) sum += fg.lowRes.data[k * 65536 + p] ?? 0;
        near(fg.scores[k], 1 / (1 + Math.exp(-sum / 65536)), 1e-4, `score ${k}`);
      }
      const bg = await m.decode(emb, { points, labels: new Float32Array([0, -1]), origSize });
      // a background point subtracts the same bump
      near(at(bg.lowRes.data, 0, 93, 125) - at(none.lowRes.data, 0, 93, 125), -bump(500, 375, 93, 125, 48), 1e-4, "bg");
    });
  });

  test("mask_input is added to the logits; fullSize returns masks at the original size", async () => {
    await withModel(join(FIXTURES, "split"), async (m) => {
      const emb = { image_embeddings: { data: new Float32Array(256 * 64 * 64), dims: [1, 256, 64, 64] } };
      const prompt = {
        points: new Float32Array([500, 375]),
        labels: new Float32Array([1]),
        origSize: [750, 1000] as const,
      };
      const plain = await m.decode(emb, prompt, { fullSize: true });
      const withMask = await m.decode(emb, { ...prompt, maskInput: new Float32Array(65536).fill(3) });
      near(maxAbsDiff(withMask.lowRes.data, plain.lowRes.data), 3, 1e-5, "max difference");
      near(
        at(withMask.lowRes.data, 2, 10, 200) - at(plain.lowRes.data, 2, 10, 200),
        3,
        1e-5,
        "difference at (10, 200)",
      );
      // masks: [4,750,1000]; the 1024 frame maps to the original by x 1000/1024, so (500, 375) -> (488, 366)
      assert.deepEqual(plain.masks?.dims, [4, 750, 1000]);
      const masks = plain.masks?.data ?? new Float32Array();
      near(masks[366 * 1000 + 488], 5.9, 0.1, "positive at the point");
      near(masks[749 * 1000 + 999], -2, 0.05, "negative far from it");
      // a portrait original: the crop and resize follow orig_im_size
      const tall = await m.decode(emb, { ...prompt, origSize: [1500, 700] }, { fullSize: true });
      assert.deepEqual(tall.masks?.dims, [4, 1500, 700]);
    });
  });
});

describe("loadSamModel: a click runs the decoder's image-only part once per image", () => {
  test("the same low-res outputs as the whole graph (fullSize), for every point count, image and mask input", async () => {
    await withModel(join(FIXTURES, "split"), async (m) => {
      const embeddings = (seed: number) => ({
        image_embeddings: {
          data: Float32Array.from({ length: 256 * 64 * 64 }, (_, i) => Math.sin(i * 0.01 + seed)),
          dims: [1, 256, 64, 64],
        },
      });
      const a = embeddings(1);
      const b = embeddings(2);
      for (const [emb, n, mask] of [
        [a, 2, false],
        [a, 1, false],
        [b, 4, false],
        [a, 3, true],
        [b, 2, false],
      ] as const) {
        const prompt = {
          points: Float32Array.from({ length: 2 * n }, (_, i) => 200 + 97 * i),
          labels: Float32Array.from({ length: n }, (_, i) => (i === n - 1 ? -1 : 1)),
          origSize: [480, 640] as const,
          ...(mask ? { maskInput: new Float32Array(65536).fill(0.5) } : {}),
        };
        const click = await m.decode(emb, prompt);
        const whole = await m.decode(emb, prompt, { fullSize: true });
        assert.deepEqual(click.lowRes, whole.lowRes, `${n} points, mask ${mask}`);
        assert.deepEqual(click.scores, whole.scores, `${n} points, mask ${mask}: scores`);
      }
      a.image_embeddings.data[12345] = 7; // embeddings changed in place: the image-only part runs again
      const prompt = {
        points: Float32Array.of(300, 400, 0, 0),
        labels: Float32Array.of(1, -1),
        origSize: [480, 640] as const,
      };
      assert.deepEqual((await m.decode(a, prompt)).lowRes, (await m.decode(a, prompt, { fullSize: true })).lowRes);
    });
  });
});

describe("loadSamModel: split layout with a raw HWC encoder", () => {
  test("normalises and pads in the graph: same embeddings as the NCHW encoder on SAM's preprocessing", async () => {
    const image = pattern(683, 1024);
    const nchw = await withModel(join(FIXTURES, "split"), (m) =>
      m.encode({ data: toNchw(image, 683, 1024), dims: [1, 3, 1024, 1024] }),
    );
    await withModel(join(FIXTURES, "split-hwc"), async (m) => {
      assert.equal(m.layout, "split");
      assert.equal(m.encoderInput, "hwc");
      const hwc = await m.encode({ data: image, dims: [683, 1024, 3] });
      assert.deepEqual(hwc.image_embeddings?.dims, [1, 256, 64, 64]);
      const a = hwc.image_embeddings?.data ?? new Float32Array();
      near(maxAbsDiff(a, nchw.image_embeddings?.data ?? new Float32Array()), 0, 1e-4, "hwc vs nchw");
      // a portrait image, padded on the right
      const portrait = pattern(1024, 500);
      const p1 = await m.encode({ data: portrait, dims: [1024, 500, 3] });
      const p2 = await withModel(join(FIXTURES, "split"), (n) =>
        n.encode({ data: toNchw(portrait, 1024, 500), dims: [1, 3, 1024, 1024] }),
      );
      near(maxAbsDiff(p1.image_embeddings?.data ?? a, p2.image_embeddings?.data ?? a), 0, 1e-4, "portrait");
      await assert.rejects(m.encode({ data: new Float32Array(30), dims: [10, 1, 3] }), /max\(H, W\) = 1024/);
    });
  });
});

describe("loadSamModel: transformers.js layout", () => {
  test("reads preprocessor_config.json, feeds int64 labels and a box, returns 3 low-res candidates", async () => {
    const split = await withModel(join(FIXTURES, "split"), (m) =>
      m.encode({ data: toNchw(pattern(683, 1024), 683, 1024), dims: [1, 3, 1024, 1024] }),
    );
    await withModel(join(FIXTURES, "transformers"), async (m) => {
      assert.equal(m.layout, "transformers");
      assert.equal(m.encoderInput, "nchw");
      assert.equal(m.maskChannels, 3);
      assert.equal(m.acceptsBox, true);
      assert.equal(m.acceptsMaskInput, false);
      // 0.485 * 255 = 123.675, 0.229 * 255 = 58.395, ...
      assert.equal(m.preprocess.longestSide, 1024);
      assert.equal(m.preprocess.padSize, 1024);
      for (let c = 0; c < 3; c++) {
        near(m.preprocess.mean[c], SAM_PREPROCESS.mean[c] ?? 0, 1e-9, `mean ${c}`);
        near(m.preprocess.std[c], SAM_PREPROCESS.std[c] ?? 0, 1e-9, `std ${c}`);
      }
      const emb = await m.encode({ data: toNchw(pattern(683, 1024), 683, 1024), dims: [1, 3, 1024, 1024] });
      assert.deepEqual(Object.keys(emb).sort(), ["image_embeddings", "image_positional_embeddings"]);
      assert.deepEqual(emb.image_positional_embeddings?.dims, [1, 256, 64, 64]);
      const e = new Float32Array();
      near(maxAbsDiff(emb.image_embeddings?.data ?? e, split.image_embeddings?.data ?? e), 0, 1e-5, "vs split");

      const points = new Float32Array([500, 375]);
      const origSize = [683, 1024] as const;
      const fg = await m.decode(emb, { points, labels: new Float32Array([1]), origSize });
      const pad = await m.decode(emb, { points, labels: new Float32Array([-10]), origSize });
      assert.deepEqual(fg.lowRes.dims, [3, 256, 256]);
      assert.equal(fg.scores.length, 3);
      for (const [k, sigma] of TRANSFORMERS_SIGMAS.entries()) {
        for (const [i, j] of PIXELS) {
          const d = at(fg.lowRes.data, k, i, j) - at(pad.lowRes.data, k, i, j);
          near(d, bump(500, 375, i, j, sigma), 1e-4, `channel ${k} (${i},${j})`);
        }
      }
      // a box (x1, y1, x2, y2) = (100, 100, 400, 300) adds 4 inside it: centre (402, 302) of pixel (75, 100) is out
      const boxed = await m.decode(emb, {
        points,
        labels: new Float32Array([-10]),
        box: [100, 100, 400, 300],
        origSize,
      });
      const boxGain = (i: number, j: number) => at(boxed.lowRes.data, 1, i, j) - at(pad.lowRes.data, 1, i, j);
      near(boxGain(50, 50), 4, 1e-5, "inside");
      near(boxGain(74, 99), 4, 1e-5, "last pixel inside");
      near(boxGain(75, 100), 0, 1e-5, "outside");

      await assert.rejects(
        m.decode(emb, { points, labels: new Float32Array([1]), origSize, maskInput: new Float32Array(65536) }),
        /no mask_input/,
      );
      await assert.rejects(m.decode({}, { points, labels: new Float32Array([1]), origSize }), /embeddings lack/);
      // a failure inside onnxruntime names the graph
      const wrong = { ...emb, image_embeddings: { data: new Float32Array(10), dims: [1, 10] } };
      await assert.rejects(
        m.decode(wrong, { points, labels: new Float32Array([1]), origSize }),
        (err: unknown) =>
          err instanceof SegkitError &&
          /^onnxruntime could not run this graph \(.*image_embeddings/.test(err.message) &&
          err.file === m.files.decoder,
      );
    });
  });
});

/** Asserts that loading `dir` fails with a SegkitError whose file ends with `file` and message matches `message`. */
async function rejectsLoad(dir: string, file: string, message: RegExp, options = {}): Promise<void> {
  await assert.rejects(loadSamModel(dir, { threads: 1, ...options }), (err: unknown) => {
    assert.ok(err instanceof SegkitError, String(err));
    assert.ok(err.file?.endsWith(file), `file ${err.file}`);
    assert.match(err.message, message);
    return true;
  });
}

describe("loadSamModel: errors name the file and what was expected", () => {
  test("missing or empty directory", async () => {
    const empty = await modelDir({});
    await rejectsLoad(empty, empty, /no encoder; expected one `\*encoder\*\.onnx`/);
    await rejectsLoad(join(empty, "nope"), "nope", /no such directory/);
  });

  test("two encoders; variants are skipped unless asked for", async () => {
    const two = await modelDir({
      "a_encoder.onnx": "split/encoder.onnx",
      "b_encoder.onnx": "split/encoder.onnx",
      "decoder.onnx": "split/decoder.onnx",
    });
    await rejectsLoad(two, two, /2 encoders: a_encoder\.onnx, b_encoder\.onnx/);

    const variants = await modelDir({
      "sam.encoder.onnx": "split/encoder.onnx",
      "sam.encoder.quant.onnx": "split-hwc/encoder.onnx",
      "sam.decoder.onnx": "split/decoder.onnx",
    });
    await withModel(variants, async (m) => assert.equal(m.encoderInput, "nchw"));
    await rejectsLoad(variants, variants, /no decoder with the suffix `quant`/, { variant: "quant" });
  });

  test("a decoder with a wrong signature, an encoder lacking an output the decoder needs", async () => {
    const noLabels = await modelDir({
      "encoder.onnx": "split/encoder.onnx",
      "decoder.onnx": "broken/decoder_without_point_labels.onnx",
    });
    await rejectsLoad(noLabels, "decoder.onnx", /^input `point_labels` missing; expected the official SAM decoder/);

    const encoderAsDecoder = await modelDir({
      "encoder.onnx": "split/encoder.onnx",
      "decoder.onnx": "split/encoder.onnx",
    });
    await rejectsLoad(encoderAsDecoder, "decoder.onnx", /input `point_coords` \(or transformers\.js `input_points`\)/);

    const noPositional = await modelDir({
      "onnx/vision_encoder.onnx": "split/encoder.onnx",
      "onnx/prompt_encoder_mask_decoder.onnx": "transformers/onnx/prompt_encoder_mask_decoder.onnx",
    });
    await rejectsLoad(noPositional, "vision_encoder.onnx", /output `image_positional_embeddings` missing/);

    const decoderAsEncoder = await modelDir({
      "encoder.onnx": "split/decoder.onnx",
      "decoder.onnx": "split/decoder.onnx",
    });
    await rejectsLoad(decoderAsEncoder, "encoder.onnx", /has 6 inputs .*expected one image input/);
  });

  test("a file that is not ONNX; a broken preprocessor_config.json", async () => {
    const notOnnx = await modelDir({ "encoder.onnx": "split/encoder.onnx" });
    await writeFile(join(notOnnx, "decoder.onnx"), "this is not a protobuf");
    await rejectsLoad(notOnnx, "decoder.onnx", /not a loadable ONNX model/);

    const badJson = await modelDir({
      "onnx/vision_encoder.onnx": "transformers/onnx/vision_encoder.onnx",
      "onnx/prompt_encoder_mask_decoder.onnx": "transformers/onnx/prompt_encoder_mask_decoder.onnx",
    });
    await writeFile(join(badJson, "preprocessor_config.json"), "{ image_mean: ");
    await rejectsLoad(badJson, "preprocessor_config.json", /not valid JSON/);
  });

  test("bad prompts and images", async () => {
    await withModel(join(FIXTURES, "split"), async (m) => {
      const emb = { image_embeddings: { data: new Float32Array(256 * 64 * 64), dims: [1, 256, 64, 64] } };
      const origSize = [100, 100] as const;
      await assert.rejects(m.encode({ data: new Float32Array(12), dims: [1, 3, 2, 2] }), /\[1,3,1024,1024\]/);
      await assert.rejects(
        m.decode(emb, { points: new Float32Array([1, 2]), labels: new Float32Array([2]), origSize, box: [0, 0, 1, 1] }),
        /two points labelled 2 and 3/,
      );
      await assert.rejects(
        m.decode(emb, { points: new Float32Array([1, 2, 3]), labels: new Float32Array([1, 1]), origSize }),
        /N >= 1 points and N labels/,
      );
    });
  });
});

/**
 * Writes an ONNX graph with these inputs and outputs (declared shapes) and no meaningful computation (each output
 * is the first input reshaped): for signatures no fixture has. Loadable, never run.
 */
async function writeGraph(
  file: string,
  inputs: Record<string, (number | string)[]>,
  outputs: Record<string, number[]>,
): Promise<void> {
  const { onnx } = onnxProto;
  const first = Object.keys(inputs)[0] as string;
  const bytes = onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "generated",
      node: Object.keys(outputs).map((o) => ({ opType: "Reshape", input: [first, `${o}:shape`], output: [o] })),
      initializer: Object.entries(outputs).map(([o, shape]) => ({
        name: `${o}:shape`,
        dims: [shape.length],
        dataType: onnx.TensorProto.DataType.INT64,
        rawData: new Uint8Array(new BigInt64Array(shape.map(BigInt)).buffer),
      })),
      input: Object.entries(inputs).map(([name, shape]) => valueInfo(name, shape)),
      output: Object.entries(outputs).map(([name, shape]) => valueInfo(name, shape)),
    },
  }).finish();
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, bytes);
}

const splitEmbeddings = () =>
  withModel(join(FIXTURES, "split"), (m) =>
    m.encode({ data: toNchw(pattern(683, 1024), 683, 1024), dims: [1, 3, 1024, 1024] }),
  );
/** The official split fixture's embeddings and its decode of one click (and the padding point) at (500, 375). */
async function splitReference() {
  const split = await splitEmbeddings();
  const prompt = {
    points: new Float32Array([500, 375, 0, 0]),
    labels: new Float32Array([1, -1]),
    origSize: [480, 640] as const,
  };
  const reference = await withModel(join(FIXTURES, "split"), (m) => m.decode(split, prompt));
  return { split, reference, points: prompt.points, origSize: prompt.origSize };
}

describe("loadSamModel: EdgeSAM (split layout, no mask input, low-res masks only)", () => {
  test("decodes with image_embeddings, point_coords, point_labels -> scores, masks [1,4,256,256]", async () => {
    const dir = join(FIXTURES, "edgesam");
    const { reference, points, origSize } = await splitReference();
    await withModel(dir, async (m) => {
      assert.equal(m.layout, "split");
      assert.equal(m.encoderInput, "nchw");
      assert.equal(m.maskChannels, 4);
      assert.equal(m.acceptsMaskInput, false);
      assert.equal(m.acceptsBox, false);
      assert.deepEqual(m.files, {
        encoder: join(dir, "edge_sam_encoder.onnx"),
        decoder: join(dir, "edge_sam_decoder.onnx"),
      });
      const emb = await m.encode({ data: toNchw(pattern(683, 1024), 683, 1024), dims: [1, 3, 1024, 1024] });
      assert.deepEqual(Object.keys(emb), ["image_embeddings"]);
      const fg = await m.decode(emb, { points, labels: new Float32Array([1, -1]), origSize }, { fullSize: true });
      const none = await m.decode(emb, { points, labels: new Float32Array([-1, -1]), origSize });
      assert.deepEqual(fg.lowRes.dims, [4, 256, 256]);
      assert.equal(fg.masks, undefined);
      for (const [k, sigma] of SPLIT_SIGMAS.entries()) {
        for (const [i, j] of PIXELS) {
          const d = at(fg.lowRes.data, k, i, j) - at(none.lowRes.data, k, i, j);
          near(d, bump(500, 375, i, j, sigma), 1e-4, `channel ${k} (${i},${j})`);
        }
      }
      // the fixture shares the official fixture's weights: its outputs without a mask input
      near(maxAbsDiff(fg.lowRes.data, reference.lowRes.data), 0, 1e-5, "low-res vs the official decoder");
      near(maxAbsDiff(fg.scores, reference.scores), 0, 1e-6, "scores vs the official decoder");
      await assert.rejects(
        m.decode(emb, { points, labels: new Float32Array([1, -1]), origSize, maskInput: new Float32Array(65536) }),
        (err: unknown) =>
          err instanceof SegkitError && /no mask_input/.test(err.message) && err.file === m.files.decoder,
      );
    });
  });
});

describe("loadSamModel: SAM-HQ (interm_embeddings, one mask)", () => {
  test("the encoder's interm_embeddings reach the decoder; one channel", async () => {
    const dir = join(FIXTURES, "sam-hq");
    const { split, reference, points, origSize } = await splitReference();
    await withModel(dir, async (m) => {
      assert.equal(m.layout, "split");
      assert.equal(m.maskChannels, 1);
      assert.equal(m.acceptsMaskInput, true);
      const emb = await m.encode({ data: toNchw(pattern(683, 1024), 683, 1024), dims: [1, 3, 1024, 1024] });
      assert.deepEqual(Object.keys(emb).sort(), ["image_embeddings", "interm_embeddings"]);
      const interm = emb.interm_embeddings as { data: Float32Array; dims: number[] };
      assert.deepEqual(interm.dims, [4, 1, 64, 64, 3]);
      near(
        maxAbsDiff(
          emb.image_embeddings?.data ?? new Float32Array(),
          split.image_embeddings?.data ?? new Float32Array(),
        ),
        0,
        1e-5,
        "embeddings",
      );
      const plane = 64 * 64 * 3;
      near(interm.data[3 * plane + 100], 4 * (interm.data[100] ?? 0), 1e-4, "interm[3] = 4 interm[0]");

      const hq = await m.decode(emb, { points, labels: new Float32Array([1, -1]), origSize }, { fullSize: true });
      assert.deepEqual(hq.lowRes.dims, [1, 256, 256]);
      assert.equal(hq.scores.length, 1);
      assert.deepEqual(hq.masks?.dims, [1, 480, 640]);
      // channel 0 of the official fixture + 0.01 * the channel mean of interm_embeddings[0] at (i / 4, j / 4)
      const intermMean = (i: number, j: number) => {
        const o = (Math.floor(i / 4) * 64 + Math.floor(j / 4)) * 3;
        return ((interm.data[o] ?? 0) + (interm.data[o + 1] ?? 0) + (interm.data[o + 2] ?? 0)) / 3;
      };
      for (const [i, j] of PIXELS) {
        const want = at(reference.lowRes.data, 0, i, j) + 0.01 * intermMean(i, j);
        near(at(hq.lowRes.data, 0, i, j), want, 1e-4, `(${i},${j})`);
      }
      let sum = 0;
      for (const v of hq.lowRes.data) sum += v;
      near(hq.scores[0], 1 / (1 + Math.exp(-sum / 65536)), 1e-4, "score");
      // only interm_embeddings[0] is read, as in SAM-HQ
      const changed = Float32Array.from(interm.data, (v, i) => (i < plane ? v : -v));
      const again = await m.decode(
        { ...emb, interm_embeddings: { data: changed, dims: interm.dims } },
        {
          points,
          labels: new Float32Array([1, -1]),
          origSize,
        },
      );
      assert.deepEqual(again.lowRes.data, hq.lowRes.data);
    });
  });

  test("with the plain SAM encoder: the missing interm_embeddings is named", async () => {
    const dir = await modelDir({ "encoder.onnx": "split/encoder.onnx", "decoder.onnx": "sam-hq/sam_hq_decoder.onnx" });
    await rejectsLoad(
      dir,
      "encoder.onnx",
      /output `interm_embeddings` missing; the decoder decoder\.onnx needs it.*SAM-HQ/,
    );
  });

  test("an encoder whose interm_embeddings has another shape (another ViT size, unstacked) is refused", async () => {
    for (const shape of [
      [4, 1, 64, 64, 768],
      [1, 64, 64, 3],
    ]) {
      const dir = await modelDir({ "decoder.onnx": "sam-hq/sam_hq_decoder.onnx" });
      await writeGraph(
        join(dir, "encoder.onnx"),
        { image: [1, 3, 1024, 1024] },
        { image_embeddings: [1, 256, 64, 64], interm_embeddings: shape },
      );
      await rejectsLoad(
        dir,
        "encoder.onnx",
        new RegExp(
          `^output \`interm_embeddings\` is \\[${shape.join(",")}\\] but the decoder decoder\\.onnx takes \`interm_embeddings\` \\[4,1,64,64,3\\]`,
        ),
      );
    }
  });
});

describe("loadSamModel: SlimSAM (transformers.js layout without input_boxes, quantized files)", () => {
  const slimsam = {
    "onnx/vision_encoder_quantized.onnx": "transformers/onnx/vision_encoder.onnx",
    "onnx/prompt_encoder_mask_decoder_quantized.onnx": "slimsam/onnx/prompt_encoder_mask_decoder_quantized.onnx",
    "preprocessor_config.json": "transformers/preprocessor_config.json",
  };
  const plain = {
    "onnx/vision_encoder.onnx": "transformers/onnx/vision_encoder.onnx",
    "onnx/prompt_encoder_mask_decoder.onnx": "transformers/onnx/prompt_encoder_mask_decoder.onnx",
  };

  test("only quantized files: loaded without `variant`; int64 labels; a box is refused by name", async () => {
    const dir = await modelDir(slimsam);
    const emb = await splitEmbeddings();
    const points = new Float32Array([500, 375]);
    const origSize = [683, 1024] as const;
    await withModel(dir, async (m) => {
      assert.equal(m.layout, "transformers");
      assert.equal(m.acceptsBox, false);
      assert.equal(m.maskChannels, 3);
      assert.equal(m.files.decoder, join(dir, "onnx", "prompt_encoder_mask_decoder_quantized.onnx"));
      const e = await m.encode({ data: toNchw(pattern(683, 1024), 683, 1024), dims: [1, 3, 1024, 1024] });
      assert.ok(e.image_embeddings && emb.image_embeddings);
      near(maxAbsDiff(e.image_embeddings.data, emb.image_embeddings.data), 0, 1e-5, "encoder");
      const fg = await m.decode(e, { points, labels: new Float32Array([1]), origSize });
      const pad = await m.decode(e, { points, labels: new Float32Array([-10]), origSize });
      assert.deepEqual(fg.lowRes.dims, [3, 256, 256]);
      for (const [k, sigma] of TRANSFORMERS_SIGMAS.entries()) {
        for (const [i, j] of PIXELS) {
          const d = at(fg.lowRes.data, k, i, j) - at(pad.lowRes.data, k, i, j);
          near(d, bump(500, 375, i, j, sigma), 1e-4, `channel ${k} (${i},${j})`);
        }
      }
      // the same weights as the transformers fixture: equal outputs without a box
      const reference = await withModel(join(FIXTURES, "transformers"), async (t) =>
        t.decode(await t.encode({ data: toNchw(pattern(683, 1024), 683, 1024), dims: [1, 3, 1024, 1024] }), {
          points,
          labels: new Float32Array([1]),
          origSize,
        }),
      );
      near(maxAbsDiff(fg.lowRes.data, reference.lowRes.data), 0, 1e-5, "vs the transformers fixture");
      await assert.rejects(
        m.decode(e, { points, labels: new Float32Array([-10]), box: [100, 100, 400, 300], origSize }),
        (err: unknown) =>
          err instanceof SegkitError && /no input_boxes/.test(err.message) && err.file === m.files.decoder,
      );
    });
  });

  test("plain and quantized files side by side: plain by default, `variant` picks the other", async () => {
    const dir = await modelDir({ ...slimsam, ...plain });
    await withModel(dir, async (m) => {
      assert.equal(m.files.decoder, join(dir, "onnx", "prompt_encoder_mask_decoder.onnx"));
      assert.equal(m.acceptsBox, true);
    });
    await withModel(
      dir,
      async (m) => {
        assert.equal(m.files.encoder, join(dir, "onnx", "vision_encoder_quantized.onnx"));
        assert.equal(m.files.decoder, join(dir, "onnx", "prompt_encoder_mask_decoder_quantized.onnx"));
        assert.equal(m.acceptsBox, false);
      },
      { variant: "quantized" },
    );
    await rejectsLoad(dir, dir, /no encoder with the suffix `fp16`/, { variant: "fp16" });
  });

  test("several variants and no plain files: the error lists them", async () => {
    const dir = await modelDir({
      ...slimsam,
      "onnx/vision_encoder_fp16.onnx": "transformers/onnx/vision_encoder.onnx",
      "onnx/prompt_encoder_mask_decoder_fp16.onnx": "slimsam/onnx/prompt_encoder_mask_decoder_quantized.onnx",
    });
    await assert.rejects(loadSamModel(dir, { threads: 1 }), (err: unknown) => {
      assert.ok(err instanceof SegkitError);
      assert.equal(err.file, dir);
      assert.match(err.message, /^no encoder; expected/);
      assert.match(
        err.hint ?? "",
        /onnx\/vision_encoder_fp16\.onnx.*choose a variant \(`variant`, segkit sam --variant\): fp16, quantized$/,
      );
      return true;
    });
    await withModel(dir, async (m) => assert.match(m.files.decoder, /_fp16\.onnx$/), { variant: "fp16" });
  });
});

describe("loadSamModel: MobileSAM as Acly publishes it (one encoder, single and multi decoders)", () => {
  test("the multi decoder is taken when both are present; either alone loads", async () => {
    const acly = {
      "mobile_sam_image_encoder.onnx": "split-hwc/encoder.onnx",
      "sam_mask_decoder_single.onnx": "sam-hq/sam_hq_decoder.onnx",
      "sam_mask_decoder_multi.onnx": "split/decoder.onnx",
    };
    const both = await modelDir(acly);
    await withModel(both, async (m) => {
      assert.equal(m.files.encoder, join(both, "mobile_sam_image_encoder.onnx"));
      assert.equal(m.files.decoder, join(both, "sam_mask_decoder_multi.onnx"));
      assert.equal(m.encoderInput, "hwc");
      assert.equal(m.maskChannels, 4);
    });
    const multiOnly = await modelDir({
      "mobile_sam_image_encoder.onnx": acly["mobile_sam_image_encoder.onnx"],
      "sam_mask_decoder_multi.onnx": acly["sam_mask_decoder_multi.onnx"],
    });
    await withModel(multiOnly, async (m) => assert.equal(m.maskChannels, 4));
    // a 1-mask decoder alone (here the SAM-HQ fixture, with its encoder)
    const singleOnly = await modelDir({
      "mobile_sam_image_encoder.onnx": "sam-hq/sam_hq_encoder.onnx",
      "sam_mask_decoder_single.onnx": acly["sam_mask_decoder_single.onnx"],
    });
    await withModel(singleOnly, async (m) => {
      assert.equal(m.files.decoder, join(singleOnly, "sam_mask_decoder_single.onnx"));
      assert.equal(m.maskChannels, 1);
    });
    // any other pair of decoders stays ambiguous, named
    const three = await modelDir({ ...acly, "sam_mask_decoder_other.onnx": "split/decoder.onnx" });
    await rejectsLoad(
      three,
      three,
      /3 decoders: sam_mask_decoder_multi\.onnx, sam_mask_decoder_other\.onnx, sam_mask_decoder_single\.onnx/,
    );
  });
});

describe("loadSamModel: SAM 2 exports mixed with SAM 1 graphs, and transformers.js's SAM 2", () => {
  const image = { image: [1, 3, 1024, 1024] };
  const samexporterEncoder = {
    high_res_feats_0: [1, 32, 256, 256],
    high_res_feats_1: [1, 64, 128, 128],
    image_embed: [1, 256, 64, 64],
  };

  test("a SAM 2 encoder beside a SAM 1 decoder, and the reverse, name what the decoder misses", async () => {
    const mixed = await modelDir({ "decoder.onnx": "split/decoder.onnx" });
    await writeGraph(join(mixed, "encoder.onnx"), image, samexporterEncoder);
    await rejectsLoad(mixed, "encoder.onnx", /^output `image_embeddings` missing; the decoder decoder.onnx needs it/);
    const reverse = await modelDir({
      "encoder.onnx": "split/encoder.onnx",
      "decoder.onnx": "sam2-split/sam2_tiny.decoder.onnx",
    });
    await rejectsLoad(reverse, "encoder.onnx", /^output `image_embed` missing; the decoder decoder.onnx needs it/);
  });

  test("transformers.js's SAM 2 is refused, naming the layouts segkit runs", async () => {
    const hf = await modelDir({});
    const levels = {
      "image_embeddings.0": [1, 32, 256, 256],
      "image_embeddings.1": [1, 64, 128, 128],
      "image_embeddings.2": [1, 256, 64, 64],
    };
    await writeGraph(join(hf, "onnx", "vision_encoder.onnx"), { pixel_values: [1, 3, 1024, 1024] }, levels);
    await writeGraph(
      join(hf, "onnx", "prompt_encoder_mask_decoder.onnx"),
      { input_points: [1, 1, "n", 2], input_labels: [1, 1, "n"], input_boxes: [1, "b", 4], ...levels },
      { iou_scores: [1, 1, 3], pred_masks: [1, 1, 3, 256, 256], object_score_logits: [1, 1, 1] },
    );
    await rejectsLoad(
      hf,
      "prompt_encoder_mask_decoder.onnx",
      /^transformers.js SAM 2 exports are not supported \(this graph has the input `image_embeddings.0`\)/,
    );
  });
});

describe("loadSamModel: decoder signatures no fixture has", () => {
  test("EdgeSAM without `masks`; a --return-extra-metrics export; 3 masks from a split decoder", async () => {
    const split = { "encoder.onnx": "split/encoder.onnx" };
    const emb = { image_embeddings: [1, 256, 64, 64], ...{ point_coords: [1, "n", 2], point_labels: [1, "n"] } };
    const noMasks = await modelDir(split);
    await writeGraph(join(noMasks, "decoder.onnx"), emb, { scores: [1, 4] });
    await rejectsLoad(noMasks, "decoder.onnx", /^output `masks` missing; expected EdgeSAM's decoder inputs/);

    const fullSize = await modelDir(split);
    await writeGraph(join(fullSize, "decoder.onnx"), emb, { scores: [1, 4], masks: [1, 4, 1024, 1024] });
    await rejectsLoad(fullSize, "decoder.onnx", /^output `masks` is \[1,4,1024,1024\]; expected low-res mask logits/);

    const official = { ...emb, mask_input: [1, 1, 256, 256], has_mask_input: [1], orig_im_size: [2] };
    const extra = await modelDir(split);
    await writeGraph(join(extra, "decoder.onnx"), official, {
      masks: [1, 4, 1500, 2250],
      iou_predictions: [1, 4],
      low_res_masks: [1, 4],
      areas: [1, 4],
      low: [1, 4, 256, 256],
    });
    await rejectsLoad(extra, "decoder.onnx", /^output `low_res_masks` is \[1,4\]; expected low-res mask logits/);

    const three = await modelDir(split);
    await writeGraph(join(three, "decoder.onnx"), official, {
      masks: [1, 3, 1500, 2250],
      iou_predictions: [1, 3],
      low_res_masks: [1, 3, 256, 256],
    });
    await rejectsLoad(three, "decoder.onnx", /^output `low_res_masks` is \[1,3,256,256\]; expected .* C = 4 or 1/);
  });
});
