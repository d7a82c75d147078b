/**
 * A click's `upscaleAndThreshold` on two threads: a worker (upscale-worker.ts) computes the lower half of the output
 * rows while the calling thread computes the upper half; masks and scores are the same as one call's (the halves'
 * stability terms add up). The low-res planes go to the worker, and its masks come back, through one shared buffer
 * kept between clicks (a message carrying a buffer reached the worker only after milliseconds here, a small one
 * within 0.2 ms). Until the worker runs, while it has a job, or after it failed, everything runs on the calling
 * thread, and a worker that fails leaves its rows to the calling thread. The worker does not keep the process alive
 * while it has no job.
 */
import { Worker } from "node:worker_threads";
import { type SamMaskFrame, type ThresholdedMasks, upscaleAndThreshold } from "./postprocess.js";
import { SAM_LOW_RES_SIZE, type SamSize } from "./transforms.js";

/**
 * A job for the worker: `upscaleAndThreshold` of the `planes` low-res planes at the start of the shared buffer, rows
 * `rows` of the output, the masks written after the planes (plane-major). `shared` when the buffer is new.
 */
export interface UpscaleJob {
  id: number;
  planes: number;
  frame: SamMaskFrame;
  size: SamSize;
  rows: [number, number];
  shared?: SharedArrayBuffer;
}

/** The worker's answer: the stability terms of its rows, or what went wrong. */
export type UpscaleReply = { id: number; intersections: number[]; unions: number[] } | { id: number; error: string };

export interface ParallelUpscaler {
  /** `upscaleAndThreshold(lowRes, frame, size)` (threshold 0, offset 1). */
  run(lowRes: Float32Array, frame: SamMaskFrame, size: SamSize): Promise<ThresholdedMasks>;
  /** Settles when the worker runs (true) or could not start (false). */
  readonly ready: Promise<boolean>;
  /** Calls of `run` whose rows the worker shared. */
  readonly parallelRuns: number;
  /** Stops the worker. */
  dispose(): Promise<void>;
}

/** Images with fewer rows are not worth a message. */
const MIN_ROWS = 64;

/**
 * The worker, from the compiled `.js` beside this module; from source (tsx, this module is `.ts`), a worker that
 * registers tsx before it imports the `.ts` one (tsx's loader hooks do not reach worker threads).
 */
function startWorker(): Worker {
  const source = import.meta.url.endsWith(".ts");
  const url = new URL(`./upscale-worker.${source ? "ts" : "js"}`, import.meta.url);
  if (!source) return new Worker(url);
  const tsx = JSON.stringify(import.meta.resolve("tsx/esm/api"));
  return new Worker(`import(${tsx}).then((m) => m.register()).then(() => import(${JSON.stringify(url.href)}))`, {
    eval: true,
  });
}

export function createParallelUpscaler(): ParallelUpscaler {
  let worker: Worker | undefined = startWorker();
  let online = false;
  let parallelRuns = 0;
  let next = 0;
  let shared = new SharedArrayBuffer(0);
  let sent = false;
  let job: { id: number; resolve: (r: UpscaleReply) => void } | undefined;
  let started: (ok: boolean) => void = () => undefined;
  const ready = new Promise<boolean>((resolve) => {
    started = resolve;
  });
  const fail = (message: string) => {
    worker = undefined;
    started(false);
    job?.resolve({ id: job.id, error: message });
  };
  worker.unref();
  worker.once("online", () => {
    online = true;
    started(true);
  });
  worker.on("message", (reply: UpscaleReply) => {
    if (reply.id === job?.id) job.resolve(reply);
  });
  worker.on("error", (error) => fail(`the upscaling worker failed: ${error.message}`));
  worker.on("exit", (code) => fail(`the upscaling worker exited (code ${code})`));

  return {
    async run(lowRes, frame, size) {
      const w = worker;
      const planes = lowRes.length / (SAM_LOW_RES_SIZE * SAM_LOW_RES_SIZE);
      // (lengths that are not whole planes get upscaleAndThreshold's error)
      if (!w || !online || job || size.height < MIN_ROWS || !Number.isInteger(planes)) {
        return upscaleAndThreshold(lowRes, frame, size);
      }
      const split = Math.floor(size.height / 2);
      const bottomBytes = (size.height - split) * size.width;
      const bytes = lowRes.byteLength + planes * bottomBytes;
      if (shared.byteLength < bytes) {
        shared = new SharedArrayBuffer(bytes);
        sent = false;
      }
      new Float32Array(shared, 0, lowRes.length).set(lowRes);
      const id = next++;
      const reply = new Promise<UpscaleReply>((resolve) => {
        job = { id, resolve };
      });
      w.ref();
      w.postMessage({ id, planes, frame, size, rows: [split, size.height], ...(sent ? {} : { shared }) });
      sent = true;
      try {
        const top = upscaleAndThreshold(lowRes, frame, size, { rows: [0, split] });
        const reached = await reply;
        // a worker that failed leaves its rows to this thread
        const bottom =
          "error" in reached
            ? upscaleAndThreshold(lowRes, frame, size, { rows: [split, size.height] })
            : {
                ...reached,
                masks: top.masks.map(
                  (_, c) => new Uint8Array(shared, lowRes.byteLength + c * bottomBytes, bottomBytes),
                ),
              };
        const area = size.height * size.width;
        const masks = top.masks.map((m, c) => {
          const mask = new Uint8Array(area);
          mask.set(m);
          mask.set(bottom.masks[c] as Uint8Array, m.length);
          return mask;
        });
        const intersections = top.intersections.map((n, c) => n + (bottom.intersections[c] as number));
        const unions = top.unions.map((n, c) => n + (bottom.unions[c] as number));
        const stability = Float32Array.from(intersections, (n, c) => n / (unions[c] as number));
        if (!("error" in reached)) parallelRuns++;
        return { masks, stability, intersections, unions };
      } finally {
        // the worker's half of a call whose own half threw is still awaited: the buffer is not reused under it
        await reply;
        job = undefined;
        w.unref();
      }
    },
    ready,
    get parallelRuns() {
      return parallelRuns;
    },
    async dispose() {
      const w = worker;
      worker = undefined;
      started(false);
      await w?.terminate();
    },
  };
}
