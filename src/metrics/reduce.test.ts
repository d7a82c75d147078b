import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { SegkitError } from "../core/errors.js";
import { ConfusionMatrix, classStats } from "./confusion.js";
import { datasetScores, nanMean, SegmentationMetrics } from "./reduce.js";

interface Case {
  name: string;
  numClasses: number;
  ignoreIndex: number;
  shape: [number, number, number];
  truth: number[];
  pred: number[];
  valid: number[] | null;
  expected: {
    confusion: number[][];
    pixelAccuracy: number;
    perClassZeroDivision0: Record<"iou" | "dice" | "precision" | "recall", number[]>;
    macroZeroDivision0: Record<"iou" | "dice" | "precision" | "recall", number>;
    macroExclude: Record<"iou" | "dice" | "precision" | "recall", number | null>;
    frequencyWeightedIoU: number;
    perImage: { macroIoU: number; microIoU: number; pixelAccuracy: number };
  };
}

/** Made by scripts/metrics_reference.py with scikit-learn (see its header for what each value is). */
const reference = JSON.parse(readFileSync(new URL("./fixtures/sklearn-reference.json", import.meta.url), "utf8")) as {
  cases: Case[];
};

const close = (actual: number, expected: number | null, what: string) => {
  if (expected === null) assert.ok(Number.isNaN(actual), `${what}: expected NaN, got ${actual}`);
  else assert.ok(Math.abs(actual - expected) <= 1e-9, `${what}: ${actual} vs scikit-learn ${expected}`);
};

function run(c: Case): SegmentationMetrics {
  const [n, h, w] = c.shape;
  const m = new SegmentationMetrics(c.numClasses, { ignoreIndex: c.ignoreIndex, perImage: true });
  const px = h * w;
  for (let i = 0; i < n; i++) {
    const slice = (a: number[]) => Uint8Array.from(a.slice(i * px, (i + 1) * px));
    m.update(slice(c.truth), slice(c.pred), c.valid ? slice(c.valid) : undefined);
  }
  return m;
}

describe("metrics against scikit-learn", () => {
  for (const c of reference.cases) {
    it(c.name, () => {
      const m = run(c);
      const e = c.expected;
      assert.deepEqual(m.confusion.toArray(), e.confusion);
      const excl = m.compute();
      close(excl.pixelAccuracy, e.pixelAccuracy, "pixel accuracy");
      close(excl.meanIoU, e.macroExclude.iou, "mean IoU (exclude)");
      close(excl.meanDice, e.macroExclude.dice, "mean Dice (exclude)");
      close(excl.meanPrecision, e.macroExclude.precision, "mean precision (exclude)");
      close(excl.meanRecall, e.macroExclude.recall, "mean recall (exclude)");
      close(excl.frequencyWeightedIoU, e.frequencyWeightedIoU, "frequency-weighted IoU");
      close(excl.perImage?.macro.iou ?? Number.NaN, e.perImage.macroIoU, "per-image macro IoU");
      close(excl.perImage?.micro.iou ?? Number.NaN, e.perImage.microIoU, "per-image micro IoU");
      close(excl.perImage?.macro.pixelAccuracy ?? Number.NaN, e.perImage.pixelAccuracy, "per-image accuracy");
      const zero = m.compute({ zeroDivision: 0 });
      for (const k of ["iou", "dice", "precision", "recall"] as const) {
        for (const [cls, v] of e.perClassZeroDivision0[k].entries()) {
          close(zero.perClass[k][cls] as number, v, `${k}[${cls}]`);
        }
      }
      close(zero.meanIoU, e.macroZeroDivision0.iou, "mean IoU (zero_division=0)");
      close(zero.meanDice, e.macroZeroDivision0.dice, "mean Dice (zero_division=0)");
      close(zero.meanPrecision, e.macroZeroDivision0.precision, "mean precision (zero_division=0)");
      close(zero.meanRecall, e.macroZeroDivision0.recall, "mean recall (zero_division=0)");
    });
  }
});

