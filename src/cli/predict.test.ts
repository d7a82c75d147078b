// `segkit predict` through main(): a checkpoint written here (a tiny U-Net with the card `fit` writes, not
// trained), a directory with good and bad files, the files written, the summary line, exit codes.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import {
  createModel,
  createSyntheticDataset,
  cropImage,
  type EpochMetrics,
  encodePng,
  initBackend,
  modelCard,
  predictSettings,
  readImageSize,
  readMask,
  readMaskClassNames,
  resolveTiling,
  saveModel,
  seedWeights,
  type TrainConfig,
  validateTrainConfig,
} from "../index.js";
import { runCli } from "../test-utils/cli.js";

const run = (...argv: string[]) => runCli(argv);

let dir: string;
let model: string;
let images: string;
/** A checkpoint trained (as its card says) on patches: its card says tiles. */
let patchModel: string;

/** A checkpoint as fit writes it (model + card from modelCard) for the synthetic set's 3 classes; returns its card. */
async function writeCheckpoint(at: string, config: TrainConfig) {
  const ds = createSyntheticDataset({ length: 2, size: 32 });
  const net = createModel("unet", { inputSize: [32, 32], depth: 2, baseFilters: 4, numClasses: 3 });
  seedWeights(net, 3);
  const metrics = { epoch: 1 } as EpochMetrics;
  const cfg = validateTrainConfig({ inputSize: [32, 32], model: { arch: "unet", options: { depth: 2 } }, ...config });
  const card = modelCard({
    model: net,
    train: ds,
    val: ds,
    config: cfg,
    classWeights: null,
    mode: "max",
    epoch: 1,
    metrics,
    best: null,
  });
  await saveModel(net, at);
  net.dispose();
  await writeFile(join(at, "card.json"), JSON.stringify(card));
  return card;
}

