// The engines segkit builds on install from the npm registry alone and load in Node (issue 2's dependency set);
// onnxruntime's is checked in src/onnx/onnx.test.ts, the one place that imports it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import sharp from "sharp";

describe("engines", () => {
  it("tfjs runs on the wasm backend and frees what it makes", async () => {
    assert.ok(await tf.setBackend("wasm"));
    await tf.ready();
    assert.equal(tf.getBackend(), "wasm");
    const before = tf.memory().numTensors;
    const y = tf.tidy(() => tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2])));
    assert.deepEqual(Array.from(await y.data()), [19, 22, 43, 50]);
    y.dispose();
    assert.equal(tf.memory().numTensors, before);
  });

  it("sharp decodes the formats segkit reads", () => {
    for (const f of ["jpeg", "png", "webp", "tiff", "gif"] as const) assert.ok(sharp.format[f].input.buffer, f);
  });
});
