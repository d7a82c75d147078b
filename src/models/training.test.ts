// A full training step of every model with every loss, on segkit's default Node backend (wasm with the kernels
// segkit registers), as issue 4 asks: loss finite, every trainable weight updated, no tensor left behind.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend/init.js";
import { createLoss, type LossConfig } from "../losses/registry.js";
import { createModel, MODEL_ARCHS, type ModelArch } from "./registry.js";

const SIZE = 32;
const OPTIONS: Record<ModelArch, object> = {
  "encoder-decoder": { filters: [8, 16] },
  unet: { baseFilters: 8, depth: 3 },
  "mobilenetv2-unet": { alpha: 0.35, decoderFilters: [32, 16, 16, 8] },
};
const LOSSES: { classes: number; losses: LossConfig[] }[] = [
  { classes: 3, losses: ["ce", "dice", "focal", "ce+dice"] },
  { classes: 1, losses: ["bce", "dice", "focal", "bce+dice"] },
];

before(async () => {
  assert.equal(await initBackend(), "wasm");
});

describe("one training step on the default backend", () => {
  for (const arch of MODEL_ARCHS) {
    for (const { classes, losses } of LOSSES) {
      it(`${arch}, ${classes === 1 ? "binary" : `${classes} classes`}: ${losses.join(", ")}`, () => {
        const before = tf.memory().numTensors;
        const model = createModel(arch, { numClasses: classes, inputSize: [SIZE, SIZE], ...OPTIONS[arch] } as never);
        const x = tf.randomUniform([2, SIZE, SIZE, 3], 0, 255, "float32", 1);
        const y = tf.tidy(() => {
          const labels = tf.randomUniform([2, SIZE, SIZE], 0, Math.max(2, classes), "int32", 2);
          // a few ignored pixels (255) in every batch
          return tf.where(
            tf.randomUniform([2, SIZE, SIZE], 0, 1, "float32", 3).less(0.05),
            tf.fill(labels.shape, 255, "int32"),
            labels,
          );
        });
        const optimizer = tf.train.adam(1e-2);
        for (const config of losses) {
          const loss = createLoss(config);
          const weightsBefore = model.trainableWeights.map((w) => w.read().dataSync().slice());
          const cost = optimizer.minimize(() => loss(y, model.apply(x, { training: true }) as tf.Tensor), true);
          const value = cost?.dataSync()[0] as number;
          cost?.dispose();
          assert.ok(Number.isFinite(value) && value > 0, `${config}: loss ${value}`);
          const changed = model.trainableWeights.filter((w, k) => {
            const now = w.read().dataSync();
            return now.some((v, j) => v !== (weightsBefore[k] as Float32Array)[j]);
          });
          assert.equal(
            changed.length,
            model.trainableWeights.length,
            `${config}: ${changed.length} of ${model.trainableWeights.length} weights updated`,
          );
        }
        tf.dispose([x, y]);
        optimizer.dispose();
        model.dispose();
        assert.equal(tf.memory().numTensors, before);
      });
    }
  }
});