before(async () => {
  await initBackend();
  dir = await mkdtemp(join(tmpdir(), "segkit-cli-predict-"));
  model = join(dir, "run", "best");
  await writeCheckpoint(model, {});
  patchModel = join(dir, "patches", "best");
  await writeCheckpoint(patchModel, { patches: { perImage: 4 }, predict: { mode: "tile", overlap: 0.5 } });
  // images: two synthetic samples at other sizes, and bad files
  images = join(dir, "images");
  await mkdir(images);
  const big = createSyntheticDataset({ length: 2, size: 50, seed: 4 });
  await writeFile(join(images, "one.png"), await encodePng((await big.get(0)).image));
  const small = cropImage((await big.get(1)).image, { x: 5, y: 3, width: 20, height: 24 });
  await writeFile(join(images, "two.png"), await encodePng(small));
  await writeFile(join(images, "broken.jpg"), "this is text");
  await writeFile(join(images, "empty.png"), new Uint8Array(0));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("segkit predict", () => {
  it("writes a coloured class-index PNG per image at its size, reports bad files, exits 0", async () => {
    const out = join(dir, "out");
    const before = tf.memory().numTensors;
    const r = await run("predict", "--model", join(dir, "run"), "--input", images, "--out", out, "--overlay");
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      new RegExp(
        `^predicted 2 images, skipped 2 in \\d+\\.\\d s \\([\\d.]+ images/s, onnx\\); wrote 4 files to ${out}$`,
      ),
    );
    assert.deepEqual(r.err.split("\n"), [
      `skipped ${join(images, "broken.jpg")}: not a supported image (JPEG, PNG, WebP, TIFF, GIF)`,
      `skipped ${join(images, "empty.png")}: empty file`,
    ]);
    assert.deepEqual((await readdir(out)).sort(), ["one.overlay.png", "one.png", "two.overlay.png", "two.png"]);
    const mask = await readMask(join(out, "one.png"));
    assert.deepEqual([mask.width, mask.height], [50, 50]);
    assert.ok(mask.data.every((v) => v < 3));
    assert.deepEqual(await readMaskClassNames(join(out, "two.png")), ["pet", "background", "border"]);
    assert.deepEqual(await readImageSize(join(out, "two.overlay.png")), { width: 20, height: 24 });
    assert.equal(tf.memory().numTensors, before);
  });

  it("tiles with --tile on tfjs, writes probability maps with --probs, takes one file", async () => {
    const out = join(dir, "tiled");
    const r = await run(
      "predict",
      "-m",
      join(dir, "run", "best"),
      "-i",
      join(images, "one.png"),
      "-o",
      out,
      "--tile",
      "--overlap",
      "0.5",
      "--engine",
      "tfjs",
      "--probs",
    );
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^predicted 1 image in .* tfjs, tiled\); wrote 4 files to /);
    assert.deepEqual((await readdir(out)).sort(), [
      "one.png",
      "one.prob.background.png",
      "one.prob.border.png",
      "one.prob.pet.png",
    ]);
    assert.deepEqual(await readImageSize(join(out, "one.prob.pet.png")), { width: 50, height: 50 });
  });

  it("the card records how to predict: resize by default, tiles after patch training, read back as written", async () => {
    const read = async (d: string) => JSON.parse(await readFile(join(d, "card.json"), "utf8"));
    const plain = await read(model);
    const patched = await read(patchModel);
    assert.deepEqual(plain.predict, { mode: "resize" });
    assert.deepEqual(patched.predict, { mode: "tile", overlap: 0.5, blend: "gaussian" });
    assert.deepEqual(predictSettings(validateTrainConfig({ patches: { perImage: 2 } })), {
      mode: "tile",
      overlap: 0.25,
      blend: "gaussian",
    });
    // the predictor's tiling: the card's, unless told otherwise (given options override the card's)
    assert.equal(resolveTiling(undefined, plain), null);
    assert.deepEqual(resolveTiling(undefined, patched), { overlap: 0.5, blend: "gaussian" });
    assert.deepEqual(resolveTiling({ blend: "constant" }, patched), { overlap: 0.5, blend: "constant" });
    assert.equal(resolveTiling(false, patched), null);
    assert.deepEqual(resolveTiling(true, plain), { overlap: 0.25, blend: "gaussian" });
  });

  it("tiles as the model card says with no flags; --no-tile resizes", async () => {
    const input = join(images, "one.png");
    const tiled = await run(
      "predict",
      "-m",
      patchModel,
      "-i",
      input,
      "-o",
      join(dir, "card-tiles"),
      "--engine",
      "tfjs",
    );
    assert.equal(tiled.code, 0, tiled.err);
    assert.match(tiled.out, /\(.* tfjs, tiled\)/);
    const resized = await run("predict", "-m", patchModel, "-i", input, "-o", join(dir, "card-resize"), "--no-tile");
    assert.equal(resized.code, 0, resized.err);
    assert.doesNotMatch(resized.out, /tiled/);
    const mask = await readMask(join(dir, "card-tiles", "one.png"));
    assert.deepEqual([mask.width, mask.height], [50, 50]);
  });

  it("fails with one line and exit 1 when nothing could be predicted or the model is missing", async () => {
    const bad = join(dir, "bad");
    await mkdir(bad);
    await writeFile(join(bad, "x.png"), "nope");
    const none = await run("predict", "--model", model, "--input", bad, "--out", join(dir, "never"));
    assert.equal(none.code, 1);
    assert.equal(
      none.err.split("\n").at(-1),
      `segkit: ${bad}: no image could be predicted (1 skipped). give an image file or a directory of JPEG/PNG/WebP/TIFF/GIF images`,
    );
    assert.equal(existsSync(join(dir, "never")), false);
    const missing = await run("predict", "--model", join(dir, "nope"), "--input", images, "--out", join(dir, "o"));
    assert.equal(missing.code, 1);
    assert.match(missing.err, /^segkit: .*nope: not found\. give a checkpoint directory/);
    const noInput = await run("predict", "--model", model, "--input", join(dir, "nothing"), "--out", join(dir, "o"));
    assert.match(noInput.err, /^segkit: .*nothing: not found\. give an image file or a directory of images$/);
    const overlap = await run(
      "predict",
      "--model",
      model,
      "--input",
      images,
      "--out",
      join(dir, "o"),
      "--overlap",
      "1",
    );
    assert.equal(overlap.code, 1);
    assert.match(overlap.err, /--overlap must be a number from 0 to below 1/);
  });
});
