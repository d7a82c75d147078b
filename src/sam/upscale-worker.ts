/**
 * The worker side of `createParallelUpscaler`: `upscaleAndThreshold` on the rows a job names, reading the low-res
 * planes from the shared buffer and writing the masks' rows and the stability terms back into it; then the job's id
 * in the buffer's state tells the waiting thread it is done (after the time it finished). Its one message says it
 * listens, once the upscaling code has run once.
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
  v.finished[0] = performance.timeOrigin + performance.now();
  Atomics.store(v.state, 1, failed);
  Atomics.store(v.state, 0, job.id);
  Atomics.notify(v.state, 0);
});
// compiled before the first job: a 640 x 480 plane in doubt everywhere (all zeros) takes the full pass
upscaleAndThreshold(new Float32Array(256 * 256), { height: 768, width: 1024 }, { height: 480, width: 640 });
parentPort?.postMessage("listening");
