// The training config (defaults, validation messages), the loss it resolves to, and "auto" class weights
// (median-frequency balancing) on a hand-made dataset whose frequencies are known.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createMask, type Mask } from "../core/image.js";
import type { Dataset } from "../data/dataset.js";
import { autoClassWeights, countClassPixels, medianFrequencyWeights } from "./class-weights.js";
import {
  DEFAULT_TRAIN_CONFIG,
  monitorMode,
  predictSettings,
  type TrainConfig,
  trainModelName,
  validateTrainConfig,
} from "./config.js";
import { resolveLossConfig } from "./loss-config.js";

describe("TrainConfig", () => {
  it("has defaults for every field", () => {
    assert.equal(DEFAULT_TRAIN_CONFIG.model.arch, "unet");
    assert.deepEqual(DEFAULT_TRAIN_CONFIG.optimizer, {
      name: "adam",
      lr: 1e-3,
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-7,
      weightDecay: 0,
    });
    assert.deepEqual(DEFAULT_TRAIN_CONFIG.schedule, { name: "cosine", minLr: 0 });
    assert.equal(DEFAULT_TRAIN_CONFIG.loss, "ce+dice");
    assert.equal(DEFAULT_TRAIN_CONFIG.batchNormMomentum, 0.9);
    assert.deepEqual(DEFAULT_TRAIN_CONFIG.inputSize, [128, 128]);
    assert.equal(DEFAULT_TRAIN_CONFIG.monitor, "val/miou");
    assert.equal(monitorMode(DEFAULT_TRAIN_CONFIG), "max");
    assert.equal(DEFAULT_TRAIN_CONFIG.earlyStopping, null);
    assert.equal(DEFAULT_TRAIN_CONFIG.classWeights, null);
  });

  it("takes patch training, augmentation options and the predict settings, naming bad fields", () => {
    const cfg = validateTrainConfig({
      patches: { perImage: 200 },
      augment: { vflip: 0.5, rot90: 0.5, scale: [1, 1] },
      predict: "tile",
    });
    assert.deepEqual(cfg.patches, { perImage: 200 });
    assert.deepEqual(cfg.augment, { vflip: 0.5, rot90: 0.5, scale: [1, 1] });
    assert.deepEqual(cfg.predict, { mode: "tile", overlap: 0.25, blend: "gaussian" });
    // absent unless given (runs saved before them resume), the card's default from patches
    assert.equal("patches" in DEFAULT_TRAIN_CONFIG, false);
    assert.deepEqual(predictSettings(DEFAULT_TRAIN_CONFIG), { mode: "resize" });
    assert.deepEqual(predictSettings(validateTrainConfig({ patches: { perImage: 1 } })).mode, "tile");
    assert.throws(
      () =>
        validateTrainConfig({
          patches: { perImage: 0 },
          augment: { vflip: 2, scale: [0.9, 0.5] },
          predict: { mode: "tile", overlap: 1 },
        }),
      (e: Error) =>
        /patches\.perImage/.test(e.message) && /augment/.test(e.message) && /predict\.overlap/.test(e.message),
    );
  });

  it("expands names to their defaults and keeps the user's object as it was", () => {
    const input: TrainConfig = { optimizer: "sgd", schedule: { name: "plateau", patience: 2 }, monitor: "val/loss" };
    const copy = structuredClone(input);
    const cfg = validateTrainConfig(input);
    assert.deepEqual(input, copy);
    assert.deepEqual(cfg.optimizer, { name: "sgd", lr: 0.01, momentum: 0.9, nesterov: false, weightDecay: 0 });
    assert.deepEqual(cfg.schedule, { name: "plateau", patience: 2, factor: 0.1, minLr: 0 });
    assert.equal(monitorMode(cfg), "min");
  });

  it("names each bad field in one SegkitError", () => {
    assert.throws(
      () =>
        validateTrainConfig({
          batchSize: 0,
          optimizer: { name: "adam", lr: -1 },
          schedule: "linear" as never,
          lerningRate: 1,
        } as never),
      (err: Error) =>
        err.name === "SegkitError" &&
        /batchSize/.test(err.message) &&
        /optimizer\.lr/.test(err.message) &&
        /schedule/.test(err.message) &&
        /lerningRate/.test(err.message),
    );
    assert.throws(() => validateTrainConfig({ loss: "cee" as never }), /loss: unknown loss "cee"; valid: ce, bce/);
    assert.throws(() => validateTrainConfig({ model: { arch: "resnet" as never } }), /model\.arch/);
  });
});

describe("TrainConfig encoderWeights, freezeEncoderEpochs", () => {
  it("are absent unless given (older runs resume), and checked when given", () => {
    const cfg = validateTrainConfig({});
    assert.ok(!("encoderWeights" in cfg) && !("freezeEncoderEpochs" in cfg));
    const given = validateTrainConfig({ encoderWeights: "w.h5", freezeEncoderEpochs: 3 });
    assert.equal(given.encoderWeights, "w.h5");
    assert.equal(given.freezeEncoderEpochs, 3);
    assert.throws(() => validateTrainConfig({ freezeEncoderEpochs: -1 }), /freezeEncoderEpochs/);
    assert.throws(() => validateTrainConfig({ encoderWeights: "" }), /encoderWeights/);
  });
});

