// Prediction from checkpoint directories written here (no training): a per-pixel model (one 1x1 convolution, so
// every pixel's logits are known by hand and tiling must reproduce them exactly), a tiny U-Net for the two
// engines, a binary head; bad checkpoints; files in and out (bad files skipped); tensor counts.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { decode as decodePng } from "fast-png";
import sharp from "sharp";
import { initBackend } from "../backend/init.js";
import { SegkitError } from "../core/errors.js";
import { createImage, type RgbImage } from "../core/image.js";
import { createRng } from "../core/random.js";
import { readImage } from "../io/image.js";
import { readMask } from "../io/mask.js";
import { encodePng, readMaskClassNames } from "../io/write.js";
import { saveModel } from "../models/io.js";
import { createModel } from "../models/registry.js";
import { seedWeights } from "../train/seed.js";
import { predictFiles } from "./files.js";
import { loadPredictor, type Predictor } from "./predict.js";

let root: string;
/** Model input [H, W] of the per-pixel checkpoints: not square, so that a swap of H and W shows. */
const H = 12;
const W = 16;
/** Per-pixel logits = SCALE * (R, G, B): class 0 red, 1 green, 2 blue, whichever channel is largest. */
const SCALE = 0.05;
const RGB = ["red", "green", "blue"];
let pixelDir: string;
let binaryDir: string;
let unetDir: string;

/** A model of one 1x1 convolution with the given kernel ([3][C]) and bias, input [H, W, 3]. */
function pixelModel(kernel: number[][], bias: number[]): tf.LayersModel {
  const input = tf.input({ shape: [H, W, 3] });
  const conv = tf.layers.conv2d({ filters: bias.length, kernelSize: 1 });
  const model = tf.model({ inputs: input, outputs: conv.apply(input) as tf.SymbolicTensor });
  const weights = [tf.tensor4d(kernel.flat(), [1, 1, 3, bias.length]), tf.tensor1d(bias)];
  conv.setWeights(weights);
  tf.dispose(weights);
  return model;
}

async function writeCheckpoint(dir: string, model: tf.LayersModel, card: object): Promise<string> {
  await saveModel(model, dir);
  model.dispose();
  await writeFile(join(dir, "card.json"), JSON.stringify({ format: "segkit-model-card", ...card }));
  return dir;
}

function randomImage(width: number, height: number, seed: number): RgbImage {
  const rng = createRng(seed);
  return createImage(
    width,
    height,
    Uint8Array.from({ length: width * height * 3 }, () => rng.int(0, 256)),
  );
}

/** A smooth image (gradients and a disc), for the U-Net: random noise would make its classes coin flips. */
function smoothImage(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inside = (x - width / 2) ** 2 + (y - height / 3) ** 2 < (width / 4) ** 2;
      data.set([(255 * x) / width, inside ? 230 : 40, (255 * y) / height], (y * width + x) * 3);
    }
  }
  return createImage(width, height, data);
}

/** The per-pixel model's mask and probabilities, computed here. */
function pixelReference(img: RgbImage): { mask: number[]; probs: number[] } {
  const n = img.width * img.height;
  const mask: number[] = [];
  const probs: number[] = new Array(3 * n);
  for (let i = 0; i < n; i++) {
    const z = [0, 1, 2].map((c) => SCALE * (img.data[i * 3 + c] as number));
    mask.push(z.indexOf(Math.max(...z)));
    const e = z.map((v) => Math.exp(v - Math.max(...z)));
    const sum = e.reduce((a, b) => a + b, 0);
    for (const [c, v] of e.entries()) probs[c * n + i] = v / sum;
  }
  return { mask, probs };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
  return d;
}

