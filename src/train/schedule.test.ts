// Learning-rate schedules and the monitor's bookkeeping, against values computed by hand from PyTorch's and Keras's
// documented formulas (StepLR, CosineAnnealingLR, ReduceLROnPlateau; EarlyStopping).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { validateTrainConfig } from "./config.js";
import {
  INITIAL_MONITOR_STATE,
  initialScheduleState,
  isImprovement,
  learningRate,
  type MonitorState,
  shouldStopEarly,
  stepSchedule,
  updateMonitor,
} from "./schedule.js";

function close(actual: number, expected: number, what: string, tolerance = 1e-12): void {
  assert.ok(Math.abs(actual - expected) < tolerance, `${what}: ${actual}, expected ${expected}`);
}

function closeAll(actual: readonly number[], expected: readonly number[], tolerance = 1e-12): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) close(actual[i] as number, expected[i] as number, `[${i}]`, tolerance);
}

describe("learning-rate schedules", () => {
  it("constant", () => {
    const { schedule } = validateTrainConfig({ schedule: "constant" });
    for (let e = 0; e < 5; e++) assert.equal(learningRate(schedule, 0.1, e, 5, initialScheduleState(0.1)), 0.1);
  });

  it("step: lr0 * gamma^floor(e / every)", () => {
    const { schedule } = validateTrainConfig({ schedule: { name: "step", every: 2, gamma: 0.5 } });
    const lrs = [0, 1, 2, 3, 4].map((e) => learningRate(schedule, 0.1, e, 5, initialScheduleState(0.1)));
    closeAll(lrs, [0.1, 0.1, 0.05, 0.05, 0.025]);
  });

  it("cosine: minLr + (lr0 - minLr)(1 + cos(pi e / E)) / 2", () => {
    const { schedule } = validateTrainConfig({ schedule: { name: "cosine", minLr: 0.01 } });
    const lrs = [0, 1, 2, 3].map((e) => learningRate(schedule, 0.1, e, 4, initialScheduleState(0.1)));
    // e = 1: 0.01 + 0.09 * (1 + sqrt(2)/2) / 2; e = 3: 0.01 + 0.09 * (1 - sqrt(2)/2) / 2
    closeAll(lrs, [0.1, 0.0868198052, 0.055, 0.0231801948], 1e-10);
  });

  it("plateau: x factor after more than `patience` bad epochs, floored at minLr", () => {
    const { schedule } = validateTrainConfig({ schedule: { name: "plateau", patience: 1, factor: 0.5, minLr: 0.02 } });
    // epoch: 1    2    3    4    5    6    7    8
    const values = [0.5, 0.4, 0.4, 0.6, 0.6, 0.6, 0.6, 0.6];
    // bad:   -    1    2*   0    1    2*   1    2*  (* more than patience 1: reduce, count restarts)
    const expected = [0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.02];
    let state = initialScheduleState(0.1);
    values.forEach((v, k) => {
      state = stepSchedule(schedule, state, v, k + 1, "max");
      close(learningRate(schedule, 0.1, k + 1, 8, state), expected[k] as number, `after epoch ${k + 1}`);
    });
  });

  it("plateau in mode min with minDelta: changes of at most minDelta are not improvements", () => {
    const { schedule } = validateTrainConfig({ schedule: { name: "plateau", patience: 0, factor: 0.1 } });
    let state = initialScheduleState(1);
    state = stepSchedule(schedule, state, 1.0, 1, "min", 0.05); // first value: the best
    assert.equal(state.lr, 1);
    state = stepSchedule(schedule, state, 0.96, 2, "min", 0.05); // -0.04: not more than minDelta
    close(state.lr, 0.1, "reduced");
    state = stepSchedule(schedule, state, 0.9, 3, "min", 0.05); // -0.1 from the best 1.0: improvement
    close(state.lr, 0.1, "kept");
    assert.equal(state.monitor.best, 0.9);
  });

  it("non-plateau schedules keep no state", () => {
    const { schedule } = validateTrainConfig({ schedule: "cosine" });
    const state = initialScheduleState(0.1);
    assert.equal(stepSchedule(schedule, state, 0.3, 1, "max"), state);
  });
});

describe("the monitor and early stopping (Keras EarlyStopping)", () => {
  it("improvement by direction and minDelta; NaN never improves", () => {
    assert.equal(isImprovement(0.5, null, "max"), true);
    assert.equal(isImprovement(0.5, 0.5, "max"), false);
    assert.equal(isImprovement(0.51, 0.5, "max", 0.01), false);
    assert.equal(isImprovement(0.52, 0.5, "max", 0.01), true);
    assert.equal(isImprovement(0.4, 0.5, "min"), true);
    assert.equal(isImprovement(Number.NaN, null, "max"), false);
  });

  it("stops once `patience` epochs in a row did not improve", () => {
    let m: MonitorState = { ...INITIAL_MONITOR_STATE };
    const values = [0.3, 0.5, 0.4, 0.45, 0.5, 0.6];
    const stops: boolean[] = [];
    values.forEach((v, k) => {
      m = updateMonitor(m, v, k + 1, "max");
      stops.push(shouldStopEarly(m, 3));
    });
    // epoch 2 is the best (0.5); 3, 4, 5 do not beat it (0.5 only equals it): stop after epoch 5
    assert.deepEqual(stops, [false, false, false, false, true, false]);
    assert.equal(shouldStopEarly(m, null), false);
    assert.deepEqual(m, { best: 0.6, bestEpoch: 6, wait: 0 });
  });
});
