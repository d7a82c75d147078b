import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { binaryPerImageScores, binaryScores, labelsToBinary, probabilitiesToBinary } from "./binary.js";
import { ConfusionMatrix } from "./confusion.js";
import { SegmentationMetrics } from "./reduce.js";

describe("binary mode", () => {
  it("scores the foreground class of thresholded probabilities", () => {
    // truth 1 1 0 0 255; probabilities .9 .3 .6 .1 .8 -> pred 1 0 1 0 1 (the last pixel is ignored)
    const truth = Uint8Array.from([1, 1, 0, 0, 255]);
    const pred = probabilitiesToBinary([0.9, 0.3, 0.6, 0.1, 0.8]);
    assert.deepEqual([...pred], [1, 0, 1, 0, 1]);
    const s = binaryScores(new ConfusionMatrix(2).update(truth, pred));
    // tp 1, fp 1, fn 1, tn 1
    assert.deepEqual(s, { iou: 1 / 3, dice: 0.5, precision: 0.5, recall: 0.5, pixelAccuracy: 0.5 });
  });

  it("reduces per image: each image's foreground scores, averaged", () => {
    const m = new SegmentationMetrics(2, { perImage: true });
    m.update(Uint8Array.from([1, 1, 0, 0]), Uint8Array.from([1, 0, 0, 0])); // fg IoU 1/2, accuracy 3/4
    m.update(Uint8Array.from([0, 0, 0, 0]), Uint8Array.from([0, 0, 0, 0])); // no foreground: IoU undefined
    m.update(Uint8Array.from([1, 1, 1, 1]), Uint8Array.from([1, 1, 1, 1])); // fg IoU 1
    const r = binaryPerImageScores(m.imageStats());
    assert.equal(r.iou, (1 / 2 + 1) / 2);
    assert.equal(r.pixelAccuracy, (3 / 4 + 1 + 1) / 3);
    assert.equal(binaryPerImageScores(m.imageStats(), { zeroDivision: 1 }).iou, (1 / 2 + 1 + 1) / 3);
  });

  it("turns a class-index mask into foreground vs rest, keeping the ignore index", () => {
    assert.deepEqual([...labelsToBinary(Uint8Array.from([0, 2, 1, 255, 2]), 2)], [0, 1, 0, 255, 1]);
  });

  it("needs a 2-class matrix", () => {
    assert.throws(() => binaryScores(new ConfusionMatrix(3)), /2-class/);
  });
});
