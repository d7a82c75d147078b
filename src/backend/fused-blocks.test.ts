// The fused conv + batch norm + ReLU op (onnxruntime) against the tfjs cpu backend's conv2d, batch norm and relu on
// random inputs, forward and gradients; `trainingApply` against `model.apply` on a U-Net on the wasm backend (loss,
// every weight's gradient, the moving statistics), with no tensor left behind.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { relativeError } from "../core/compare.js";
import { createRng } from "../core/random.js";
import { createLoss } from "../losses/registry.js";
import { batchNormTraining } from "../models/batch-norm.js";
import { createModel } from "../models/registry.js";
import { onnxRuntimeAvailable } from "../onnx/native.js";
import { configureFusedBlocks, convBnRelu, fusedBlocks, trainingApply } from "./fused-blocks.js";
import { initBackend } from "./init.js";

const rng = createRng(11);
const random = (shape: number[], lo = -1, hi = 1) =>
  tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(lo, hi)),
    shape,
  );
const TOLERANCE = 1e-4;
const skip = onnxRuntimeAvailable() ? false : "the onnxruntime binding does not load here";

interface Case {
  x: [number, number, number, number];
  kernel: [number, number, number, number];
  padding: "same" | "valid";
}

/** y, mean, variance and the gradients of sum(y * r) to x, kernel, gamma, beta, by `f`. */
function run(
  inputs: tf.Tensor[],
  f: (
    x: tf.Tensor4D,
    k: tf.Tensor4D,
    g: tf.Tensor1D,
    b: tf.Tensor1D,
  ) => {
    y: tf.Tensor;
    mean: tf.Tensor;
    variance: tf.Tensor;
  },
): Float32Array[] {
  return tf.tidy(() => {
    const [x, k, g, b, r] = inputs as [tf.Tensor4D, tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor];
    let stats: tf.Tensor[] = [];
    const loss = (xi: tf.Tensor, ki: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => {
      const out = f(xi as tf.Tensor4D, ki as tf.Tensor4D, gi as tf.Tensor1D, bi as tf.Tensor1D);
      stats = [tf.keep(out.y), tf.keep(out.mean), tf.keep(out.variance)];
      return tf.sum(tf.mul(out.y, r));
    };
    const grads = tf.grads(loss)([x, k, g, b]);
    const out = [...stats, ...grads].map((t) => t.dataSync() as Float32Array);
    tf.dispose(stats);
    return out;
  });
}

const reference = (padding: "same" | "valid") => (x: tf.Tensor4D, k: tf.Tensor4D, g: tf.Tensor1D, b: tf.Tensor1D) => {
  const { y, mean, variance } = batchNormTraining(tf.conv2d(x, k, 1, padding), g, b, 1e-3);
  return { y: tf.relu(y), mean, variance };
};

describe("fused conv + batch norm + ReLU", { skip }, () => {
  before(async () => {
    await initBackend({ backend: "wasm", threads: 2 });
    configureFusedBlocks({ enabled: true }); // opt-in
  });

  const cases: Case[] = [
    { x: [2, 9, 7, 3], kernel: [3, 3, 3, 5], padding: "same" },
    { x: [3, 6, 6, 4], kernel: [1, 1, 4, 2], padding: "same" },
    { x: [2, 8, 9, 2], kernel: [3, 3, 2, 4], padding: "valid" },
    { x: [1, 10, 10, 6], kernel: [5, 5, 6, 3], padding: "same" },
  ];
  for (const c of cases) {
    it(`matches tfjs cpu: x ${c.x}, kernel ${c.kernel}, ${c.padding} (values, statistics, four gradients)`, async () => {
      await tf.setBackend("cpu");
      const co = c.kernel[3];
      // beta around 0 and a shifted input: some pre-activations on each side of the ReLU
      const inputs = [random(c.x, -1, 3), random(c.kernel), random([co], 0.5, 1.5), random([co], -0.5, 0.5)];
      const before = tf.memory().numTensors;
      const yShape = tf.tidy(() => tf.conv2d(inputs[0] as tf.Tensor4D, inputs[1] as tf.Tensor4D, 1, c.padding).shape);
      inputs.push(random(yShape));
      const want = run(inputs, reference(c.padding));
      const got = run(inputs, (x, k, g, b) => {
        const out = convBnRelu(x, k, g, b, { padding: c.padding, epsilon: 1e-3 });
        assert.ok(out, "onnxruntime ran the block");
        return out;
      });
      const names = ["y", "mean", "variance", "dx", "dkernel", "dgamma", "dbeta"];
      names.forEach((name, i) => {
        const e = relativeError(got[i] as Float32Array, want[i] as Float32Array);
        assert.ok(e < TOLERANCE, `${name}: relative error ${e}`);
      });
      assert.ok((want[0] as Float32Array).some((v) => v === 0) && (want[0] as Float32Array).some((v) => v > 0));
      tf.dispose(inputs);
      assert.equal(tf.memory().numTensors, before - 4, "frees what it makes");
      await tf.setBackend("wasm");
    });
  }

  it("trainingApply: a U-Net's loss, gradients and moving statistics equal model.apply's on wasm", () => {
    const model = createModel("unet", { numClasses: 3, inputSize: [32, 32], depth: 3, baseFilters: 4 });
    const fused = fusedBlocks(model);
    assert.equal(fused.length, 10, `every conv + bn + relu block: ${fused.join(", ")}`);
    assert.ok(fused.includes("enc0_a_conv") && fused.includes("dec0_b_conv") && !fused.includes("logits"));
    model.getLayer("enc0_a_bn").trainable = false; // frozen: inference mode, not fused
    assert.deepEqual(fusedBlocks(model), fused.slice(1));
    model.getLayer("enc0_a_bn").trainable = true;
    const x = random([2, 32, 32, 3], 0, 255);
    const y = tf.tidy(() => tf.cast(random([2, 32, 32], 0, 2.99), "int32"));
    const loss = createLoss("ce");
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const moving = model.weights.filter((w) => w.name.includes("moving"));
    const initial = moving.map((w) => w.read().dataSync().slice());
    const step = (fuse: boolean) => {
      configureFusedBlocks({ enabled: fuse });
      moving.forEach((w, i) => {
        w.write(tf.tensor(initial[i] as Float32Array, w.read().shape));
      });
      const tensors = tf.memory().numTensors;
      const { value, grads } = tf.variableGrads(() => loss(y, trainingApply(model, x)) as tf.Scalar, vars);
      const out = [value, ...vars.map((v) => grads[v.name] as tf.Tensor)].map((t) => t.dataSync().slice());
      tf.dispose([value, ...Object.values(grads)]);
      assert.equal(tf.memory().numTensors, tensors, "no tensor left behind");
      return [...out, ...moving.map((w) => w.read().dataSync().slice())];
    };
    try {
      const got = step(true);
      const want = step(false);
      const names = ["loss", ...vars.map((v) => v.name), ...moving.map((w) => w.name)];
      names.forEach((name, i) => {
        const e = relativeError(got[i] as Float32Array, want[i] as Float32Array);
        assert.ok(e < TOLERANCE, `${name}: relative error ${e}`);
      });
    } finally {
      configureFusedBlocks({ enabled: true }); // as the suite runs
      tf.dispose([x, y]);
      model.dispose();
    }
  });

  it("trainingApply: a model without such blocks is model.apply", () => {
    const model = createModel("encoder-decoder", { numClasses: 2, inputSize: [16, 16], filters: [4, 8] });
    assert.deepEqual(fusedBlocks(model), []);
    const x = random([1, 16, 16, 3], 0, 255);
    const [a, b] = tf.tidy(() => [trainingApply(model, x), model.apply(x, { training: true }) as tf.Tensor]);
    assert.deepEqual(a?.dataSync(), b?.dataSync());
    tf.dispose([a, b, x]);
    model.dispose();
  });
});
