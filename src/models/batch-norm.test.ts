// segkit's BatchNormalization against tfjs-layers' own, in training and inference, on cpu and wasm (native kernels on and off).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend/init.js";
import { relativeError } from "../core/compare.js";
import { createRng } from "../core/random.js";
import { BatchNormalization } from "./batch-norm.js";

const rng = createRng(11);
const random = (shape: number[], scale = 1, shift = 0) =>
  tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => shift + scale * rng.uniform(-1, 1)),
    shape,
  );

/** Output, gradients (x, gamma, beta) of sum(y * r) and moving statistics after one training call. */
function trainingStep(layer: tf.layers.Layer, x: tf.Tensor, r: tf.Tensor) {
  const [gamma, beta, movingMean, movingVariance] = layer.weights;
  const f = (xi: tf.Tensor) => tf.sum(tf.mul(layer.apply(xi, { training: true }) as tf.Tensor, r));
  const { value, grads } = tf.variableGrads(
    () => f(x) as tf.Scalar,
    [(gamma as tf.LayerVariable).read() as tf.Variable, (beta as tf.LayerVariable).read() as tf.Variable],
  );
  value.dispose();
  const dx = tf.grad(f)(x);
  const y = layer.apply(x, { training: false }) as tf.Tensor; // after two training calls' moving-average updates
  return {
    dx,
    dgamma: grads[((gamma as tf.LayerVariable).read() as tf.Variable).name] as tf.Tensor,
    dbeta: grads[((beta as tf.LayerVariable).read() as tf.Variable).name] as tf.Tensor,
    y,
    movingMean: (movingMean as tf.LayerVariable).read().clone(),
    movingVariance: (movingVariance as tf.LayerVariable).read().clone(),
  };
}

// wasm with segkit's native kernels where they loaded (backend/native.ts), and without: both paths are checked
for (const [backend, native] of [
  ["cpu", false],
  ["wasm", true],
  ["wasm", false],
] as const) {
  describe(`BatchNormalization (segkit) on ${backend}${native ? "" : " without native kernels"}`, () => {
    it("matches tfjs-layers' layer: outputs, gradients, moving statistics", async () => {
      await initBackend({ backend, native });
      const shape = [3, 5, 4, 6];
      const x = random(shape, 2, 0.5); // mean away from 0: the variance path matters
      const r = random(shape);
      const gamma = random([6], 0.5, 1);
      const beta = random([6]);
      const build = (layer: tf.layers.Layer) => {
        layer.apply(tf.input({ shape: shape.slice(1) }));
        layer.setWeights([gamma, beta, random([6], 0.1), random([6], 0.2, 1)].map((t) => t.clone()));
        return layer;
      };
      const ours = build(new BatchNormalization({ name: "ours", momentum: 0.9 }));
      const stock = build(tf.layers.batchNormalization({ name: "stock", momentum: 0.9 }));
      // identical moving statistics to start with
      stock.setWeights(ours.getWeights());
      const before = tf.memory().numTensors;
      const a = trainingStep(ours, x, r);
      const b = trainingStep(stock, x, r);
      for (const k of Object.keys(a) as (keyof typeof a)[]) {
        const err = relativeError(a[k].dataSync(), b[k].dataSync());
        assert.ok(err < 1e-4, `${k}: relative error ${err}`);
      }
      tf.dispose([...Object.values(a), ...Object.values(b)]);
      assert.equal(tf.memory().numTensors, before, "tensors leaked");
      assert.equal(ours.getClassName(), "BatchNormalization");
      tf.dispose([x, r, gamma, beta]);
      ours.dispose();
      stock.dispose();
    });
  });
}