before(async () => {
  assert.equal(await initBackend(), "wasm");
  root = mkdtempSync(join(tmpdir(), "segkit-predict-"));
  const identity = [
    [SCALE, 0, 0],
    [0, SCALE, 0],
    [0, 0, SCALE],
  ];
  pixelDir = await writeCheckpoint(join(root, "pixel"), pixelModel(identity, [0, 0, 0]), {
    classes: RGB,
    palette: [
      [255, 0, 0],
      [0, 255, 0],
      [0, 0, 255],
    ],
    inputSize: [H, W],
  });
  // binary: logit = 0.1 * (R - B), foreground where R >= B
  binaryDir = await writeCheckpoint(join(root, "binary"), pixelModel([[0.1], [0], [-0.1]], [0]), {
    classes: ["background", "fg"],
    inputSize: [H, W],
    backgroundClass: 0,
  });
  const unet = createModel("unet", { inputSize: [32, 32], depth: 2, baseFilters: 4, numClasses: 3 });
  seedWeights(unet, 5);
  unetDir = await writeCheckpoint(join(root, "run", "best"), unet, { classes: RGB, inputSize: [32, 32] });
});
after(() => rmSync(root, { recursive: true, force: true }));

describe("loadPredictor", () => {
  it("reads the card: classes, palette (VOC colours where the card has none), input size", async () => {
    const p = await loadPredictor(binaryDir, { engine: "tfjs" });
    assert.deepEqual(p.classes, ["background", "fg"]);
    assert.deepEqual(p.palette, [
      [0, 0, 0],
      [128, 0, 0],
    ]);
    assert.deepEqual(p.inputSize, [H, W]);
    assert.equal(p.backgroundClass, 0);
    assert.equal(p.ignoreIndex, 255);
    assert.equal(p.engine, "tfjs");
    assert.equal(p.tile, null);
    await p.dispose();
    await assert.rejects(p.predict(randomImage(4, 4, 1)), /this predictor has been disposed/);
  });

  it("takes a run directory for its best/ checkpoint; auto picks onnx", async () => {
    const p = await loadPredictor(join(root, "run"));
    assert.equal(p.dir, join(root, "run", "best"));
    assert.equal(p.engine, "onnx");
    assert.equal(p.fallbackReason, undefined);
    await p.dispose();
  });

  it("auto falls back to tfjs when the model does not export to ONNX; onnx then fails", async () => {
    const dir = join(root, "softplus");
    const input = tf.input({ shape: [H, W, 3] });
    const conv = tf.layers.conv2d({ filters: 2, kernelSize: 1, activation: "softplus" });
    await writeCheckpoint(dir, tf.model({ inputs: input, outputs: conv.apply(input) as tf.SymbolicTensor }), {
      classes: ["a", "b"],
      inputSize: [H, W],
    });
    const p = await loadPredictor(dir);
    assert.equal(p.engine, "tfjs");
    assert.match(p.fallbackReason ?? "", /activation "softplus" is not supported in ONNX export/);
    assert.equal((await p.predict(randomImage(W, H, 1))).mask.width, W);
    await p.dispose();
    await assert.rejects(loadPredictor(dir, { engine: "onnx" }), /softplus/);
  });

  it("says what is wrong with a bad checkpoint, naming the file", async () => {
    const bad = async (dir: string, pattern: RegExp) => {
      const err = await loadPredictor(dir).then(
        () => assert.fail("loaded"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof SegkitError);
      assert.match(err.describe(), pattern);
    };
    await bad(join(root, "nope"), /nope: not found\. give a checkpoint directory written by segkit train/);
    await mkdir(join(root, "empty"));
    await bad(join(root, "empty"), /empty: no model\.json in this directory/);
    // a model without its card
    const noCard = join(root, "no-card");
    await saveModel(pixelModel([[1], [1], [1]], [0]), noCard);
    await bad(noCard, /no-card\/card\.json: file not found/);
    // cards that do not fit the model
    await writeFile(join(noCard, "card.json"), JSON.stringify({ format: "segkit-model-card", classes: ["a"] }));
    await bad(noCard, /card\.json: not a segkit model card \(inputSize: /);
    const card = (c: object) =>
      writeFile(join(noCard, "card.json"), JSON.stringify({ format: "segkit-model-card", ...c }));
    await card({ classes: ["a", "b"], inputSize: [W, H] });
    await bad(noCard, /card\.json: the card says input 16x12x3 but the model takes 12x16x3/);
    await card({ classes: ["a", "b", "c"], inputSize: [H, W] });
    await bad(noCard, /card\.json: the card lists 3 classes but the model has 1 output channels/);
    await assert.rejects(loadPredictor(pixelDir, { batchSize: 0 }), /batchSize must be a positive integer, got 0/);
    await assert.rejects(loadPredictor(pixelDir, { threads: 1.5 }), /threads must be a positive integer, got 1.5/);
    await assert.rejects(loadPredictor(pixelDir, { engine: "gpu" as "onnx" }), /unknown engine "gpu"/);
    await assert.rejects(loadPredictor(pixelDir, { tile: { overlap: -0.5 } }), /tile overlap must be a number/);
  });
});

describe("predict", () => {
  for (const engine of ["tfjs", "onnx"] as const) {
    it(`${engine}: an image of the input size gives the model's own classes and softmax`, async () => {
      const p = await loadPredictor(pixelDir, { engine });
      assert.equal(p.engine, engine);
      const img = randomImage(W, H, 2);
      const { mask, probs } = await p.predict(img, { probs: true });
      const ref = pixelReference(img);
      assert.equal(mask.width, W);
      assert.equal(mask.height, H);
      assert.deepEqual([...mask.data], ref.mask);
      assert.ok(probs && maxDiff(probs, ref.probs) < 1e-5);
      assert.equal((await p.predict(img)).probs, undefined);
      await p.dispose();
    });
  }

  it("resizes the logits back to the original size (a 4x larger image: each region keeps its class)", async () => {
    const p = await loadPredictor(pixelDir, { engine: "tfjs" });
    // left half red, right half blue, 64 x 48
    const img = createImage(4 * W, 4 * H);
    for (let i = 0; i < img.width * img.height; i++) {
      img.data.set(i % img.width < 2 * W ? [200, 20, 20] : [20, 20, 200], i * 3);
    }
    const { mask, probs } = await p.predict(await encodePng(img), { probs: true });
    assert.equal(mask.width, 4 * W);
    assert.equal(mask.height, 4 * H);
    const n = img.width * img.height;
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < img.width; x++) assert.equal(mask.data[y * img.width + x], x < 2 * W ? 0 : 2, `${x},${y}`);
    }
    // far from the edge between the halves the probabilities are the pure colours' softmax: (200, 20, 20) * 0.05
    const pRed = 1 / (1 + 2 * Math.exp(-9));
    assert.ok(Math.abs((probs?.[0] as number) - pRed) < 1e-5);
    assert.ok(Math.abs((probs?.[2 * n + img.width - 1] as number) - pRed) < 1e-5);
    await p.dispose();
  });

  it("binary head: class 1 where sigmoid >= 0.5, probabilities as planes 1 - p and p", async () => {
    const p = await loadPredictor(binaryDir, { engine: "onnx" });
    const img = randomImage(W, H, 3);
    const { mask, probs } = await p.predict(img, { probs: true });
    const n = W * H;
    for (let i = 0; i < n; i++) {
      const z = 0.1 * ((img.data[i * 3] as number) - (img.data[i * 3 + 2] as number));
      const prob = 1 / (1 + Math.exp(-z));
      assert.equal(mask.data[i], z >= 0 ? 1 : 0);
      assert.ok(Math.abs((probs?.[n + i] as number) - prob) < 1e-5);
      assert.ok(Math.abs((probs?.[i] as number) - (1 - prob)) < 1e-5);
    }
    await p.dispose();
  });

  it("predictBatch: images of several sizes in one batch, each at its own size, in order", async () => {
    const p = await loadPredictor(pixelDir, { engine: "onnx", batchSize: 2 });
    const imgs = [randomImage(W, H, 4), createImage(5, 3, new Uint8Array(45).fill(90)), randomImage(W, H, 5)];
    const out = await p.predictBatch(imgs);
    assert.deepEqual(
      out.map((o) => [o.mask.width, o.mask.height]),
      [
        [W, H],
        [5, 3],
        [W, H],
      ],
    );
    assert.deepEqual([...(out[0]?.mask.data ?? [])], pixelReference(imgs[0] as RgbImage).mask);
    assert.deepEqual([...(out[2]?.mask.data ?? [])], pixelReference(imgs[2] as RgbImage).mask);
    assert.ok(out[1]?.mask.data.every((v) => v === 0)); // a gray image: three equal logits, the first class
    await p.dispose();
  });
});

