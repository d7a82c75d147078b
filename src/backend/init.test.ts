// initBackend picks wasm in Node (tfjs-node is not installed here), registers segkit's kernels once, and replaces
// the stock wasm MaxPoolGrad, which sends the gradient of a window whose values are all <= 0 to the wrong place.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { SegkitError } from "../core/errors.js";
import { initBackend } from "./init.js";

/** MaxPoolGrad 2x2/2 of an all-negative 1x2x2x1 input with dy = 1: the gradient belongs to the max (-0.5). */
function maxPoolGradOfNegatives(kernel: tf.KernelConfig): number[] {
  const backend = tf.backend();
  const input = tf.tensor4d([-1, -0.5, -2, -3], [1, 2, 2, 1]);
  const output = tf.tensor4d([-0.5], [1, 1, 1, 1]);
  const dy = tf.ones([1, 1, 1, 1]);
  const attrs = { filterSize: 2, strides: 2, pad: "valid" };
  const dx = kernel.kernelFunc({ inputs: { dy, input, output }, attrs, backend }) as tf.TensorInfo;
  const values = Array.from(backend.readSync(dx.dataId) as Float32Array);
  backend.disposeData(dx.dataId);
  tf.dispose([input, output, dy]);
  return values;
}

describe("initBackend", () => {
  it("the stock wasm MaxPoolGrad misroutes the gradient of all-negative windows; segkit's does not", async () => {
    assert.ok(await tf.setBackend("wasm"));
    const stock = tf.getKernel(tf.MaxPoolGrad, "wasm");
    assert.ok(stock);
    // its running max starts at FLT_MIN, so the gradient lands on the window's first element, not its max
    assert.deepEqual(maxPoolGradOfNegatives(stock), [1, 0, 0, 0], "tfjs fixed its MaxPoolGrad: drop segkit's");
    assert.equal(await initBackend(), "wasm");
    const ours = tf.getKernel(tf.MaxPoolGrad, "wasm");
    assert.ok(ours && ours !== stock);
    assert.deepEqual(maxPoolGradOfNegatives(ours), [0, 1, 0, 0]);
  });

  it("is idempotent and registers the gradient kernels wasm lacks", async () => {
    assert.equal(await initBackend(), "wasm");
    const kernel = tf.getKernel(tf.Conv2DBackpropFilter, "wasm");
    assert.ok(kernel);
    assert.equal(await initBackend({ backend: "wasm" }), "wasm");
    assert.equal(tf.getKernel(tf.Conv2DBackpropFilter, "wasm"), kernel);
    assert.equal(tf.getBackend(), "wasm");
  });

  it("switches to cpu on request, with a warning that it is slow", async (t) => {
    const warn = t.mock.method(console, "warn", () => {});
    assert.equal(await initBackend({ backend: "cpu" }), "cpu");
    assert.equal(tf.getBackend(), "cpu");
    assert.match(String(warn.mock.calls[0]?.arguments[0]), /slow/);
    assert.equal(await initBackend(), "wasm");
  });

  it("rejects an unknown backend by listing the valid ones, and says how to get tensorflow", async () => {
    await assert.rejects(initBackend({ backend: "webgpu" as "cpu" }), (err: SegkitError) => {
      assert.match(err.describe(), /auto, tensorflow, wasm, cpu/);
      return true;
    });
    await assert.rejects(initBackend({ threads: 0 }), SegkitError);
    await assert.rejects(initBackend({ backend: "tensorflow" }), (err: SegkitError) => {
      assert.match(err.describe(), /npm install @tensorflow\/tfjs-node/);
      return true;
    });
  });
});
