import { extname, join } from "node:path";
import { SegkitError } from "../core/errors.js";
import type { Mask } from "../core/image.js";
import type { SkippedSample } from "../core/skipped.js";
import { type Dataset, skippedFrom } from "../data/dataset.js";
import { IMAGE_EXTENSIONS, listDir, stem } from "../data/files.js";
import { readMask } from "../io/mask.js";
import { BoundaryMetrics, type BoundaryOptions } from "../metrics/boundary.js";
import { type PerImageScores, type ReduceOptions, SegmentationMetrics } from "../metrics/reduce.js";

/** One class's row of the report. `pixelShare`: the class's share of the scored true pixels. */
export interface ClassReport {
  index: number;
  name: string;
  iou: number;
  dice: number;
  precision: number;
  recall: number;
  boundaryF1: number;
  boundaryIoU: number;
  pixelShare: number;
}

/** A problem with one prediction, by file. `countedAsWrong`: its truth pixels were scored as missed. */
export interface PredictionProblem {
  path: string;
  reason: string;
  countedAsWrong: boolean;
}

export interface EvaluationReport {
  classes: string[];
  /** Ground-truth samples scored (with or without a usable prediction). */
  images: number;
  miou: number;
  pixelAccuracy: number;
  meanDice: number;
  meanPrecision: number;
  meanRecall: number;
  frequencyWeightedIoU: number;
  /** Mean over classes of per-class boundary F1. */
  meanBoundaryF1: number;
  /** Mean over images of each image's mean boundary F1 (MATLAB MeanBFScore, as SegNet reports). */
  imageMeanBoundaryF1: number;
  meanBoundaryIoU: number;
  perImage: PerImageScores;
  perClass: ClassReport[];
  /** Rows truth, columns prediction, over the scored pixels (missing predictions are not in it: see `missedPixels`). */
  confusion: number[][];
  missedPixels: number[];
  /** Missing, unreadable, wrong-size or out-of-range predictions (each counted as wrong). */
  problems: PredictionProblem[];
  /** Prediction files that match no ground-truth sample (not scored). */
  extra: string[];
  /** Ground-truth samples that could not be read (not scored), and unpaired ground-truth files. */
  skipped: SkippedSample[];
}