describe("tiled predict", () => {
  for (const blend of ["gaussian", "constant"] as const) {
    it(`${blend}: blended windows reproduce a per-pixel model exactly (odd sizes, larger and smaller)`, async () => {
      const p = await loadPredictor(pixelDir, { engine: "onnx", tile: { blend, overlap: 0.25 }, batchSize: 3 });
      assert.deepEqual(p.tile, { blend, overlap: 0.25 });
      // 37 x 29: 3 x 3 windows of 16 x 12; 9 x 5: one centred window, the image padded by its edge pixels
      for (const [w, h] of [
        [37, 29],
        [9, 5],
        [W, H],
      ] as const) {
        const img = randomImage(w, h, w);
        const { mask, probs } = await p.predict(img, { probs: true });
        const ref = pixelReference(img);
        assert.deepEqual([mask.width, mask.height], [w, h]);
        assert.deepEqual([...mask.data], ref.mask);
        assert.ok(probs && maxDiff(probs, ref.probs) < 1e-5);
      }
      await p.dispose();
    });
  }

  it("equals the untiled prediction when the image is the input size (U-Net, context matters)", async () => {
    const plain = await loadPredictor(unetDir, { engine: "tfjs" });
    const tiled = await loadPredictor(unetDir, { engine: "tfjs", tile: true });
    const img = smoothImage(32, 32);
    const a = await plain.predict(img, { probs: true });
    const b = await tiled.predict(img, { probs: true });
    assert.deepEqual([...a.mask.data], [...b.mask.data]);
    assert.ok(maxDiff(a.probs as Float32Array, b.probs as Float32Array) < 1e-6);
    await Promise.all([plain.dispose(), tiled.dispose()]);
  });
});

