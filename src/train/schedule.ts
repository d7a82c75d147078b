import type { ScheduleConfig } from "./config.js";

/**
 * Learning-rate schedules and the monitor's bookkeeping (best value, epochs without improvement), as pure functions
 * of plain, JSON-serialisable state, so that a checkpoint can store them and a resumed run continue exactly.
 * Epoch indices here count from 0 (the first epoch is 0), as PyTorch's schedulers do.
 *
 * Schedules, with base rate lr0 and E = the configured epochs:
 * - constant: lr0.
 * - step {every, gamma}: lr0 * gamma^floor(e / every) (PyTorch `StepLR(step_size=every, gamma)`).
 * - cosine {minLr}: minLr + (lr0 - minLr) * (1 + cos(pi * e / E)) / 2 (PyTorch `CosineAnnealingLR(T_max=E,
 *   eta_min=minLr)`, closed form): lr0 in the first epoch, approaching minLr in the last.
 * - plateau {patience, factor, minLr}: starts at lr0; after each epoch's validation, an epoch that does not improve
 *   the monitor counts as bad; when the bad epochs in a row exceed `patience`, lr = max(lr * factor, minLr) and the
 *   count restarts (PyTorch `ReduceLROnPlateau(mode, factor, patience, threshold=minDelta, threshold_mode="abs",
 *   cooldown=0, min_lr=minLr)`).
 */

/** The monitor's record: best value so far (null before the first epoch), its epoch (from 1), bad epochs in a row. */
export interface MonitorState {
  best: number | null;
  bestEpoch: number;
  wait: number;
}

export const INITIAL_MONITOR_STATE: Readonly<MonitorState> = Object.freeze({ best: null, bestEpoch: 0, wait: 0 });

/** Whether `value` improves on `best` by more than `minDelta` in direction `mode`. NaN never improves. */
export function isImprovement(value: number, best: number | null, mode: "min" | "max", minDelta = 0): boolean {
  if (Number.isNaN(value)) return false;
  if (best === null) return true;
  return mode === "max" ? value > best + minDelta : value < best - minDelta;
}

/** The monitor's record after an epoch (numbered from 1) whose monitored value is `value`. */
export function updateMonitor(
  state: MonitorState,
  value: number,
  epoch: number,
  mode: "min" | "max",
  minDelta = 0,
): MonitorState {
  if (isImprovement(value, state.best, mode, minDelta)) return { best: value, bestEpoch: epoch, wait: 0 };
  return { ...state, wait: state.wait + 1 };
}

/** Why a training run stopped: all its epochs done, early stopping (`shouldStopEarly`), or aborted by its signal. */
export type StopReason = "completed" | "early-stopping" | "aborted";

/** Keras `EarlyStopping(patience)`: stop once `patience` epochs in a row have not improved the monitor. */
export function shouldStopEarly(state: MonitorState, patience: number | null): boolean {
  return patience !== null && state.wait >= patience;
}

/** The plateau schedule's state: the current rate and its own record of the monitor. */
export interface ScheduleState {
  lr: number;
  monitor: MonitorState;
}

export function initialScheduleState(lr0: number): ScheduleState {
  return { lr: lr0, monitor: { ...INITIAL_MONITOR_STATE } };
}

/** The learning rate of epoch `e` (from 0) of `epochs`, with base rate `lr0` and the schedule's state. */
export function learningRate(
  schedule: ScheduleConfig,
  lr0: number,
  e: number,
  epochs: number,
  state: ScheduleState,
): number {
  switch (schedule.name) {
    case "constant":
      return lr0;
    case "step":
      return lr0 * schedule.gamma ** Math.floor(e / schedule.every);
    case "cosine":
      return schedule.minLr + ((lr0 - schedule.minLr) * (1 + Math.cos((Math.PI * e) / epochs))) / 2;
    case "plateau":
      return state.lr;
  }
}

/** The schedule's state after an epoch (from 1) whose monitored value is `value`; only `plateau` has one. */
export function stepSchedule(
  schedule: ScheduleConfig,
  state: ScheduleState,
  value: number,
  epoch: number,
  mode: "min" | "max",
  minDelta = 0,
): ScheduleState {
  if (schedule.name !== "plateau") return state;
  const monitor = updateMonitor(state.monitor, value, epoch, mode, minDelta);
  if (monitor.wait > schedule.patience) {
    return { lr: Math.max(state.lr * schedule.factor, schedule.minLr), monitor: { ...monitor, wait: 0 } };
  }
  return { lr: state.lr, monitor };
}
