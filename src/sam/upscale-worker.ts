/**
 * The worker side of `createParallelUpscaler`: `upscaleAndThreshold` on the rows a job names, reading the low-res
 * planes from the shared buffer and writing the masks' rows back into it; the reply carries the stability terms, or
 * what went wrong.
 */
import { parentPort } from "node:worker_threads";
import type { UpscaleJob, UpscaleReply } from "./parallel-upscale.js";
import { upscaleAndThreshold } from "./postprocess.js";

let shared: SharedArrayBuffer | undefined;

parentPort?.on("message", (job: UpscaleJob) => {
  shared = job.shared ?? shared;
  const reply = (r: UpscaleReply) => parentPort?.postMessage(r);
  try {
    if (!shared) throw new Error("no shared buffer");
    const { planes, frame, size, rows } = job;
    const lowRes = new Float32Array(shared, 0, planes * 65536);
    const { masks, intersections, unions } = upscaleAndThreshold(lowRes, frame, size, { rows });
    const out = new Uint8Array(shared, lowRes.byteLength);
    for (const [c, m] of masks.entries()) out.set(m, c * m.length);
    reply({ id: job.id, intersections, unions });
  } catch (error) {
    reply({ id: job.id, error: error instanceof Error ? error.message : String(error) });
  }
});