describe("engines", () => {
  it("onnx and tfjs agree on a U-Net: probabilities to 1e-4, the same masks (resized and tiled)", async () => {
    const img = smoothImage(45, 70);
    for (const tile of [false, true]) {
      const [t, o] = await Promise.all(
        (["tfjs", "onnx"] as const).map((engine) => loadPredictor(unetDir, { engine, tile })),
      );
      const a = await (t as Predictor).predict(img, { probs: true });
      const b = await (o as Predictor).predict(img, { probs: true });
      const d = maxDiff(a.probs as Float32Array, b.probs as Float32Array);
      assert.ok(d < 1e-4, `tile ${tile}: max |p_tfjs - p_onnx| = ${d}`);
      assert.deepEqual([...a.mask.data], [...b.mask.data]);
      // the model is not trivially constant: more than one class in the mask
      assert.ok(new Set(a.mask.data).size > 1);
      await Promise.all([t?.dispose(), o?.dispose()]);
    }
  });

  it("leaks no tensors (tfjs and onnx, resized and tiled)", async () => {
    const before = tf.memory().numTensors;
    for (const engine of ["tfjs", "onnx"] as const) {
      const p = await loadPredictor(unetDir, { engine, tile: engine === "onnx" });
      await p.predictBatch([smoothImage(40, 30), smoothImage(20, 50)], { probs: true });
      await p.dispose();
    }
    assert.equal(tf.memory().numTensors, before);
  });
});

