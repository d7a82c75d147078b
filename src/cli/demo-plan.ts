/**
 * `segkit demo`'s time budget, as pure functions of what the run has measured (seconds throughout).
 *
 * The plan: after every epoch, the epochs done plus as many more as fit in the rest of the budget at the current
 * pace. The pace leaves epoch 1 out once there is another: epoch 1 also compiles the backend's kernels and times
 * its convolution engines (on 2 cores it takes about 1.5 times a later epoch), so planning from it alone
 * undershoots; the next epochs correct it. Re-planning after every epoch follows a machine that gets busier or
 * quieter during the run; `fit`'s cosine schedule spans whatever the plan says at each epoch.
 */

/** The epochs (from 1, first and last) `epochPace` averages after `n` epochs: epoch 1 alone, then the last 3 after it. */
export function paceEpochs(n: number): [number, number] {
  if (n < 1) throw new RangeError("epochPace needs at least one epoch");
  return n === 1 ? [1, 1] : [Math.max(2, n - 2), n];
}

/** Seconds per epoch to plan with: the mean of the last (up to 3) epochs after epoch 1, or epoch 1's alone. */
export function epochPace(seconds: readonly number[]): number {
  const [first, last] = paceEpochs(seconds.length);
  return seconds.slice(first - 1, last).reduce((a, b) => a + b, 0) / (last - first + 1);
}

export interface EpochPlanInput {
  /** Seconds from the command's start that the training may use. */
  budget: number;
  /** Seconds from the command's start until now (the end of the last epoch). */
  elapsed: number;
  /** Seconds each epoch so far took, epoch 1 first (at least one). */
  epochSeconds: readonly number[];
  /** At most this many epochs in all. */
  maxEpochs: number;
}

export interface EpochPlan {
  /** Epochs in all, those done included: equal to those done ends the run. */
  epochs: number;
  /** The pace planned with (`epochPace`) and the budget left, seconds. */
  pace: number;
  left: number;
}

/** The run's total epochs after the epochs so far; see the module comment. */
export function planEpochs(p: EpochPlanInput): EpochPlan {
  const done = p.epochSeconds.length;
  const pace = epochPace(p.epochSeconds);
  const left = p.budget - p.elapsed;
  const more = Math.max(0, Math.floor(left / pace));
  return { epochs: Math.max(done, Math.min(p.maxEpochs, done + more)), pace, left };
}

export interface Verdict {
  /** The validation mIoU the demo reached. */
  miou: number;
  /** Epochs trained, and the budget they were planned in, minutes. */
  epochs: number;
  minutes: number;
  /** What the recipe normally reaches, and the epochs it needs for it. */
  expectedMiou: number;
  expectedEpochs: number;
}

/**
 * The line that says the result is below what the demo normally reaches, and why, or null when it is not: too few
 * epochs fit in the budget (a slow or busy machine), with a budget that would fit them at this run's pace.
 */
export function budgetVerdict(v: Verdict): string | null {
  if (v.miou >= v.expectedMiou) return null;
  const below = `val mIoU ${v.miou.toFixed(2)} is below what this demo normally reaches (${v.expectedMiou.toFixed(2)}+)`;
  const suggest = Math.ceil(v.minutes * Math.max(1.5, v.expectedEpochs / Math.max(1, v.epochs)));
  if (v.epochs < v.expectedEpochs) {
    return (
      `${below}: the machine was slower or busier than expected (${v.epochs} epoch${v.epochs === 1 ? "" : "s"} fit in ` +
      `${v.minutes} min, the recipe needs about ${v.expectedEpochs}); try --minutes ${suggest}`
    );
  }
  return `${below} after ${v.epochs} epochs; a longer run may still get there: try --minutes ${suggest}`;
}
