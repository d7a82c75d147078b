import cliProgress from "cli-progress";

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
