import { readdir, stat } from "node:fs/promises";
import { basename, extname, join, resolve } from "node:path";
import { encode as encodePngRaw } from "fast-png";
import { errorMessage, SegkitError } from "../core/errors.js";
import type { RgbImage } from "../core/image.js";
import type { SkippedSample } from "../core/skipped.js";
import { IMAGE_EXTENSIONS } from "../data/files.js";
import { writeFileAtomic } from "../io/fs.js";
import { readImage } from "../io/image.js";
import { overlayMask, writeImagePng, writeMaskPng } from "../io/write.js";
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
}

export interface PredictFilesSummary {
  /** Images predicted. */
  predicted: number;
  skipped: SkippedSample[];
  /** Files written, in order. */
  written: string[];
  seconds: number;
}

/**
 * The image files `input` names: the file itself, or a directory's files (not its subdirectories, not hidden
 * files), sorted; files without an image extension are returned as skipped.
 */
export async function listImageFiles(input: string): Promise<{ files: string[]; skipped: SkippedSample[] }> {
  let isDir: boolean;
  try {
    isDir = (await stat(input)).isDirectory();
  } catch {
    throw new SegkitError("not found", { file: input, hint: "give an image file or a directory of images" });
  }
  if (!isDir) return { files: [input], skipped: [] };
  const entries = (await readdir(input, { withFileTypes: true }))
    .filter((e) => e.isFile() && !e.name.startsWith("."))
    .map((e) => e.name)
    .sort();
  const files: string[] = [];
  const skipped: SkippedSample[] = [];
  for (const name of entries) {
    const ext = extname(name).toLowerCase();
    if (IMAGE_EXTENSIONS.includes(ext)) files.push(join(input, name));
    else skipped.push({ path: join(input, name), reason: `not an image file (extension ${ext || "none"})` });
  }
  return { files, skipped };
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
    out.push(encodePngRaw({ width, height, data, depth: 8, channels: 1 }));
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
 * The images of `input` (a file or a directory, `listImageFiles`) that a batch job writing per-image outputs into
 * `outDir` processes, each with its base name: unreadable entries and files whose base name repeats an earlier one
 * (their outputs would collide) go to `skip`. Throws when `outDir` holds an input image (outputs could replace
 * inputs, or be read as inputs next time), with `hint`.
 */
export async function inputFiles(
  input: string,
  outDir: string,
  skip: (s: SkippedSample) => void,
  hint: string,
): Promise<{ path: string; name: string }[]> {
  const listed = await listImageFiles(input);
  if (listed.files.some((f) => resolve(f, "..") === resolve(outDir))) {
    throw new SegkitError("the output directory is the input directory", { file: outDir, hint });
  }
  for (const s of listed.skipped) skip(s);
  const byName = new Map<string, string>();
  const files: { path: string; name: string }[] = [];
  for (const path of listed.files) {
    const name = basename(path, extname(path));
    const first = byName.get(name);
    if (first) skip({ path, reason: `its outputs (${name}.*) would replace those of ${first}` });
    else {
      byName.set(name, path);
      files.push({ path, name });
    }
  }
  return files;
}

/**
 * Predicts an image file or a directory of images (see `listImageFiles`) into `outDir`, `predictor.batchSize`
 * images at a time. Bad files are reported and skipped; files whose base names collide (`a.jpg`, `a.png`) keep
 * the first. Throws when `outDir` is the input directory (masks would replace images of the same name).
 */
export async function predictFiles(
  predictor: Predictor,
  input: string,
  outDir: string,
  options: PredictFilesOptions = {},
): Promise<PredictFilesSummary> {
  const started = performance.now();
  const skipped: SkippedSample[] = [];
  const skip = (s: SkippedSample) => {
    skipped.push(s);
    options.onSkip?.(s);
  };
  const files = await inputFiles(input, outDir, skip, "write predictions to another directory, e.g. --out predictions");

  const written: string[] = [];
  let predicted = 0;
  let done = 0;
  const total = files.length;
  options.onProgress?.(0, total);
  for (let start = 0; start < files.length; start += predictor.batchSize) {
    const group = files.slice(start, start + predictor.batchSize);
    // 1. read (in parallel), reporting bad files in file order
    const read = await Promise.all(
      group.map(async (f): Promise<{ path: string; name: string; image: RgbImage } | SkippedSample> => {
        try {
          return { ...f, image: await readImage(f.path) };
        } catch (err) {
          return { path: f.path, reason: err instanceof SegkitError ? err.message : errorMessage(err) };
        }
      }),
    );
    const good = read.filter((r) => "image" in r);
    for (const r of read) if (!("image" in r)) skip(r);
    // 2. predict the readable ones together, 3. write their files
    const predictions = await predictor.predictBatch(
      good.map((r) => r.image),
      { probs: Boolean(options.probs) },
    );
    for (const [i, r] of good.entries()) {
      const p = predictions[i] as Prediction;
      written.push(...(await writePrediction(predictor, outDir, r.name, r.image, p, options)));
      predicted++;
    }
    done += group.length;
    options.onProgress?.(done, total);
  }
  return { predicted, skipped, written, seconds: (performance.now() - started) / 1000 };
}
