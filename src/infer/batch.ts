/**
 * Batch jobs over image files: an image file or a directory of images in, per-image outputs into a directory
 * (`segkit predict` over a folder, `predictFiles`; `segkit sam auto` over a folder, `generateMaskFiles`). One driver
 * does what both need around their own per-image work: list the images (`inputFiles`), read them a group at a time,
 * report and skip the bad ones, count progress, and stop at an aborted signal keeping what is finished (each output
 * file is written atomically, so a stopped run leaves only whole files).
 */
import { stat } from "node:fs/promises";
import { basename, extname, join, resolve } from "node:path";
import { errorMessage, SegkitError } from "../core/errors.js";
import type { RgbImage } from "../core/image.js";
import type { SkippedSample } from "../core/skipped.js";
import { IMAGE_EXTENSIONS } from "../data/files.js";
import { listFiles } from "../io/fs.js";
import { readImage } from "../io/image.js";

/**
 * The image files `input` names: the file itself, or a directory's files (not its subdirectories, not hidden
 * files; symbolic links followed), sorted; files without an image extension are returned as skipped.
 */
export async function listImageFiles(
  input: string,
): Promise<{ files: string[]; skipped: SkippedSample[]; isDir: boolean }> {
  let isDir: boolean;
  try {
    isDir = (await stat(input)).isDirectory();
  } catch {
    throw new SegkitError("not found", { file: input, hint: "give an image file or a directory of images" });
  }
  if (!isDir) return { files: [input], skipped: [], isDir };
  const entries = await listFiles(input);
  const files: string[] = [];
  const skipped: SkippedSample[] = [];
  for (const name of entries) {
    const ext = extname(name).toLowerCase();
    if (IMAGE_EXTENSIONS.includes(ext)) files.push(join(input, name));
    else skipped.push({ path: join(input, name), reason: `not an image file (extension ${ext || "none"})` });
  }
  return { files, skipped, isDir };
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
): Promise<{ files: { path: string; name: string }[]; isDir: boolean }> {
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
  return { files, isDir: listed.isDir };
}

/** One readable image of a batch job: its file, its base name (for output names), its index among the job's files. */
export interface ImageJob {
  path: string;
  name: string;
  index: number;
  image: RgbImage;
}

export interface ImageFilesOptions {
  /** Images read (in parallel) and handed to `run` together; default 1. */
  batchSize?: number;
  /** Checks a decoded image (e.g. that the model can take it); a throw skips the file as a read error does. */
  check?: (image: RgbImage) => void;
  /** A single image file (not a directory) that cannot be read or checked throws instead of being skipped. */
  throwOnSingleFile?: boolean;
  /** Stops before the next group (or when `run` throws after the abort); the finished images' files stay. */
  signal?: AbortSignal;
  /** Files done (read, skipped or run) of the total, at the start and after every group. */
  onProgress?: (done: number, total: number) => void;
  onSkip?: (skip: SkippedSample) => void;
}

export interface ImageFilesSummary {
  /** Images handed to `run` that it finished. */
  processed: number;
  skipped: SkippedSample[];
  /** True when the signal stopped the run before every image was done. */
  stopped: boolean;
  /** Whether `input` is a directory. */
  isDir: boolean;
  seconds: number;
}

/**
 * Runs `run` over the images of `input` (a file or a directory, `inputFiles`) whose outputs go to `outDir`,
 * `batchSize` images at a time in file order; unreadable files (and those `check` refuses) are reported in file
 * order and skipped. `sameDirHint` is the hint of the error when `outDir` is the input directory. `run` gets the
 * readable images of a group, the number of files and whether `input` is a directory.
 */
export async function runImageFiles(
  input: string,
  outDir: string,
  sameDirHint: string,
  run: (jobs: ImageJob[], job: { total: number; isDir: boolean }) => Promise<void>,
  options: ImageFilesOptions = {},
): Promise<ImageFilesSummary> {
  const started = performance.now();
  const { batchSize = 1, check, throwOnSingleFile = false, signal, onProgress, onSkip } = options;
  const skipped: SkippedSample[] = [];
  const skip = (s: SkippedSample) => {
    skipped.push(s);
    onSkip?.(s);
  };
  const { files, isDir } = await inputFiles(input, outDir, skip, sameDirHint);
  const total = files.length;
  let processed = 0;
  let done = 0;
  let stopped = false;
  onProgress?.(0, total);
  // read (in parallel) and check a group; bad files reported in file order
  const readGroup = (start: number) =>
    Promise.all(
      files.slice(start, start + batchSize).map(async (f, k): Promise<ImageJob | SkippedSample> => {
        try {
          const image = await readImage(f.path);
          check?.(image);
          return { ...f, index: start + k, image };
        } catch (err) {
          if (throwOnSingleFile && !isDir) throw err;
          return { path: f.path, reason: err instanceof SegkitError ? err.message : errorMessage(err) };
        }
      }),
    );
  // the next group is read while `run` works on this one (a failed read surfaces where it is awaited, not as an
  // unhandled rejection while `run` works)
  const readAhead = (start: number) => {
    const read = readGroup(start);
    read.catch(() => undefined);
    return read;
  };
  let next = total > 0 ? readAhead(0) : undefined;
  for (let start = 0; start < total; start += batchSize) {
    if (signal?.aborted) {
      stopped = true;
      break;
    }
    const read = await (next as ReturnType<typeof readGroup>);
    next = start + batchSize < total ? readAhead(start + batchSize) : undefined;
    const jobs = read.filter((r): r is ImageJob => "image" in r);
    for (const r of read) if (!("image" in r)) skip(r);
    // the job's own work on the readable ones; an error after an abort is the abort
    if (jobs.length > 0) {
      try {
        await run(jobs, { total, isDir });
      } catch (err) {
        await next?.catch(() => undefined);
        if (!signal?.aborted) throw err;
        stopped = true;
        break;
      }
      processed += jobs.length;
    }
    done += read.length;
    onProgress?.(done, total);
  }
  await next; // a group read ahead of a stop (no more than the next one)
  return { processed, skipped, stopped, isDir, seconds: (performance.now() - started) / 1000 };
}
