/**
 * A click's `upscaleAndThreshold` on two threads: a worker (upscale-worker.ts) computes the lower part of the output
 * rows while the calling thread computes the upper part; masks and scores are the same as one call's (the parts'
 * stability terms add up). Everything goes through one shared buffer kept between clicks: the low-res planes to the
 * worker, its masks, stability terms and finishing time back, and its "done", which the calling thread waits for with
 * `Atomics.wait` rather than a message (after a decode, a reply message reached the calling thread ~2 ms after the
 * worker sent it; a message carrying a buffer reached the worker only after milliseconds, a small one within 0.2 ms).
 *
 * The split follows the measured speeds (`balance`): on one host the worker ran its rows as fast as the calling
 * thread, on another (2026-12-07, same code) at half its speed inside clicks, where a fixed half made clicks slower
 * than one thread. The calling thread waits for the worker at most as long as it would take to compute the worker's
 * rows itself, and then does (a stalled worker costs that time twice over, where a fixed wait cost up to 100 ms).
 * Until the worker runs, after it failed, and while a job it was late with is not done, everything runs on the
 * calling thread. The worker does not keep the process alive.
 */
import { Worker } from "node:worker_threads";
import { SegkitError } from "../core/errors.js";
import { type SamMaskFrame, type ThresholdedMasks, upscaleAndThreshold } from "./postprocess.js";
import { SAM_LOW_RES_SIZE, type SamSize } from "./transforms.js";

/**
 * A job for the worker: `upscaleAndThreshold` of the `planes` low-res planes in the shared buffer (`jobViews`), rows
 * `rows` of the output. `shared` when the buffer is new.
 */
export interface UpscaleJob {
  id: number;
  planes: number;
  frame: SamMaskFrame;
  size: SamSize;
  rows: [number, number];
  shared?: SharedArrayBuffer;
}

const PLANE = SAM_LOW_RES_SIZE * SAM_LOW_RES_SIZE;

/** Byte offsets of a job's parts in the shared buffer (see `jobViews`), and the buffer size they need. */
function jobLayout(planes: number, bytes: number) {
  const low = 16 + 16 * planes;
  const masks = low + 4 * planes * PLANE;
  return { low, masks, byteLength: masks + planes * bytes };
}

/**
 * The parts of the shared buffer for a job of `planes` planes whose worker rows hold `bytes` mask bytes per plane,
 * in order: `state` (int32 [2]: [0] the id of the last job done, [1] 1 when it failed), `finished` (float64 [1]: when
 * the worker finished, `performance.timeOrigin + performance.now()`, a clock threads share), the worker's stability
 * terms (`counts`, float64 [2 * planes]: intersections, then unions), the low-res planes (float32 [planes, 256,
 * 256]), the worker's masks (uint8 [planes, bytes], row-major within a plane).
 */
export function jobViews(shared: SharedArrayBuffer, planes: number, bytes: number) {
  const { low, masks } = jobLayout(planes, bytes);
  return {
    state: new Int32Array(shared, 0, 2),
    finished: new Float64Array(shared, 8, 1),
    counts: new Float64Array(shared, 16, 2 * planes),
    lowRes: new Float32Array(shared, low, planes * PLANE),
    masks: new Uint8Array(shared, masks, planes * bytes),
  };
}

export interface ParallelUpscaler {
  /** `upscaleAndThreshold(lowRes, frame, size)` (threshold 0, offset 1). */
  run(lowRes: Float32Array, frame: SamMaskFrame, size: SamSize): ThresholdedMasks;
  /** Settles when the worker runs (true) or could not start (false). */
  readonly ready: Promise<boolean>;
  /** Calls of `run` whose rows the worker shared. */
  readonly parallelRuns: number;
  /** Stops the worker. */
  dispose(): Promise<void>;
}

/**
 * The calling thread's share of the rows before anything is measured (in clicks on a host where both threads ran
 * alike, alternating: 0.46 took 2.81-2.84 ms where 0.5 took 3.02-3.06).
 */
const FIRST_SHARE = 0.46;
/** Images with fewer rows are not worth a job. */
const MIN_ROWS = 64;
/** The least time the calling thread waits for the worker after its own rows. */
const MIN_WAIT_MS = 1;

/** Milliseconds per output pixel of each thread, averaged over recent runs. */
export interface UpscaleRates {
  caller: number;
  worker: number;
}

/**
 * The calling thread's next share of the rows and the rates it came from: both threads should finish together, so
 * the share is the worker's time per pixel over the sum of both (the worker's includes its start after the job is
 * posted). Each measurement moves the averages by a quarter; the share stays within [0.25, 0.9].
 */
export function balance(
  rates: UpscaleRates | undefined,
  measured: UpscaleRates,
): { share: number; rates: UpscaleRates } {
  const mix = (a: number | undefined, b: number) => (a === undefined ? b : 0.75 * a + 0.25 * b);
  const next = { caller: mix(rates?.caller, measured.caller), worker: mix(rates?.worker, measured.worker) };
  const share = next.worker / (next.caller + next.worker);
  return { share: Number.isFinite(share) ? Math.min(0.9, Math.max(0.25, share)) : FIRST_SHARE, rates: next };
}

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

export interface ParallelUpscalerOptions {
  /**
   * How long the calling thread waits for the worker's rows after its own before computing them itself, in ms
   * (default: as long as they would take it, at least 1 ms; tests use 0 and Infinity).
   */
  maxWaitMs?: number;
}

