import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { binaryScores, labelsToBinary, probabilitiesToBinary } from "./binary.js";
import { ConfusionMatrix } from "./confusion.js";

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

  it("turns a class-index mask into foreground vs rest, keeping the ignore index", () => {
    assert.deepEqual([...labelsToBinary(Uint8Array.from([0, 2, 1, 255, 2]), 2)], [0, 1, 0, 255, 1]);
  });

  it("needs a 2-class matrix", () => {
    assert.throws(() => binaryScores(new ConfusionMatrix(3)), /2-class/);
  });
});