describe("TrainConfig model: a preset or an encoder and a decoder", () => {
  it("keeps the preset form as it was, and takes the composed form", () => {
    assert.deepEqual(validateTrainConfig({}).model, { arch: "unet", options: {} });
    assert.deepEqual(validateTrainConfig({ model: { arch: "mobilenetv2-unet", options: { alpha: 0.35 } } }).model, {
      arch: "mobilenetv2-unet",
      options: { alpha: 0.35 },
    });
    const composed: TrainConfig = {
      model: { encoder: { name: "mobilenetv2", alpha: 0.5 }, decoder: "unet", options: { freezeEncoder: true } },
    };
    const copy = structuredClone(composed);
    const cfg = validateTrainConfig(composed);
    assert.deepEqual(cfg.model, {
      encoder: { name: "mobilenetv2", alpha: 0.5 },
      decoder: "unet",
      options: { freezeEncoder: true },
    });
    assert.deepEqual(composed, copy);
    assert.equal(trainModelName(cfg.model), "mobilenetv2+unet");
    assert.equal(trainModelName(DEFAULT_TRAIN_CONFIG.model), "unet");
  });

  it("checks names and encoder/decoder options up front, and the form", () => {
    const bad: [TrainConfig["model"], RegExp][] = [
      [
        { encoder: "resnet34" as never, decoder: "unet" },
        /model: createModel: unknown encoder "resnet34"; valid: unet, conv-stack, mobilenetv2/,
      ],
      [{ encoder: "unet", decoder: { name: "unet", block: "dense" as never } }, /model: decoder unet options: block/],
      [{ encoder: "unet" }, /model\.decoder: required with encoder/],
      [
        { arch: "unet", encoder: "unet", decoder: "unet" },
        /model\.arch: give arch \(a preset\) or encoder and decoder, not both/,
      ],
    ];
    for (const [model, message] of bad) {
      assert.throws(() => validateTrainConfig({ model }), message, JSON.stringify(model));
    }
  });
});

describe("the loss the loop trains with", () => {
  it("gives the dataset's ignore index to every base loss and class weights to cross-entropy", () => {
    assert.deepEqual(resolveLossConfig("ce+dice", 11, [1, 2]), {
      sum: [
        { loss: { loss: "ce", options: { ignoreIndex: 11, classWeights: [1, 2] } } },
        { loss: { loss: "dice", options: { ignoreIndex: 11 } } },
      ],
    });
    assert.deepEqual(resolveLossConfig({ loss: "focal", options: { gamma: 1, ignoreIndex: 0 } }, 255, null), {
      loss: "focal",
      options: { ignoreIndex: 0, gamma: 1 },
    });
  });

  it("refuses class weights without a cross-entropy term", () => {
    assert.throws(() => resolveLossConfig("dice", 255, [1, 2]), /cross-entropy loss, and this loss has none/);
  });
});

function closeAll(actual: readonly number[], expected: readonly number[]): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs((actual[i] as number) - (expected[i] as number)) < 1e-12,
      `[${i}]: ${actual[i]} vs ${expected[i]}`,
    );
  }
}

/** A dataset of the given masks (W x H each) and blank images. */
function maskDataset(masks: Mask[], classNames: string[]): Dataset {
  return {
    format: "test",
    classNames,
    ignoreIndex: 255,
    length: masks.length,
    skipped: [],
    id: (i) => `m${i}`,
    files: () => [],
    get: async (i) => {
      throw new Error(`get(${i}) should not be needed when getMask exists`);
    },
    getMask: async (i) => masks[i] as Mask,
  };
}

describe('classWeights "auto": median-frequency balancing', () => {
  it("on a hand-made dataset", async () => {
    // image A: 0 0 0 1  (4 scored pixels)      image B: 1 1 2 255  (3 scored pixels, one ignored)
    const a = createMask(2, 2, Uint8Array.from([0, 0, 0, 1]));
    const b = createMask(2, 2, Uint8Array.from([1, 1, 2, 255]));
    const ds = maskDataset([a, b], ["a", "b", "c", "never"]);
    // freq: class 0 3/4 (only in A); class 1 (1 + 2) / (4 + 3) = 3/7; class 2 1/3 (only in B); class 3 absent
    // median of {1/3, 3/7, 3/4} = 3/7; weights 3/7 / freq: 4/7, 1, 9/7; the absent class gets 1
    const w = await autoClassWeights(ds);
    closeAll(w, [4 / 7, 1, 9 / 7, 1]);
    assert.deepEqual(countClassPixels(a, 4), { pixels: [3, 1, 0, 0], imagePixels: [4, 4, 0, 0] });
  });

  it("takes the mean of the two middle frequencies for an even count", () => {
    // freqs 0.1, 0.2, 0.3, 0.4 -> median 0.25
    const w = medianFrequencyWeights({ pixels: [1, 2, 3, 4], imagePixels: [10, 10, 10, 10] });
    closeAll(w, [2.5, 1.25, 0.25 / 0.3, 0.625]);
  });
});
