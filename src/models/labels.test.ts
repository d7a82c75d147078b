import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { tensorToLabels } from "./labels.js";

before(async () => {
  await tf.setBackend("cpu");
});

describe("tensorToLabels", () => {
  it("takes the argmax of [B, H, W, C] scores and frees its tensors", async () => {
    const before = tf.memory().numTensors;
    // 1 x 1 x 3 pixels, 3 classes
    const logits = tf.tensor4d([0.1, 2, -1, 5, 0, 0, -3, -2, -1], [1, 1, 3, 3]);
    assert.deepEqual([...(await tensorToLabels(logits))], [1, 0, 2]);
    logits.dispose();
    assert.equal(tf.memory().numTensors, before);
  });

  it("thresholds one-channel probabilities (or logits with threshold 0)", async () => {
    const probs = tf.tensor4d([0.2, 0.5, 0.9, 0.49], [1, 2, 2, 1]);
    assert.deepEqual([...(await tensorToLabels(probs))], [0, 1, 1, 0]);
    const logits = tf.tensor3d([-0.1, 0, 3, -2], [1, 2, 2]);
    assert.deepEqual([...(await tensorToLabels(logits, { threshold: 0 }))], [0, 1, 1, 0]);
    tf.dispose([probs, logits]);
  });

  it("passes int32 labels through, refusing values a mask cannot hold", async () => {
    const labels = tf.tensor3d([0, 3, 2, 1], [1, 2, 2], "int32");
    assert.deepEqual([...(await tensorToLabels(labels))], [0, 3, 2, 1]);
    const big = tf.tensor3d([0, 300, 2, 1], [1, 2, 2], "int32");
    const before = tf.memory().numTensors;
    await assert.rejects(tensorToLabels(big), /label 300 at index 1/);
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([labels, big]);
  });
});
