import cliProgress from "cli-progress";
import type { SkippedSample } from "../index.js";
import { abortOnSigint, type CliIo } from "./options.js";

/** A progress reporter: a bar with rate and ETA on a terminal, nothing in CI logs or pipes. */
export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

export function createProgress(label: string, unit = "items"): Progress {
  const show = Boolean(process.stderr.isTTY) && !process.env.CI;
  if (!show) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {value}/{total} ${unit} | {rate}/s | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const start = Date.now();
  let started = false;
  return {
    update(done, total) {
      const rate = (done / Math.max(1e-3, (Date.now() - start) / 1000)).toFixed(1);
      if (!started) {
        bar.start(total, done, { rate });
        started = true;
      } else {
        bar.update(done, { rate });
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** What a batch job over image files gets from `runBatch`: the Ctrl-C signal, progress and skip callbacks. */
export interface BatchHooks {
  signal: AbortSignal;
  onProgress: (done: number, total: number) => void;
  onSkip: (s: SkippedSample) => void;
}

/**
 * Runs a batch job over image files (`predictFiles`, `runImageFiles`) with a progress bar `label` counting `unit`,
 * Ctrl-C stopping at the next `where`, and the skipped files reported on stderr when it ends.
 */
export async function runBatch<T>(
  io: CliIo,
  label: string,
  where: string,
  job: (hooks: BatchHooks) => Promise<T>,
): Promise<{ result: T; skipped: SkippedSample[] }> {
  const progress = createProgress(label, "images");
  const interrupt = abortOnSigint(io, where);
  const skipped: SkippedSample[] = [];
  let result: T;
  try {
    result = await job({
      signal: interrupt.signal,
      onProgress: (done, total) => progress.update(done, total),
      onSkip: (s) => void skipped.push(s),
    });
  } finally {
    progress.stop();
    interrupt.release();
  }
  for (const s of skipped) io.err(`skipped ${s.path}: ${s.reason}`);
  return { result, skipped };
}
