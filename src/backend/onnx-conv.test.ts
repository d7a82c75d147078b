// The per-signature tuning of onnx-conv.ts: timed once, reused, and nested convolutions stay on wasm.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "./init.js";
import {
  configureOnnxConv,
  MAX_TUNED_SIGNATURES,
  onnxConvChoices,
  onnxConvEngines,
  pinOnnxConvEngines,
  resetOnnxConv,
} from "./onnx-conv.js";

before(async () => {
  await initBackend({ backend: "wasm" });
  configureOnnxConv({ mode: "auto" });
  resetOnnxConv();
});
after(() => resetOnnxConv());

describe("onnxruntime convolution dispatch (auto)", () => {
  it("times both engines on a signature's first call, then reuses the choice", () => {
    const x = tf.randomNormal([2, 16, 16, 8]) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 8, 4]) as tf.Tensor4D;
    const backend = tf.backend();
    const ids = backend.numDataIds();
    const first = tf.conv2d(x, w, 1, "same");
    const second = tf.conv2d(x, w, 1, "same");
    assert.equal(onnxConvChoices().size, 1);
    const [choice] = [...onnxConvChoices().values()];
    assert.ok(choice, "no choice recorded");
    const ms = Object.entries(choice.ms);
    assert.deepEqual(ms.map(([name]) => name).sort(), ["conv", "wasm"]);
    assert.ok(
      ms.every(([, t]) => Number.isFinite(t) && t > 0),
      JSON.stringify(choice.ms),
    );
    const fastest = ms.reduce((a, b) => (b[1] < a[1] ? b : a));
    assert.equal(choice.engine, fastest[0]);
    assert.equal(Boolean(choice.session), choice.engine !== "wasm");
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(first, second))).dataSync()[0] as number);
    assert.ok(diff < 1e-4, `engines disagree by ${diff}`);
    tf.dispose([first, second]);
    assert.equal(backend.numDataIds(), ids, "the losing engine's output is freed");
    tf.dispose([x, w]);
    resetOnnxConv();
  });

  it("keeps the convolutions inside a gradient kernel on wasm (one signature: the gradient's)", () => {
    const x = tf.randomNormal([2, 12, 12, 4]) as tf.Tensor4D;
    const dy = tf.randomNormal([2, 12, 12, 6]) as tf.Tensor4D;
    const dw = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
      strides: 1,
      pad: "same",
      dataFormat: "NHWC",
      filterShape: [3, 3, 4, 6],
    } as unknown as tf.NamedAttrMap) as tf.Tensor;
    assert.deepEqual(
      [...onnxConvChoices().keys()].map((k) => k.split(" ")[0]),
      ["dw"],
    );
    tf.dispose([x, dy, dw]);
    resetOnnxConv();
  });

  it("remembers at most MAX_TUNED_SIGNATURES signatures, forgetting the oldest", () => {
    configureOnnxConv({ mode: "onnx" });
    const w = tf.ones([1, 1, 1, 1]) as tf.Tensor4D;
    for (let width = 1; width <= MAX_TUNED_SIGNATURES + 2; width++) {
      tf.tidy(() => tf.conv2d(tf.ones([1, 1, width, 1]) as tf.Tensor4D, w, 1, "valid"));
    }
    const keys = [...onnxConvChoices().keys()];
    assert.equal(keys.length, MAX_TUNED_SIGNATURES);
    assert.match(keys[0] as string, /^conv 1,1,3,1 /); // widths 1 and 2 forgotten
    w.dispose();
    configureOnnxConv({ mode: "auto" });
    resetOnnxConv();
  });

  it("uses pinned engines without timing, so another process can repeat a run's arithmetic", () => {
    const x = tf.randomNormal([1, 8, 8, 2]) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 2, 2]) as tf.Tensor4D;
    tf.tidy(() => tf.conv2d(x, w, 1, "same"));
    const tuned = onnxConvEngines();
    const [key, engine] = Object.entries(tuned)[0] as [string, string];
    assert.deepEqual(Object.keys(tuned), [key]);
    for (const pin of ["wasm", "conv", engine]) {
      resetOnnxConv();
      pinOnnxConvEngines({ [key]: pin });
      const y = tf.conv2d(x, w, 1, "same");
      const choice = onnxConvChoices().get(key);
      assert.equal(choice?.engine, pin);
      assert.deepEqual(choice?.ms, {}, "a pinned signature is not timed");
      assert.equal(Boolean(choice?.session), pin !== "wasm");
      assert.deepEqual(onnxConvEngines(), { [key]: pin });
      y.dispose();
    }
    // a pin naming a graph the signature lacks is ignored: the signature is timed as usual
    resetOnnxConv();
    pinOnnxConvEngines({ [key]: "no-such-graph" });
    tf.tidy(() => tf.conv2d(x, w, 1, "same"));
    assert.deepEqual(Object.keys(onnxConvChoices().get(key)?.ms ?? {}).sort(), ["conv", "wasm"]);
    tf.dispose([x, w]);
    resetOnnxConv();
  });

  it("is off with onnxConv: false", async () => {
    await initBackend({ backend: "wasm", onnxConv: false });
    tf.tidy(() => tf.conv2d(tf.ones([1, 8, 8, 2]) as tf.Tensor4D, tf.ones([3, 3, 2, 2]) as tf.Tensor4D, 1, "same"));
    assert.equal(onnxConvChoices().size, 0);
    await initBackend({ backend: "wasm" });
  });
});