export interface EvaluateOptions extends ReduceOptions {
  boundary?: BoundaryOptions;
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Lossy formats change class values at region edges: never scored as predictions. */
const LOSSY = [".jpg", ".jpeg", ".jpe"];

/**
 * The prediction file for each key (file name without extension) in a directory of class-index images; files that
 * cannot be predictions (lossy JPEG, a second file with the same base name) are returned as problems, and
 * `segkit predict`'s overlays and probability maps beside a prediction are left out.
 */
async function indexPredictions(
  dir: string,
): Promise<{ byKey: Map<string, string>; rejected: Map<string, { path: string; reason: string }> }> {
  const byKey = new Map<string, string>();
  const rejected = new Map<string, { path: string; reason: string }>(); // files that must not be scored
  for (const name of await listDir(dir)) {
    const ext = extname(name).toLowerCase();
    if (!IMAGE_EXTENSIONS.includes(ext)) continue;
    const key = stem(name);
    const path = join(dir, name);
    if (LOSSY.includes(ext)) {
      rejected.set(key, { path, reason: "JPEG is lossy and changes class values: save predictions as PNG" });
    } else if (byKey.has(key)) {
      rejected.set(key, { path, reason: `same base name as ${byKey.get(key)}` });
    } else {
      byKey.set(key, path);
    }
  }
  // what `segkit predict` writes beside a prediction NAME.png (`NAME.overlay.png`, `NAME.prob.CLASS.png`,
  // infer/files.ts) is not a prediction
  const sideFile = (key: string) =>
    (key.endsWith(".overlay") && byKey.has(key.slice(0, -".overlay".length))) ||
    [...key.matchAll(/\.prob\./g)].some((m) => byKey.has(key.slice(0, m.index)));
  for (const key of [...byKey.keys()]) if (sideFile(key)) byKey.delete(key);
  return { byKey, rejected };
}

/** Keys a prediction for sample i may have: its image's base name, its id, and the id's last path segment. */
function predictionKeys(ds: Dataset, i: number): string[] {
  const image = ds.files(i)[0];
  const id = ds.id(i);
  const keys = [image ? stem(image.split(/[\\/]/).pop() ?? "") : "", id, id.split("/").pop() ?? ""];
  return [...new Set(keys.filter(Boolean))];
}

/**
 * Scores the class-index predictions in `predDir` (paired with the dataset's samples by base name) against the
 * dataset's masks, with its ignore index and valid regions. A missing or unusable prediction is reported and its
 * truth pixels count as wrong (false negatives, nobody's false positives).
 */
export async function evaluatePredictions(
  ds: Dataset,
  predDir: string,
  options: EvaluateOptions = {},
): Promise<EvaluationReport> {
  const C = ds.classNames.length;
  const concurrency = options.concurrency ?? 4;
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new RangeError("concurrency must be an integer >= 1");
  const { byKey: preds, rejected } = await indexPredictions(predDir);
  const used = new Set<string>();
  const metrics = new SegmentationMetrics(C, { ignoreIndex: ds.ignoreIndex, perImage: true });
  const boundary = new BoundaryMetrics(C, { ...options.boundary, ignoreIndex: ds.ignoreIndex });
  const problems: PredictionProblem[] = [];
  const skipped: SkippedSample[] = [...ds.skipped];
  let images = 0;
  let next = 0;
  let done = 0;

  const scoreOne = async (i: number) => {
    let truth: Mask;
    try {
      truth = ds.getMask ? await ds.getMask(i) : (await ds.get(i)).mask;
    } catch (err) {
      skipped.push(skippedFrom(ds, i, err));
      return;
    }
    images++;
    const keys = predictionKeys(ds, i);
    const key = keys.find((k) => preds.has(k));
    const path = key ? (preds.get(key) as string) : join(predDir, `${keys[0]}.png`);
    if (key) used.add(key);
    try {
      const bad = keys.map((k) => rejected.get(k)).find(Boolean);
      if (!key && bad) throw new SegkitError(bad.reason, { file: bad.path });
      if (!key) throw new SegkitError("no prediction for this sample", { file: path });
      const pred = await readMask(path, { numClasses: C, ignoreIndex: ds.ignoreIndex });
      if (pred.width !== truth.width || pred.height !== truth.height) {
        throw new SegkitError(`prediction is ${pred.width}x${pred.height}, its truth ${truth.width}x${truth.height}`, {
          file: path,
        });
      }
      metrics.update(truth.data, pred.data, undefined, path);
      boundary.update(truth, pred, path);
    } catch (err) {
      if (!(err instanceof SegkitError)) throw err;
      metrics.addMissed(truth.data);
      boundary.addMissed(truth);
      problems.push({ path: err.file ?? path, reason: err.message, countedAsWrong: true });
    }
  };
  const worker = async () => {
    while (next < ds.length) {
      await scoreOne(next++);
      options.onProgress?.(++done, ds.length);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));

  const truthKeys = new Set(Array.from({ length: ds.length }, (_, i) => predictionKeys(ds, i)).flat());
  const scores = metrics.compute(options);
  const b = boundary.compute();
  const total = scores.pixels;
  return {
    classes: [...ds.classNames],
    images,
    miou: scores.meanIoU,
    pixelAccuracy: scores.pixelAccuracy,
    meanDice: scores.meanDice,
    meanPrecision: scores.meanPrecision,
    meanRecall: scores.meanRecall,
    frequencyWeightedIoU: scores.frequencyWeightedIoU,
    meanBoundaryF1: b.meanF1,
    imageMeanBoundaryF1: b.imageMeanF1,
    meanBoundaryIoU: b.meanIoU,
    perImage: scores.perImage as PerImageScores,
    perClass: ds.classNames.map((name, c) => ({
      index: c,
      name,
      iou: scores.perClass.iou[c] as number,
      dice: scores.perClass.dice[c] as number,
      precision: scores.perClass.precision[c] as number,
      recall: scores.perClass.recall[c] as number,
      boundaryF1: b.f1[c] as number,
      boundaryIoU: b.iou[c] as number,
      pixelShare: total > 0 ? (scores.perClass.support[c] as number) / total : 0,
    })),
    confusion: metrics.confusion.toArray(),
    missedPixels: Array.from(metrics.confusion.missed),
    problems: problems.sort((x, y) => x.path.localeCompare(y.path)),
    extra: [...preds.entries()]
      .filter(([k]) => !used.has(k))
      .map(([, p]) => p)
      .concat([...rejected.entries()].filter(([k]) => !truthKeys.has(k)).map(([, r]) => r.path))
      .sort(),
    skipped,
  };
}