export function createParallelUpscaler(options: ParallelUpscalerOptions = {}): ParallelUpscaler {
  const { maxWaitMs } = options;
  if (maxWaitMs !== undefined && !(maxWaitMs >= 0)) {
    throw new SegkitError(`maxWaitMs must be a number >= 0, got ${maxWaitMs}`);
  }
  let worker: Worker | undefined;
  try {
    worker = startWorker();
  } catch {
    worker = undefined; // (e.g. from source without tsx): the calling thread alone
  }
  let online = false;
  let parallelRuns = 0;
  let share = FIRST_SHARE;
  let rates: UpscaleRates | undefined;
  let next = 0;
  let shared = new SharedArrayBuffer(8);
  let sent = false;
  /** A job the worker was late with: the buffer is not reused until it is done. */
  let late: { state: Int32Array; id: number } | undefined;
  let started: (ok: boolean) => void = () => undefined;
  const ready = new Promise<boolean>((resolve) => {
    started = resolve;
  });
  const stop = () => {
    worker = undefined;
    started(false);
  };
  if (!worker) stop();
  // referenced until it listens for jobs (its first message; so that `ready` settles), then not
  worker?.once("message", () => {
    online = true;
    started(true);
    worker?.unref();
  });
  worker?.on("error", stop);
  worker?.on("exit", stop);

  return {
    run(lowRes, frame, size) {
      const planes = lowRes.length / PLANE;
      if (late && Atomics.load(late.state, 0) === late.id) late = undefined;
      // (lengths that are not whole planes get upscaleAndThreshold's error)
      if (!worker || !online || late || size.height < MIN_ROWS || !Number.isInteger(planes) || planes === 0) {
        return upscaleAndThreshold(lowRes, frame, size);
      }
      const split = Math.max(1, Math.min(size.height - 1, Math.round(size.height * share)));
      const bottomBytes = (size.height - split) * size.width;
      // sized for the worker's largest part (share 0.25): a new buffer is sent with a slow message
      const { byteLength } = jobLayout(planes, (size.height - Math.floor(size.height * 0.25)) * size.width);
      if (shared.byteLength < byteLength) {
        shared = new SharedArrayBuffer(byteLength);
        sent = false;
      }
      const v = jobViews(shared, planes, bottomBytes);
      v.lowRes.set(lowRes);
      const id = ++next;
      const job: UpscaleJob = { id, planes, frame, size, rows: [split, size.height] };
      const posted = performance.timeOrigin + performance.now();
      worker.postMessage(sent ? job : { ...job, shared });
      sent = true;
      let top: ThresholdedMasks | undefined;
      let callerMs = 0;
      try {
        top = upscaleAndThreshold(lowRes, frame, size, { rows: [0, split] });
        callerMs = performance.timeOrigin + performance.now() - posted;
      } finally {
        // at most as long as the worker's rows would take here, or half as long again as they took the worker lately
        // (rows differ: only pixels in doubt are computed); after an error, briefly (the buffer is not reused while
        // the worker may still write to it)
        const own = Math.max(
          MIN_WAIT_MS,
          (callerMs / split) * (size.height - split),
          rates ? 1.5 * rates.worker * bottomBytes : 0,
        );
        wait(v.state, id, top ? (maxWaitMs ?? own) : MIN_WAIT_MS);
        if (Atomics.load(v.state, 0) !== id) late = { state: v.state, id };
      }
      const ok = late === undefined && v.state[1] === 0;
      if (ok || late) {
        // a late worker's time is at least the wait; the threads' clocks may disagree (each thread's timeOrigin)
        const now = performance.timeOrigin + performance.now();
        const finished = ok ? Math.min(now, Math.max(posted, v.finished[0] as number)) : now;
        ({ share, rates } = balance(rates, {
          caller: callerMs / (split * size.width),
          worker: (finished - posted) / bottomBytes,
        }));
      }
      // rows the worker failed or was late with are computed here
      const bottom = ok
        ? {
            masks: top.masks.map((_, c) => v.masks.subarray(c * bottomBytes, (c + 1) * bottomBytes)),
            intersections: [...v.counts.subarray(0, planes)],
            unions: [...v.counts.subarray(planes)],
          }
        : upscaleAndThreshold(lowRes, frame, size, { rows: [split, size.height] });
      const masks = top.masks.map((m, c) => {
        const mask = new Uint8Array(size.height * size.width);
        mask.set(m);
        mask.set(bottom.masks[c] as Uint8Array, m.length);
        return mask;
      });
      const intersections = top.intersections.map((n, c) => n + (bottom.intersections[c] as number));
      const unions = top.unions.map((n, c) => n + (bottom.unions[c] as number));
      const stability = Float32Array.from(intersections, (n, c) => n / (unions[c] as number));
      if (ok) parallelRuns++;
      return { masks, stability, intersections, unions };
    },
    ready,
    get parallelRuns() {
      return parallelRuns;
    },
    async dispose() {
      const w = worker;
      stop();
      await w?.terminate();
    },
  };
}

/** Blocks until job `id` is done in `state` or `ms` passed. */
function wait(state: Int32Array, id: number, ms: number): void {
  const deadline = performance.now() + ms;
  for (let seen = Atomics.load(state, 0); seen !== id; seen = Atomics.load(state, 0)) {
    const left = deadline - performance.now();
    if (left <= 0 || Atomics.wait(state, 0, seen, left) === "timed-out") return;
  }
}
