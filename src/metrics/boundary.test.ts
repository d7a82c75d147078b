import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { createMask } from "../core/image.js";
import { BoundaryMetrics, boundaryDistances } from "./boundary.js";

interface Case {
  name: string;
  numClasses: number;
  options: { tolerance: number | null; toleranceRatio: number | null; dilationRatio: number };
  height: number;
  width: number;
  truth: number[][];
  pred: number[][];
  expected: { f1: (number | null)[]; iou: (number | null)[]; imageMeanF1: number | null };
}

/** Made by scripts/boundary_reference.py (NumPy/SciPy implementation of the published formulas). */
const reference = JSON.parse(readFileSync(new URL("./fixtures/boundary-reference.json", import.meta.url), "utf8")) as {
  cases: Case[];
};

const same = (actual: number, expected: number | null, what: string) => {
  if (expected === null) assert.ok(Number.isNaN(actual), `${what}: expected NaN, got ${actual}`);
  else assert.ok(Math.abs(actual - expected) <= 1e-9, `${what}: ${actual} vs reference ${expected}`);
};

describe("boundary metrics against the NumPy/SciPy reference", () => {
  for (const c of reference.cases) {
    it(c.name, () => {
      const m = new BoundaryMetrics(c.numClasses, {
        ...(c.options.tolerance !== null ? { tolerance: c.options.tolerance } : {}),
        ...(c.options.toleranceRatio !== null ? { toleranceRatio: c.options.toleranceRatio } : {}),
        dilationRatio: c.options.dilationRatio,
      });
      c.truth.forEach((t, i) => {
        m.update(
          createMask(c.width, c.height, Uint8Array.from(t)),
          createMask(c.width, c.height, Uint8Array.from(c.pred[i] ?? [])),
        );
      });
      const r = m.compute();
      for (const [k, v] of c.expected.f1.entries()) same(r.f1[k] as number, v, `boundary F1 class ${k}`);
      for (const [k, v] of c.expected.iou.entries()) same(r.iou[k] as number, v, `boundary IoU class ${k}`);
      same(r.imageMeanF1, c.expected.imageMeanF1, "image-wise mean boundary F1");
    });
  }
});

describe("boundary metrics by hand", () => {
  // A 6x6 image: class 1 is the 2x2 square at rows 2-3, columns 2-3.
  const square = (x0: number) => {
    const d = new Uint8Array(36);
    for (const y of [2, 3]) for (const x of [x0, x0 + 1]) d[y * 6 + x] = 1;
    return createMask(6, 6, d);
  };

  it("scores a prediction perfect on every scored pixel 1, whatever it says on void", () => {
    // Truth: the square, with a void column (255) at x = 5 and the rest class 0; the prediction fills the void
    // with class 1 (a different label): no boundary is invented at the void's edge.
    const t = square(2);
    const truth = createMask(
      6,
      6,
      t.data.map((v, i) => (i % 6 === 5 ? 255 : v)),
    );
    const pred = createMask(
      6,
      6,
      t.data.map((v, i) => (i % 6 === 5 ? 1 : v)),
    );
    const r = new BoundaryMetrics(2, { tolerance: 1, dilationRatio: 0.01 }).update(truth, pred).compute();
    assert.deepEqual(r.f1, [1, 1]);
    assert.deepEqual(r.iou, [1, 1]);
  });

  it("counts an image without prediction as F1 0 and adds its bands to the unions", () => {
    const m = new BoundaryMetrics(2, { tolerance: 1, dilationRatio: 0.01 });
    m.update(square(2), square(2)).addMissed(square(2));
    const r = m.compute();
    assert.deepEqual(r.f1, [0.5, 0.5]); // 1 then 0, per class
    assert.equal(r.imageMeanF1, 0.5);
    // Class 1: the 2x2 square is all band (4 px): intersection 4 of union 4 + 4.
    assert.equal(r.iou[1], 0.5);
  });

  it("rejects nonsense options", () => {
    assert.throws(() => new BoundaryMetrics(300), /numClasses/);
    assert.throws(() => new BoundaryMetrics(2, { tolerance: Number.NaN }), /tolerance must be a number/);
  });

  it("scores a perfect prediction 1 and a 2-px shift by the tolerance", () => {
    const exact = new BoundaryMetrics(2, { tolerance: 1, dilationRatio: 0.01 }).update(square(2), square(2)).compute();
    assert.deepEqual(exact.f1, [1, 1]);
    assert.deepEqual(exact.iou, [1, 1]);
    // Shifted right by 2 px, tolerance 1: of the 4 predicted class-1 boundary pixels (all of the square) the left
    // column (x = 4) is 1 px from the true square's right column (x = 3): 2 of 4 match both ways, F1 = 0.5.
    const shifted = new BoundaryMetrics(2, { tolerance: 1, dilationRatio: 0.01 })
      .update(square(2), square(4))
      .compute();
    assert.equal(shifted.f1[1], 0.5);
    // d = 1: every pixel of a 2x2 square is in its band; bands of truth and prediction are disjoint.
    assert.equal(shifted.iou[1], 0);
  });

  it("leaves out classes with no boundary anywhere, and ignored pixels", () => {
    const r = new BoundaryMetrics(3).update(square(2), square(2)).compute();
    assert.ok(Number.isNaN(r.f1[2] as number) && Number.isNaN(r.iou[2] as number));
    assert.equal(r.meanF1, 1);
    // Ignoring the truth square's pixels removes class 1's boundary from the counts.
    const t = square(2);
    const ignored = createMask(
      6,
      6,
      t.data.map((v) => (v === 1 ? 255 : v)),
    );
    const r2 = new BoundaryMetrics(2).update(ignored, square(2)).compute();
    assert.ok(Number.isNaN(r2.f1[1] as number));
  });

  it("derives distances from the diagonal", () => {
    assert.deepEqual(boundaryDistances(300, 400), { tolerance: 2, dilation: 10 }); // 2% of 500
    assert.deepEqual(boundaryDistances(30, 40, { toleranceRatio: 0.1 }), { tolerance: 5, dilation: 1 });
  });

  it("rejects a prediction of another size, naming it", () => {
    assert.throws(
      () => new BoundaryMetrics(2).update(createMask(2, 2), createMask(3, 2), "pred/x.png"),
      /prediction is 3x2, truth 2x2/,
    );
  });
});
