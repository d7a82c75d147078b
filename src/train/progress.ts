import type { FitOptions } from "./fit.js";
import { formatEpochLine } from "./metrics.js";

/** A progress bar as `createProgress` in the CLI makes them (or anything with these two methods). */
export interface ProgressBar {
  update(done: number, total: number): void;
  stop(): void;
}

export interface FitReporterOptions {
  /** Makes a bar for one phase of one epoch (label `epoch 3/20 train`); e.g. the CLI's `createProgress`. */
  bar?: (label: string) => ProgressBar;
  /** Receives one plain line per epoch (`formatEpochLine`), for logs; e.g. `console.error`. */
  log?: (line: string) => void;
  classNames?: readonly string[];
}

/**
 * `onProgress` and `onEpoch` callbacks for `fit` that show a bar per epoch phase (train, then validation) and log
 * one plain line per epoch: a terminal sees the bars and the lines, a CI log (where the CLI's bars draw nothing)
 * the lines.
 */
export function fitReporter(o: FitReporterOptions): Required<Pick<FitOptions, "onProgress" | "onEpoch">> {
  let current: { key: string; bar: ProgressBar } | null = null;
  let epochs = 0;
  const stop = () => {
    current?.bar.stop();
    current = null;
  };
  return {
    onProgress(p) {
      epochs = p.epochs;
      if (!o.bar) return;
      const key = `epoch ${p.epoch}/${p.epochs} ${p.phase}`;
      if (current?.key !== key) {
        stop();
        current = { key, bar: o.bar(key) };
      }
      current.bar.update(p.done, p.total);
    },
    onEpoch(m) {
      stop();
      o.log?.(formatEpochLine(m, Math.max(epochs, m.epoch), o.classNames));
    },
  };
}
