// The loop's optimizers: weight decay as PyTorch's (grad += wd * w), learning-rate changes, and a state that
// round-trips exactly (tfjs's Adam.setWeights alone recomputes its bias-correction accumulators with pow, which
// differs from the product training accumulated).
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend/init.js";
import { validateTrainConfig } from "./config.js";
import { createOptimizer, type TrainOptimizer } from "./optimizer.js";

before(async () => {
  await initBackend();
});

const optimizerConfig = (o: Parameters<typeof validateTrainConfig>[0]) => validateTrainConfig(o).optimizer;

/** loss = sum(w * c) + sum(w^2) / 2 on w (a fixed, non-trivial gradient). */
function lossOf(w: tf.Variable): () => tf.Scalar {
  return () =>
    tf.tidy(
      () =>
        w
          .mul(tf.tensor1d([0.3, -1.2, 2.0]))
          .sum()
          .add(w.square().sum().div(2)) as tf.Scalar,
    );
}

function steps(opt: TrainOptimizer, w: tf.Variable, n: number): void {
  for (let k = 0; k < n; k++) opt.step(lossOf(w), [w]).dispose();
}

describe("TrainOptimizer", () => {
  it("SGD with weight decay: w -= lr * (grad + weightDecay * w)", () => {
    const w = tf.tidy(() => tf.variable(tf.tensor1d([2])));
    const opt = createOptimizer(
      optimizerConfig({ optimizer: { name: "sgd", lr: 0.1, momentum: 0, weightDecay: 0.5 } }),
    );
    opt.step(() => w.sum() as tf.Scalar, [w]).dispose(); // grad 1, decay 0.5 * 2 = 1
    assert.ok(Math.abs((w.dataSync()[0] as number) - 1.8) < 1e-7);
    opt.setLearningRate(0.01);
    opt.step(() => w.sum() as tf.Scalar, [w]).dispose(); // 1.8 - 0.01 * (1 + 0.9)
    assert.ok(Math.abs((w.dataSync()[0] as number) - 1.781) < 1e-6);
    opt.dispose();
    w.dispose();
  });

  for (const name of ["adam", "sgd"] as const) {
    it(`${name}: a restored state continues exactly as the original`, async () => {
      const tensorsBefore = tf.memory().numTensors;
      const config = optimizerConfig({ optimizer: { name, lr: 0.05, weightDecay: 1e-2 } });
      const w1 = tf.tidy(() => tf.variable(tf.tensor1d([1, 2, 3])));
      const original = createOptimizer(config);
      steps(original, w1, 11);
      const { tensors, scalars } = await original.getState();
      const w2 = tf.tidy(() => tf.variable(w1.clone()));
      const restored = createOptimizer(config);
      await restored.setState(tensors, scalars);
      tf.dispose(tensors.map((t) => t.tensor));
      assert.equal(restored.optimizer.iterations, 11);
      if (name === "adam") {
        // what tfjs's setWeights alone would leave: 0.9^12 by pow, not the running product
        const pow = tf.pow(0.9, 12);
        assert.notEqual(pow.dataSync()[0], scalars.accBeta1, "pow and the product agree here: pick another count");
        pow.dispose();
        const acc = (o: TrainOptimizer) => {
          const { accBeta1, accBeta2 } = o.optimizer as unknown as Record<string, tf.Variable>;
          return [accBeta1?.dataSync()[0], accBeta2?.dataSync()[0]];
        };
        assert.deepEqual(acc(restored), acc(original));
      }
      steps(original, w1, 5);
      steps(restored, w2, 5);
      assert.deepEqual(Array.from(w2.dataSync()), Array.from(w1.dataSync()));
      original.dispose();
      restored.dispose();
      tf.dispose([w1, w2]);
      assert.equal(tf.memory().numTensors, tensorsBefore);
    });
  }
});
