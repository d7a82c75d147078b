// segkit's fused Adam update against tfjs's own AdamOptimizer.applyGradients on the same gradients, on the cpu and
// wasm backends: weights, both moments and the bias-correction accumulators bit for bit equal after several steps,
// slots named as tfjs names them, and no tensor left behind.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend/init.js";
import { createRng } from "../core/random.js";
import { applyAdam } from "./fused-adam.js";

before(async () => {
  await initBackend({ backend: "wasm" });
});

const rng = createRng(3);
const random = (n: number, scale: number) => Float32Array.from({ length: n }, () => scale * rng.uniform(-1, 1));

/** Weights, moments and accumulators after `steps` updates with the gradient sequence `grads` of two weights. */
async function run(fused: boolean, grads: Float32Array[][], init: Float32Array[]): Promise<Float32Array[]> {
  const vars = init.map((w, i) => tf.variable(tf.tensor(w, i === 0 ? [2, 3, 5] : [w.length]), true, `w${i}_${fused}`));
  const opt = tf.train.adam(0.01, 0.9, 0.999, 1e-7);
  const before = tf.memory().numTensors;
  for (const step of grads) {
    const named = step.map((g, i) => ({ name: (vars[i] as tf.Variable).name, tensor: tf.tensor(g, vars[i]?.shape) }));
    if (fused) applyAdam(opt, named);
    else opt.applyGradients(named);
    tf.dispose(named.map((n) => n.tensor));
    if (step !== grads[0]) assert.equal(tf.memory().numTensors, before + 4, "only the 4 moment slots are new");
  }
  const weights = await opt.getWeights();
  const out = [
    ...vars.map((v) => v.dataSync() as Float32Array),
    ...weights.map((w) => w.tensor.dataSync() as Float32Array),
    ...[
      (opt as unknown as { accBeta1: tf.Variable }).accBeta1,
      (opt as unknown as { accBeta2: tf.Variable }).accBeta2,
    ].map((t) => t.dataSync() as Float32Array),
  ];
  assert.deepEqual(
    weights.map((w) => w.name.replace(`_${fused}`, "")),
    ["iter", "w0/m", "w1/m", "w0/v", "w1/v"],
  );
  tf.dispose(weights[0]?.tensor);
  opt.dispose();
  tf.dispose(vars);
  return out;
}

describe("fused Adam", () => {
  for (const backend of ["cpu", "wasm"]) {
    it(`equals tfjs's Adam bit for bit on ${backend} (weights, moments, accumulators, 5 steps)`, async () => {
      await tf.setBackend(backend);
      const init = [random(30, 1), random(7, 0.1)];
      // gradients of very different scales, zeros among them
      const grads = Array.from({ length: 5 }, (_, k) => [
        random(30, 10 ** -k),
        random(7, 100).map((g, i) => (i === k ? 0 : g)),
      ]);
      const want = await run(false, grads, init);
      const got = await run(true, grads, init);
      assert.equal(got.length, want.length);
      want.forEach((w, i) => {
        assert.deepEqual(got[i], w, `array ${i}`);
      });
      assert.notDeepEqual(got[0], init[0], "the weights moved");
    });
  }
});