describe("metrics by hand", () => {
  it("scores a 2x3 example", () => {
    // truth  0 0 1 / 1 1 255      pred  0 1 1 / 1 0 2
    // scored: 5 pixels (the ignore pixel drops); confusion rows truth, columns prediction:
    //   t0: p0 1, p1 1 | t1: p0 1, p1 2 | class 2: predicted only on the ignored pixel, so absent.
    const cm = new ConfusionMatrix(3).update(
      Uint8Array.from([0, 0, 1, 1, 1, 255]),
      Uint8Array.from([0, 1, 1, 1, 0, 2]),
    );
    assert.deepEqual(cm.toArray(), [
      [1, 1, 0],
      [1, 2, 0],
      [0, 0, 0],
    ]);
    const s = classStats(cm);
    assert.deepEqual([...s.tp, ...s.fp, ...s.fn, ...s.tn], [1, 2, 0, 1, 1, 0, 1, 1, 0, 2, 1, 5]);
    const r = datasetScores(cm);
    assert.equal(r.pixelAccuracy, 3 / 5);
    assert.deepEqual(r.perClass.iou.slice(0, 2), [1 / 3, 2 / 4]); // 1/(1+1+1), 2/(2+1+1)
    assert.ok(Number.isNaN(r.perClass.iou[2] as number)); // absent: excluded
    assert.equal(r.meanIoU, (1 / 3 + 1 / 2) / 2);
    assert.equal(r.perClass.dice[1], 4 / 6);
    assert.equal(r.frequencyWeightedIoU, (2 / 5) * (1 / 3) + (3 / 5) * (1 / 2));
    assert.equal(datasetScores(cm, { zeroDivision: 1 }).meanIoU, (1 / 3 + 1 / 2 + 1) / 3);
  });

  it("counts a missing prediction as wrong without false positives", () => {
    // Image 1 predicted perfectly: truth [0, 1]; image 2 has no prediction: truth [1, 1].
    const cm = new ConfusionMatrix(2).update(Uint8Array.from([0, 1]), Uint8Array.from([0, 1]));
    cm.addMissed(Uint8Array.from([1, 1]));
    const r = datasetScores(cm);
    assert.equal(r.pixelAccuracy, 2 / 4);
    assert.deepEqual(r.perClass.iou, [1, 1 / 3]); // class 1: tp 1, fn 2
    assert.deepEqual(r.perClass.precision, [1, 1]);
    assert.equal(r.pixels, 4);
  });

  it("leaves wholly ignored images out of the per-image means, whatever the zero-division value", () => {
    const m = new SegmentationMetrics(2, { perImage: true });
    m.update(Uint8Array.from([0, 1]), Uint8Array.from([0, 1])).update(
      Uint8Array.from([255, 255]),
      Uint8Array.from([0, 1]),
    );
    for (const zeroDivision of ["exclude", 0, 1] as const) {
      const r = m.compute({ zeroDivision }).perImage;
      assert.equal(r?.macro.iou, 1, `zeroDivision ${zeroDivision}`);
      assert.equal(r?.micro.iou, 1);
      assert.equal(r?.images, 1);
    }
  });

  it("adds nothing from an image it rejects", () => {
    const cm = new ConfusionMatrix(2);
    assert.throws(() => cm.update(Uint8Array.from([0, 1, 1]), Uint8Array.from([0, 1, 5])), /predicted values 5/);
    assert.deepEqual([...cm.counts], [0, 0, 0, 0]);
    assert.throws(() => new ConfusionMatrix(3, { ignoreIndex: 2 }), /ignore index 2 is one of the 3 classes/);
  });

  it("skips pixels outside the valid region", () => {
    const cm = new ConfusionMatrix(2).update(
      Uint8Array.from([0, 1, 1]),
      Uint8Array.from([0, 0, 1]),
      Uint8Array.from([1, 0, 1]),
    );
    assert.deepEqual(cm.toArray(), [
      [1, 0],
      [0, 1],
    ]);
  });

  it("names the file and the values outside the classes", () => {
    const cm = new ConfusionMatrix(2);
    assert.throws(
      () => cm.update(Uint8Array.from([0, 7, 1]), Uint8Array.from([0, 1, 9]), undefined, "pred/a.png"),
      (e: unknown) =>
        e instanceof SegkitError &&
        e.file === "pred/a.png" &&
        e.message === "truth values 7 and predicted values 9 outside the classes 0..1 (ignore index 255)",
    );
    assert.throws(() => cm.update(new Uint8Array(3), new Uint8Array(4)), /truth has 3 pixels, prediction 4/);
  });

  it("merges and resets, exact beyond 32-bit counts", () => {
    const a = new ConfusionMatrix(2);
    a.counts[0] = 2 ** 40;
    const b = new ConfusionMatrix(2).update(Uint8Array.from([0]), Uint8Array.from([0])).addMissed(Uint8Array.from([1]));
    assert.equal(a.merge(b).counts[0], 2 ** 40 + 1);
    assert.deepEqual([...a.missed], [0, 1]);
    assert.throws(() => a.merge(new ConfusionMatrix(3)), RangeError);
    assert.deepEqual([...a.reset().counts, ...a.missed], [0, 0, 0, 0, 0, 0]);
  });

  it("fromArray is the inverse of toArray; ragged or negative rows are refused", () => {
    const cm = new ConfusionMatrix(3).update(Uint8Array.from([0, 1, 2, 2, 1]), Uint8Array.from([0, 2, 2, 1, 1]));
    const back = ConfusionMatrix.fromArray(cm.toArray(), { ignoreIndex: 7 });
    assert.deepEqual(back.toArray(), [
      [1, 0, 0],
      [0, 1, 1],
      [0, 1, 1],
    ]);
    assert.equal(back.ignoreIndex, 7);
    assert.throws(() => ConfusionMatrix.fromArray([[1, 2], [3]]), /row 1 must hold 2 non-negative counts, got \[3\]/);
    assert.throws(
      () =>
        ConfusionMatrix.fromArray([
          [1, -2],
          [3, 4],
        ]),
      /row 0/,
    );
  });

  it("averages defined values only", () => {
    assert.equal(nanMean([1, Number.NaN, 3]), 2);
    assert.ok(Number.isNaN(nanMean([Number.NaN])));
  });
});
