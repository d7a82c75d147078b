/**
 * The worker side of `createParallelUpscaler`: `upscaleAndThreshold` on the rows a job names, reading the low-res
 * planes from the shared buffer and writing the masks' rows and the stability terms back into it; then the job's id
 * in the buffer's state tells the waiting thread it is done. Its one message says it listens.
 */
import { parentPort } from "node:worker_threads";
import { jobViews, type UpscaleJob } from "./parallel-upscale.js";
import { upscaleAndThreshold } from "./postprocess.js";

let shared: SharedArrayBuffer | undefined;

parentPort?.on("message", (job: UpscaleJob) => {
  shared = job.shared ?? shared;
  if (!shared) return;
  const { planes, frame, size, rows } = job;
  const v = jobViews(shared, planes, (rows[1] - rows[0]) * size.width);
  let failed = 0;
  try {
    const { masks, intersections, unions } = upscaleAndThreshold(v.lowRes, frame, size, { rows });
    for (const [c, m] of masks.entries()) v.masks.set(m, c * m.length);
    v.counts.set(intersections);
    v.counts.set(unions, planes);
  } catch {
    failed = 1; // the calling thread computes these rows itself
  }
  Atomics.store(v.state, 1, failed);
  Atomics.store(v.state, 0, job.id);
  Atomics.notify(v.state, 0);
});
parentPort?.postMessage("listening");
