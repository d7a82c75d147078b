// The demo's time budget: the pace leaves the warm-up epoch out, the plan follows the pace after every epoch, and
// the closing line when the budget was too small. Hand-computed cases (seconds); the run is the first.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { budgetVerdict, epochPace, paceEpochs, planEpochs } from "./demo-plan.js";

/** A 2-minute budget, 4 s of setup before epoch 1, and the epochs' times so far. */
const after = (epochSeconds: number[], setup = 4) => ({
  budget: 120,
  elapsed: setup + epochSeconds.reduce((a, b) => a + b, 0),
  epochSeconds,
  maxEpochs: 200,
});

describe("epochPace", () => {
  it("is epoch 1's time alone, then the mean of the last three epochs after it", () => {
    assert.equal(epochPace([14.5]), 14.5);
    assert.equal(epochPace([14.5, 10]), 10);
    assert.equal(epochPace([14.5, 10, 11]), 10.5);
    assert.equal(epochPace([14.5, 10, 11, 12, 9]), 32 / 3); // 11, 12, 9
    assert.throws(() => epochPace([]), RangeError);
    assert.deepEqual([1, 2, 3, 4, 5].map(paceEpochs), [
      [1, 1],
      [2, 2],
      [2, 3],
      [2, 4],
      [3, 5],
    ]);
  });
});

describe("planEpochs", () => {
  it("plans from epoch 1, then from the steady epochs: the warm-up epoch no longer counts", () => {
    // after epoch 1 (14.5 s with warm-up): 101.5 s left, 7 more of 14.5 s: 8 in all (the run the issue saw)
    assert.deepEqual(planEpochs(after([14.5])), { epochs: 8, pace: 14.5, left: 101.5 });
    // after epoch 2 (10 s): 91.5 s left at 10 s per epoch, 9 more: 11 in all
    assert.deepEqual(planEpochs(after([14.5, 10])), { epochs: 11, pace: 10, left: 91.5 });
  });

  it("re-plans when the machine gets busier, and ends the run when the next epoch no longer fits", () => {
    // epochs 3 and 4 at 20 s: 51.5 s left at (10 + 20 + 20) / 3 s, 3 more: 7 in all
    const slower = planEpochs(after([14.5, 10, 20, 20]));
    assert.equal(slower.epochs, 7);
    assert.equal(slower.left, 51.5);
    // two more at 20 s: 11.5 s left, less than one epoch: 6 in all, the epochs done
    assert.equal(planEpochs(after([14.5, 10, 20, 20, 20, 20])).epochs, 6);
    // over budget: the epochs done, never fewer
    assert.deepEqual(planEpochs({ ...after([30, 30, 30, 30]), budget: 60 }), { epochs: 4, pace: 30, left: -64 });
  });

  it("re-plans when the machine gets quieter, up to the cap", () => {
    // epoch 2 at 5 s after 20 s: 91 s left, 18 more
    assert.equal(planEpochs(after([20, 5])).epochs, 20);
    // 114.5 s left at 0.5 s: 229 more, capped at 200 in all
    assert.equal(planEpochs(after([1, 0.5])).epochs, 200);
  });
});

describe("budgetVerdict", () => {
  const recipe = { expectedMiou: 0.7, expectedEpochs: 8 };

  it("says nothing when the run reached the recipe's score", () => {
    assert.equal(budgetVerdict({ miou: 0.7, epochs: 4, minutes: 2, ...recipe }), null);
    assert.equal(budgetVerdict({ miou: 0.81, epochs: 11, minutes: 2, ...recipe }), null);
  });

  it("blames the budget when too few epochs fit, with one that would fit them at this pace", () => {
    // 8 epochs need 4 times the time of 2: 8 min; 4 epochs: twice, 4 min
    assert.equal(
      budgetVerdict({ miou: 0.32, epochs: 2, minutes: 2, ...recipe }),
      "val mIoU 0.32 is below what this demo normally reaches (0.70+): the machine was slower or busier than " +
        "expected (2 epochs fit in 2 min, the recipe needs about 8); try --minutes 8",
    );
    assert.match(budgetVerdict({ miou: 0.52, epochs: 4, minutes: 2, ...recipe }) ?? "", /0\.52 .* try --minutes 4$/);
    // at least half as long again; one epoch is singular
    assert.equal(
      budgetVerdict({ miou: 0.6, epochs: 7, minutes: 2, ...recipe }),
      "val mIoU 0.60 is below what this demo normally reaches (0.70+): the machine was slower or busier than " +
        "expected (7 epochs fit in 2 min, the recipe needs about 8); try --minutes 3",
    );
    assert.match(budgetVerdict({ miou: 0.1, epochs: 1, minutes: 1, ...recipe }) ?? "", /\(1 epoch fit in 1 min,/);
  });

  it("says so without blaming the machine when the epochs were enough", () => {
    assert.equal(
      budgetVerdict({ miou: 0.66, epochs: 10, minutes: 2, ...recipe }),
      "val mIoU 0.66 is below what this demo normally reaches (0.70+) after 10 epochs; a longer run may still get " +
        "there: try --minutes 3",
    );
  });
});