describe("predictFiles", () => {
  it("writes mask, overlay and probability PNGs per image; reports and skips bad files", async () => {
    const input = join(root, "images");
    const out = join(root, "predictions");
    await mkdir(input);
    const img = randomImage(23, 17, 9);
    await writeFile(join(input, "a.png"), await encodePng(img));
    await writeFile(
      join(input, "b.jpg"),
      await sharp(Buffer.from(randomImage(30, 20, 1).data), { raw: { width: 30, height: 20, channels: 3 } })
        .jpeg()
        .toBuffer(),
    );
    const png = await encodePng(randomImage(20, 20, 3));
    await writeFile(join(input, "truncated.png"), png.subarray(0, png.length >> 1));
    await writeFile(join(input, "empty.png"), new Uint8Array(0));
    await writeFile(join(input, "notes.txt"), "not an image");
    await writeFile(join(input, "text.jpg"), "not an image either");
    await writeFile(
      join(input, "a.webp"),
      await sharp(Buffer.from(img.data), { raw: { width: 23, height: 17, channels: 3 } })
        .webp()
        .toBuffer(),
    );

    const p = await loadPredictor(pixelDir, { engine: "onnx", batchSize: 2 });
    const progress: number[] = [];
    const s = await predictFiles(p, input, out, {
      overlay: true,
      probs: true,
      onProgress: (done, total) => void progress.push(done, total),
    });
    assert.equal(s.predicted, 2);
    const reasons = s.skipped.map((k) => `${k.path.slice(input.length + 1)}: ${k.reason}`);
    const expected = [
      /^notes\.txt: not an image file \(extension \.txt\)$/,
      /^a\.webp: its outputs \(a\.\*\) would replace those of .*images\/a\.png$/,
      /^empty\.png: empty file$/,
      /^text\.jpg: not a supported image \(JPEG, PNG, WebP, TIFF, GIF\)$/,
      /^truncated\.png: cannot decode: /, // libvips' words
    ];
    assert.equal(reasons.length, expected.length, reasons.join("\n"));
    for (const [k, re] of expected.entries()) assert.match(reasons[k] as string, re);
    assert.deepEqual(progress, [0, 5, 2, 5, 4, 5, 5, 5]);
    const names = s.written.map((f) => f.slice(out.length + 1));
    assert.deepEqual(names.slice(0, 5), [
      "a.png",
      "a.overlay.png",
      "a.prob.red.png",
      "a.prob.green.png",
      "a.prob.blue.png",
    ]);
    assert.equal(names.length, 10);
    // the mask reads back as class indices, carries the class names, and equals the prediction
    const direct = await p.predict(img, { probs: true });
    const mask = await readMask(join(out, "a.png"));
    assert.deepEqual([...mask.data], [...direct.mask.data]);
    assert.deepEqual(await readMaskClassNames(join(out, "a.png")), RGB);
    // overlay: the image's size, red class pixels tinted half-way to (255, 0, 0)
    const overlay = await readImage(join(out, "a.overlay.png"));
    assert.deepEqual([overlay.width, overlay.height], [23, 17]);
    const i = direct.mask.data.indexOf(0);
    assert.equal(overlay.data[i * 3], Math.round((img.data[i * 3] as number) * 0.5 + 127.5));
    // probabilities: 8-bit gray, round(255 p)
    const gray = decodePng(await readFile(join(out, "a.prob.green.png")));
    assert.deepEqual([gray.width, gray.height, gray.channels, gray.depth], [23, 17, 1, 8]);
    const data = gray.data;
    const ref = direct.probs as Float32Array;
    const n = 23 * 17;
    for (let k = 0; k < n; k++) assert.ok(Math.abs((data[k] as number) - 255 * (ref[n + k] as number)) <= 0.5 + 1e-3);
    await p.dispose();
  });

  it("a write that fails mid-run stops the job with the file named; what was written stays", async () => {
    // three images, one per group; b's mask path is a directory, so its write fails while c is read and predicted
    const input = join(root, "write-fail");
    const out = join(root, "write-fail-out");
    await mkdir(input);
    for (const [k, name] of ["a", "b", "c"].entries()) {
      await writeFile(join(input, `${name}.png`), await encodePng(randomImage(8, 6, k)));
    }
    await mkdir(join(out, "b.png"), { recursive: true });
    const p = await loadPredictor(pixelDir, { engine: "tfjs", batchSize: 1 });
    try {
      const err = await predictFiles(p, input, out).then(
        () => assert.fail("expected the write of b.png to fail"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof SegkitError);
      assert.equal(err.file, join(out, "b.png"));
      assert.match(err.message, /cannot write \(is a directory\)/);
      assert.deepEqual((await readMask(join(out, "a.png"))).data.length, 8 * 6);
      assert.deepEqual((await readdir(out)).sort(), ["a.png", "b.png"]); // no temp files left, c not written
    } finally {
      await p.dispose();
    }
  });

  it("refuses to write into the input directory", async () => {
    const p = await loadPredictor(pixelDir, { engine: "tfjs" });
    await assert.rejects(
      predictFiles(p, join(root, "images"), join(root, "images")),
      /the output directory is the input directory/,
    );
    await p.dispose();
  });
});
