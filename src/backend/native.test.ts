// segkit's native kernels (native/segkit.cc): built in CI, checked against hand-computed batch norm values, the tfjs
// path (batch norm, Relu's gradient), NaN through a fused relu, and their argument checks. The convolutions, pooling
// and row copies are checked against the cpu backend in kernels.test.ts and layout-kernels.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { relativeError } from "../core/compare.js";
import { createRng } from "../core/random.js";
import { BATCH_NORM_TRAINING, batchNormTraining } from "../models/batch-norm.js";
import { nativeKernels, nativeKernelsStatus } from "./addon.js";
import { initBackend } from "./init.js";
import { RELU_GRAD } from "./native.js";

const status = nativeKernelsStatus();
// CI builds the addon at `npm ci`; elsewhere (no compiler) these tests skip and the tfjs path stays in use
const skip = process.env.CI ? false : status.loaded ? false : `native kernels not built: ${status.reason}`;

describe("native kernels", { skip }, () => {
  it("load in CI (npm ci builds them)", () => {
    assert.ok(status.loaded, `the addon did not load: ${status.reason}`);
  });

  it("batch norm forward and backward: hand-computed values", () => {
    const k = nativeKernels();
    assert.ok(k);
    // 4 rows, 2 channels: channel 0 = 1, 2, 3, 6 (mean 3, var 3.5); channel 1 = 5 everywhere (var 0)
    const x = Float32Array.of(1, 5, 2, 5, 3, 5, 6, 5);
    const gamma = Float32Array.of(2, 1);
    const beta = Float32Array.of(0.5, -1);
    const y = new Float32Array(8);
    const mean = new Float32Array(2);
    const variance = new Float32Array(2);
    const eps = 0.5; // var + eps = 4 and 0.5
    k.batchNormForward(x, gamma, beta, eps, y, mean, variance);
    assert.deepEqual([...mean], [3, 5]);
    assert.deepEqual([...variance], [3.5, 0]);
    // channel 0: 2 * (x - 3) / 2 + 0.5; channel 1: -1
    assert.deepEqual([...y], [-1.5, -1, -0.5, -1, 0.5, -1, 3.5, -1]);
    // dy = 1 on channel 0 only at row 3, 0 elsewhere: sum(dy) = 1, sum(dy * xc) = 3
    const dy = Float32Array.of(0, 0, 0, 0, 0, 0, 1, 0);
    const dx = new Float32Array(8);
    const dgamma = new Float32Array(2);
    const dbeta = new Float32Array(2);
    k.batchNormBackward(dy, x, mean, variance, gamma, eps, dx, dgamma, dbeta);
    // r = 1/2, a = 1, b = -1 * 1/4 * 3 / 4 = -3/16, c = -1 * 1 / 4: dx = dy - 3/16 * xc - 1/4
    const xc = [-2, -1, 0, 3];
    const expected = xc.map((v, i) => (i === 3 ? 1 : 0) - (3 / 16) * v - 0.25);
    assert.deepEqual([...dbeta], [1, 0]);
    assert.deepEqual([...dgamma], [1.5, 0]);
    for (const [i, e] of expected.entries()) assert.ok(Math.abs((dx[2 * i] as number) - e) < 1e-6, `dx[${i}]`);
    assert.deepEqual([dx[1], dx[3], dx[5], dx[7]], [0, 0, 0, 0]);
  });

  it("Relu's gradient on wasm: one native kernel, the stock values (0 at x <= 0, NaN at NaN x)", async () => {
    const x = [2, 0, -1, Number.NaN, 3, -0, 1e-30, -5];
    const dy = [1.5, 2, 3, 4, Number.POSITIVE_INFINITY, 6, -7, Number.NaN];
    const grad = () =>
      tf.tidy(() => [
        ...tf
          .grad((t: tf.Tensor) => tf.relu(t))(tf.tensor1d(x), tf.tensor1d(dy))
          .dataSync(),
      ]);
    await initBackend({ backend: "wasm", native: false });
    const stock = grad();
    await initBackend({ backend: "wasm", native: true });
    assert.ok(tf.getKernel(RELU_GRAD, "wasm"));
    const before = tf.memory().numTensors;
    const ours = grad();
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
    assert.deepEqual(stock, [1.5, 0, 0, Number.NaN, Number.POSITIVE_INFINITY, 0, -7, Number.NaN]);
    assert.deepEqual(ours, stock);
  });

  it("FusedConv2D with relu on wasm: a NaN input gives NaN in every channel it reaches (vector and leftover ones)", async () => {
    await initBackend({ backend: "wasm", native: true, onnxConv: false }); // the native kernel, not onnxruntime's
    const [h, w, ci, co] = [5, 6, 3, 20]; // 20 output channels: one vector of 16, then 4 one by one
    const xv = Float32Array.from({ length: h * w * ci }, (_, i) => ((i * 7) % 11) - 5);
    xv[(2 * w + 3) * ci + 1] = Number.NaN; // pixel (2, 3)
    const y = tf.tidy(() =>
      tf.fused
        .conv2d({
          x: tf.tensor4d(xv, [1, h, w, ci]),
          filter: tf.fill([3, 3, ci, co], 0.1) as tf.Tensor4D,
          bias: tf.fill([co], 0.5),
          strides: 1,
          pad: "same",
          activation: "relu",
        })
        .dataSync(),
    );
    for (let oy = 0; oy < h; oy++) {
      for (let ox = 0; ox < w; ox++) {
        const reached = Math.abs(oy - 2) <= 1 && Math.abs(ox - 3) <= 1;
        for (let c = 0; c < co; c++) {
          const v = y[(oy * w + ox) * co + c] as number;
          assert.equal(Number.isNaN(v), reached, `pixel (${oy}, ${ox}) channel ${c}: ${v}`);
          if (!reached) assert.ok(v >= 0);
        }
      }
    }
    await initBackend({ backend: "wasm", native: true });
  });

  it("refuses arrays of the wrong type or length with a clear error", () => {
    const k = nativeKernels();
    assert.ok(k);
    const f = (n: number) => new Float32Array(n);
    assert.throws(() => k.batchNormForward(f(7), f(2), f(2), 1e-3, f(7), f(2), f(2)), /multiple of the channel count/);
    assert.throws(() => k.batchNormForward(f(8), f(2), f(3), 1e-3, f(8), f(2), f(2)), /per-channel array/);
    assert.throws(() => k.batchNormForward(f(8), f(2), f(2), 1e-3, f(4), f(2), f(2)), /y's length/);
    const ints = new Int32Array(8) as unknown as Float32Array;
    assert.throws(() => k.batchNormForward(ints, f(2), f(2), 1e-3, f(8), f(2), f(2)), /expected a Float32Array/);
    assert.throws(() => k.setThreads(0), /threads/);
  });

  it("batch norm on the wasm backend: the native kernel agrees with the tfjs path (values and gradients), no leaks", async () => {
    const rng = createRng(5);
    const shape = [2, 16, 12, 24];
    const make = (n: number, scale: number, shift: number) =>
      Float32Array.from({ length: n }, () => shift + scale * rng.uniform(-1, 1));
    const size = shape.reduce((a, b) => a * b, 1);
    const data = { x: make(size, 3, 10), dy: make(size, 1, 0.2), gamma: make(24, 0.5, 1), beta: make(24, 1, 0) };
    const kept: tf.Tensor[] = []; // batchNormTraining's mean and variance outlive tidy (the layer disposes them)
    const run = () =>
      tf.tidy(() => {
        const [x, dy] = [tf.tensor(data.x, shape), tf.tensor(data.dy, shape)];
        const [gamma, beta] = [tf.tensor1d(data.gamma), tf.tensor1d(data.beta)];
        const f = (xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const r = batchNormTraining(xi, g as tf.Tensor1D, b as tf.Tensor1D, 1e-3);
          kept.push(r.mean, r.variance);
          return tf.concat([r.y.flatten(), r.mean, r.variance]);
        };
        const value = f(x, gamma, beta);
        const grads = tf.grads(f)([x, gamma, beta], tf.concat([dy.flatten(), tf.zeros([48])]));
        return [value, ...grads].map((t) => t.dataSync().slice());
      });
    await initBackend({ backend: "wasm", native: false });
    assert.equal(tf.getKernel(BATCH_NORM_TRAINING, "wasm"), undefined);
    const reference = run();
    tf.dispose(kept.splice(0));
    await initBackend({ backend: "wasm", native: true });
    assert.ok(tf.getKernel(BATCH_NORM_TRAINING, "wasm"));
    const before = tf.memory().numTensors;
    const native = run();
    tf.dispose(kept);
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
    for (const [i, name] of ["y, mean, variance", "dx", "dgamma", "dbeta"].entries()) {
      const err = relativeError(native[i] as Float32Array, reference[i] as Float32Array);
      assert.ok(err < 1e-4, `${name}: relative error ${err}`);
    }
  });
});
