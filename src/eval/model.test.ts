import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend/init.js";
import { batches } from "../data/loader.js";
import { createSyntheticDataset } from "../data/synthetic.js";
import { evaluateModel, predictBatch, scoreModel } from "./model.js";

before(async () => {
  await initBackend();
});

const SIZE = 32;
const ds = createSyntheticDataset({ length: 5, size: SIZE, seed: 2 });

/** A model whose logits are the same at every pixel: `bias` (a 1x1 conv with a zero kernel). */
function constantModel(bias: number[]): tf.LayersModel {
  const input = tf.input({ shape: [SIZE, SIZE, 3] });
  const conv = tf.layers.conv2d({ filters: bias.length, kernelSize: 1 });
  const model = tf.model({ inputs: input, outputs: conv.apply(input) as tf.SymbolicTensor });
  conv.setWeights([tf.zeros([1, 1, 3, bias.length]), tf.tensor1d(bias)]);
  return model;
}

/** The masks of `ds` at SIZE, concatenated. */
async function truth(): Promise<Uint8Array> {
  const parts: number[] = [];
  for await (const b of batches(ds, { size: SIZE, batchSize: 8 })) parts.push(...b.masks);
  return Uint8Array.from(parts);
}

describe("evaluateModel", () => {
  it("scores a model that predicts class 0 everywhere: IoU of class 0 = its share, the others 0 or n/a", async () => {
    const masks = await truth();
    const C = ds.classNames.length;
    const counts = Array.from({ length: C }, (_, c) => masks.filter((v) => v === c).length);
    const scored = counts.reduce((a, b) => a + b, 0);
    const expectedIoU = counts.map((n, c) => (c === 0 ? n / scored : n > 0 ? 0 : Number.NaN));
    const finite = expectedIoU.filter(Number.isFinite);
    const meanLabel = masks.reduce((a, b) => a + b, 0) / masks.length;

    const model = constantModel([1, 0, 0]);
    const start = tf.memory().numTensors;
    const progress: number[] = [];
    // loss: the batch's mean label, so the batch-size-weighted mean over batches 2, 2, 1 is the mean over all pixels
    const loss = (y: tf.Tensor) => tf.tidy(() => y.toFloat().mean() as tf.Scalar);
    const s = await scoreModel(
      model,
      ds,
      { inputSize: [SIZE, SIZE], batchSize: 2, loss },
      {
        onProgress: (done) => void progress.push(done),
      },
    );
    assert.ok(s);
    assert.equal(tf.memory().numTensors, start);
    assert.deepEqual(progress, [2, 4, 5]);
    assert.deepEqual(s.iou, expectedIoU);
    assert.ok(Math.abs(s.miou - finite.reduce((a, b) => a + b, 0) / finite.length) < 1e-12);
    assert.equal(s.pixelAccuracy, (counts[0] as number) / scored);
    assert.ok(Math.abs(s.loss - meanLabel) < 1e-5, `${s.loss} vs ${meanLabel}`);
    assert.deepEqual(
      s.confusion.map((row) => row[0]),
      counts,
    );
    // without a loss: NaN; the same scores
    const plain = await evaluateModel(model, ds, { inputSize: [SIZE, SIZE] });
    assert.ok(Number.isNaN(plain.loss));
    assert.deepEqual(plain.confusion, s.confusion);
    model.dispose();
  });

  it("returns null when aborted", async () => {
    const model = constantModel([1, 0, 0]);
    const controller = new AbortController();
    controller.abort();
    assert.equal(await scoreModel(model, ds, { inputSize: [SIZE, SIZE] }, { signal: controller.signal }), null);
    model.dispose();
  });
});

describe("predictBatch", () => {
  it("gives class indices [B, H, W]: argmax over C >= 2 logits, the sign of one logit, without leaking tensors", async () => {
    let batch = null;
    for await (const b of batches(ds, { size: SIZE, batchSize: 3 })) {
      batch = b;
      break;
    }
    assert.ok(batch);
    for (const [bias, expected] of [
      [[0, 2, 1], 1],
      [[-0.5], 0],
      [[0.5], 1],
    ] as const) {
      const model = constantModel([...bias]);
      const start = tf.memory().numTensors;
      const labels = await predictBatch(model, batch);
      assert.equal(tf.memory().numTensors, start);
      assert.equal(labels.length, 3 * SIZE * SIZE);
      assert.ok(
        labels.every((v) => v === expected),
        `bias ${bias}`,
      );
      model.dispose();
    }
  });
});
