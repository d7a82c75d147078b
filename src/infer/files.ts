import { join } from "node:path";
import type { RgbImage } from "../core/image.js";
import type { SkippedSample } from "../core/skipped.js";
import { writeFileAtomic } from "../io/fs.js";
import { encodeGrayPng } from "../io/png-rows.js";
import { overlayMask, writeImagePng, writeMaskPng } from "../io/write.js";
import { type ImageJob, runImageFiles } from "./batch.js";
import type { Prediction, Predictor } from "./predict.js";

/**
 * Prediction of image files into an output directory, named by each image's base name (`cat.jpg` -> `cat.*`):
 * - `cat.png`: the class-index mask at the image's size, a palette PNG in the card's colours with the class names
 *   stored in it (`writeMaskPng`; `readMask` reads the indices back);
 * - `cat.overlay.png` (`overlay`): the image with the classes blended in (the background class left untinted);
 * - `cat.prob.CLASS.png` (`probs`): one 8-bit grayscale PNG per class, pixel = round(255 * probability), so
 *   255 = 1.0. CLASS is the class name with characters other than letters, digits, `.`, `_`, `-` replaced by `_`
 *   (the class index when that leaves names empty or equal).
 * A file that cannot be read or decoded is reported (`onSkip`, and in the summary) and skipped.
 */

export interface PredictFilesOptions {
  overlay?: boolean;
  probs?: boolean;
  onProgress?: (done: number, total: number) => void;
  onSkip?: (skip: SkippedSample) => void;
  /** Stops before the next batch; the files written stay. */
  signal?: AbortSignal;
}

export interface PredictFilesSummary {
  /** Images predicted. */
  predicted: number;
  skipped: SkippedSample[];
  /** Files written, in order. */
  written: string[];
  /** True when the signal stopped the run before every image was done. */
  stopped: boolean;
  seconds: number;
}

/** File-name parts for the probability maps of `classes` (see the module doc). */
export function probabilityNames(classes: readonly string[]): string[] {
  const names = classes.map((c) => c.replace(/[^A-Za-z0-9._-]/g, "_"));
  const unique = new Set(names).size === names.length && names.every((n) => n.length > 0);
  return unique ? names : classes.map((_, k) => String(k));
}

/** Probability planes (CHW) as 8-bit grayscale PNGs, one per plane, 255 = 1.0. */
function probabilityPngs(probs: Float32Array, width: number, height: number): Uint8Array[] {
  const n = width * height;
  const out: Uint8Array[] = [];
  for (let k = 0; k * n < probs.length; k++) {
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = Math.round(255 * (probs[k * n + i] as number));
    out.push(encodeGrayPng(width, height, data));
  }
  return out;
}

/** Writes one prediction's files under `outDir` (see the module doc); returns their paths. */
export async function writePrediction(
  predictor: Predictor,
  outDir: string,
  name: string,
  image: RgbImage,
  prediction: Prediction,
  options: { overlay?: boolean } = {},
): Promise<string[]> {
  const { mask, probs } = prediction;
  const written = [join(outDir, `${name}.png`)];
  await writeMaskPng(written[0] as string, mask, { palette: predictor.palette, classNames: predictor.classes });
  if (options.overlay) {
    const path = join(outDir, `${name}.overlay.png`);
    const bg = predictor.backgroundClass;
    const overlay = overlayMask(image, mask, {
      palette: predictor.palette,
      ignoreIndex: predictor.ignoreIndex,
      skipClasses: bg === null ? [] : [bg],
    });
    await writeImagePng(path, overlay);
    written.push(path);
  }
  if (probs) {
    const names = probabilityNames(predictor.classes);
    const pngs = probabilityPngs(probs, mask.width, mask.height);
    for (const [k, png] of pngs.entries()) {
      const path = join(outDir, `${name}.prob.${names[k]}.png`);
      await writeFileAtomic(path, png);
      written.push(path);
    }
  }
  return written;
}

/**
 * Predicts an image file or a directory of images (see `listImageFiles`) into `outDir`, `predictor.batchSize`
 * images at a time (`runImageFiles`). Bad files are reported and skipped; files whose base names collide (`a.jpg`,
 * `a.png`) keep the first. Throws when `outDir` is the input directory (masks would replace images of the same
 * name). An aborted `signal` stops before the next batch and keeps the files written.
 */
export async function predictFiles(
  predictor: Predictor,
  input: string,
  outDir: string,
  options: PredictFilesOptions = {},
): Promise<PredictFilesSummary> {
  const started = performance.now();
  const written: string[] = [];
  // a group's files are written while the next group is read and predicted (one group in flight at most)
  let writing: Promise<void> = Promise.resolve();
  const write = async (jobs: ImageJob[], predictions: Prediction[]) => {
    for (const [i, j] of jobs.entries()) {
      written.push(
        ...(await writePrediction(predictor, outDir, j.name, j.image, predictions[i] as Prediction, options)),
      );
    }
  };
  let summary: Awaited<ReturnType<typeof runImageFiles>>;
  try {
    summary = await runImageFiles(
      input,
      outDir,
      "write predictions to another directory, e.g. --out predictions",
      async (jobs) => {
        const predictions = await predictor.predictBatch(
          jobs.map((j) => j.image),
          { probs: Boolean(options.probs) },
        );
        await writing;
        writing = write(jobs, predictions);
        writing.catch(() => undefined); // awaited by the next group or below
      },
      {
        batchSize: predictor.batchSize,
        signal: options.signal,
        onProgress: options.onProgress,
        onSkip: options.onSkip,
      },
    );
  } catch (err) {
    await writing.catch(() => undefined);
    throw err;
  }
  await writing;
  const seconds = (performance.now() - started) / 1000;
  const { processed: predicted, skipped, stopped } = summary;
  return { predicted, skipped, written, stopped, seconds };
}
