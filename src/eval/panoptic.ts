import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { SegkitError } from "../core/errors.js";
import {
  type CocoPanopticFile,
  type PanopticCategory,
  type PanopticSegment,
  type PanopticSegmentation,
  panopticPngDir,
  readCocoPanopticJson,
  readPanopticPng,
} from "../data/coco-panoptic.js";
import { resolveInside } from "../io/fs.js";

/**
 * Panoptic quality (PQ = SQ x RQ) exactly as panopticapi's `pq_compute` computes it (Kirillov et al. 2019):
 * - Segment id 0 of the ground truth is void. A ground-truth segment's area is the `area` its JSON gives; a
 *   predicted segment's area is its pixel count in the PNG.
 * - A ground-truth segment and a prediction of the same category match when IoU > 0.5, with
 *   union = predicted area + ground-truth area - intersection - (the prediction's pixels on void): unique by
 *   construction. Matched pairs are true positives and add their IoU to the category.
 * - Unmatched ground truth is a false negative, except crowd segments (`iscrowd: 1`), which are never matched and
 *   never counted. An unmatched prediction is a false positive unless more than half of it lies on void plus the
 *   crowd region of its category (the category's last crowd segment in `segments_info`).
 * - Per category: PQ = sum IoU / (TP + FP/2 + FN/2), SQ = sum IoU / TP (0 without TP), RQ = TP / (TP + FP/2 + FN/2);
 *   a category with no TP, FP or FN scores 0 and is left out of the means. All / Things / Stuff are the means over the
 *   ground truth's categories (all, `isthing` 1, the others) with n the number averaged; with n = 0 the means are
 *   NaN (panopticapi divides by zero).
 */

/** PQ, SQ and RQ of one category or a mean (n: the number of categories averaged). */
export interface PqScores {
  pq: number;
  sq: number;
  rq: number;
}

/** What `pqCompute` returns: the shape of panopticapi's results, per_class keyed by category id. */
export interface PanopticQuality {
  All: PqScores & { n: number };
  Things: PqScores & { n: number };
  Stuff: PqScores & { n: number };
  per_class: Record<string, PqScores>;
}

interface CategoryStat {
  iou: number;
  tp: number;
  fp: number;
  fn: number;
}

/** Where the segmentations of one image came from, for errors. */
export interface PanopticSources {
  gt?: string;
  pred?: string;
  imageId?: number | string;
}

/** Image pairs read ahead of the one being scored. */
const PREFETCH = 4;

const OFFSET = 0x1000000; // 256^3: a (gt id, pred id) pair as one number, gt * OFFSET + pred (< 2^48)

/** The matching counts of panoptic quality, added up image by image (`add`), averaged by `scores`. */
export class PqStat {
  private readonly perCategory = new Map<number, CategoryStat>();

  private at(categoryId: number): CategoryStat {
    let s = this.perCategory.get(categoryId);
    if (!s) {
      s = { iou: 0, tp: 0, fp: 0, fn: 0 };
      this.perCategory.set(categoryId, s);
    }
    return s;
  }

  /**
   * Adds one image. `categories`, when given, are the known category ids (a prediction of another is an error); the
   * prediction's PNG and segments must agree (every id in the PNG but 0 listed, every listed id in the PNG), as
   * panopticapi requires.
   */
  add(
    gt: PanopticSegmentation,
    pred: PanopticSegmentation,
    categories?: ReadonlySet<number>,
    from: PanopticSources = {},
  ): void {
    const image = from.imageId !== undefined ? `image ${from.imageId}: ` : "";
    if (gt.width !== pred.width || gt.height !== pred.height) {
      throw new SegkitError(
        `${image}prediction is ${pred.width}x${pred.height}, ground truth ${gt.width}x${gt.height}`,
        from.pred ? { file: from.pred } : {},
      );
    }
    const pairs = intersections(gt.ids, pred.ids);
    const gtSegms = new Map(gt.segments.map((s) => [s.id, s]));
    const predSegms = new Map(pred.segments.map((s) => [s.id, s]));
    const predArea = new Map<number, number>();
    for (const [key, n] of pairs) {
      const p = key % OFFSET;
      predArea.set(p, (predArea.get(p) ?? 0) + n);
    }
    const predProblem = (message: string) => new SegkitError(image + message, from.pred ? { file: from.pred } : {});
    for (const p of predArea.keys()) {
      const seg = predSegms.get(p);
      if (!seg) {
        if (p === 0) continue;
        throw predProblem(`segment id ${p} is in the PNG but not in segments_info`);
      }
      if (categories && !categories.has(seg.categoryId)) {
        throw predProblem(`segment ${p} has unknown category_id ${seg.categoryId}`);
      }
    }
    const absent = [...predSegms.keys()].filter((p) => !predArea.has(p));
    if (absent.length) throw predProblem(`segment ids ${absent.join(", ")} are in segments_info but not in the PNG`);

    // matches: IoU > 0.5 between a non-crowd ground-truth segment and a prediction of its category
    const gtMatched = new Set<number>();
    const predMatched = new Set<number>();
    const keys = [...pairs.keys()].sort((a, b) => a - b);
    for (const key of keys) {
      const g = gtSegms.get(Math.floor(key / OFFSET));
      const p = predSegms.get(key % OFFSET);
      if (!g || !p || g.iscrowd || g.categoryId !== p.categoryId) continue;
      const intersection = pairs.get(key) as number;
      const union = (predArea.get(p.id) as number) + gtArea(g, from) - intersection - (pairs.get(p.id) ?? 0); // (VOID, pred)
      const iou = intersection / union;
      if (iou > 0.5) {
        const s = this.at(g.categoryId);
        s.tp += 1;
        s.iou += iou;
        gtMatched.add(g.id);
        predMatched.add(p.id);
      }
    }
    // false negatives; crowd regions by category (the last one listed)
    const crowd = new Map<number, number>();
    for (const g of gtSegms.values()) {
      if (gtMatched.has(g.id)) continue;
      if (g.iscrowd) crowd.set(g.categoryId, g.id);
      else this.at(g.categoryId).fn += 1;
    }
    // false positives, unless more than half lies on void + the crowd region of the category
    for (const p of predSegms.values()) {
      if (predMatched.has(p.id)) continue;
      let ignored = pairs.get(p.id) ?? 0; // (VOID, pred)
      const c = crowd.get(p.categoryId);
      if (c !== undefined) ignored += pairs.get(c * OFFSET + p.id) ?? 0;
      if (ignored / (predArea.get(p.id) as number) > 0.5) continue;
      this.at(p.categoryId).fp += 1;
    }
  }

  /** PQ, SQ, RQ over all, things and stuff among `categories` (in their order), and per category. */
  scores(categories: readonly PanopticCategory[]): PanopticQuality {
    const average = (isthing: boolean | undefined) => {
      let pq = 0;
      let sq = 0;
      let rq = 0;
      let n = 0;
      const perClass: Record<string, PqScores> = {};
      // by id as panopticapi's dict of them: a repeated id counts once, with its last entry
      for (const c of new Map(categories.map((c) => [c.id, c])).values()) {
        if (isthing !== undefined && c.isthing !== isthing) continue;
        const { iou, tp, fp, fn } = this.perCategory.get(c.id) ?? { iou: 0, tp: 0, fp: 0, fn: 0 };
        if (tp + fp + fn === 0) {
          perClass[c.id] = { pq: 0, sq: 0, rq: 0 };
          continue;
        }
        n += 1;
        const scores = {
          pq: iou / (tp + 0.5 * fp + 0.5 * fn),
          sq: tp !== 0 ? iou / tp : 0,
          rq: tp / (tp + 0.5 * fp + 0.5 * fn),
        };
        perClass[c.id] = scores;
        pq += scores.pq;
        sq += scores.sq;
        rq += scores.rq;
      }
      return { mean: { pq: pq / n, sq: sq / n, rq: rq / n, n }, perClass };
    };
    const all = average(undefined);
    return { All: all.mean, Things: average(true).mean, Stuff: average(false).mean, per_class: all.perClass };
  }
}

function gtArea(g: PanopticSegment, from: PanopticSources): number {
  if (g.area === undefined) {
    throw new SegkitError(
      `${from.imageId !== undefined ? `image ${from.imageId}: ` : ""}ground-truth segment ${g.id} has no area`,
      from.gt ? { file: from.gt } : {},
    );
  }
  return g.area;
}

/** Pixel counts of each (gt id, pred id) pair present, keyed gt * OFFSET + pred (runs of one pair counted at once). */
function intersections(gt: Uint32Array, pred: Uint32Array): Map<number, number> {
  const counts = new Map<number, number>();
  const n = gt.length;
  let i = 0;
  while (i < n) {
    const g = gt[i] as number;
    const p = pred[i] as number;
    let j = i + 1;
    while (j < n && gt[j] === g && pred[j] === p) j++;
    const key = g * OFFSET + p;
    counts.set(key, (counts.get(key) ?? 0) + (j - i));
    i = j;
  }
  return counts;
}

export interface PqComputeOptions {
  /** The ground truth's PNG folder (default: the JSON's path without `.json`). */
  gtDir?: string;
  /** The predictions' PNG folder (default: the JSON's path without `.json`). */
  predDir?: string;
  onProgress?: (done: number, total: number) => void;
}

function pngDir(json: string, dir: string | undefined, what: string): string {
  const d = dir ?? panopticPngDir(json);
  if (!existsSync(d) || !statSync(d).isDirectory()) {
    throw new SegkitError(`folder with the ${what} PNGs not found`, {
      file: d,
      hint: `by default the folder of the same name beside ${json}; --${what === "ground-truth" ? "gt" : "pred"}-dir names another`,
    });
  }
  return resolve(d);
}

function pngPath(dir: string, name: string, json: string): string {
  const path = resolveInside(dir, name);
  if (!path) {
    throw new SegkitError(`file_name ${JSON.stringify(name)} is outside the PNG folder ${dir}`, { file: json });
  }
  return path;
}

function firstProblem(pan: CocoPanopticFile): void {
  const p = pan.problems[0];
  if (p) throw new SegkitError(p.reason, { file: pan.file });
}

/**
 * Panoptic quality of the predictions in `predJson` (+ PNG folder) against the ground truth in `gtJson` (+ PNG folder),
 * as panopticapi's `pq_compute(gt_json_file, pred_json_file, gt_folder, pred_folder)`: images paired by `image_id`
 * (every ground-truth image needs a prediction; extra predictions are ignored), categories from the ground truth.
 */
export async function pqCompute(
  gtJson: string,
  predJson: string,
  options: PqComputeOptions = {},
): Promise<PanopticQuality> {
  const [gt, pred] = await Promise.all([readCocoPanopticJson(gtJson), readCocoPanopticJson(predJson)]);
  firstProblem(gt);
  firstProblem(pred);
  const gtDir = pngDir(gtJson, options.gtDir, "ground-truth");
  const predDir = pngDir(predJson, options.predDir, "prediction");
  if (gt.categories.length === 0) throw new SegkitError("the ground truth has no categories", { file: gtJson });
  const categories = new Set(gt.categories.map((c) => c.id));
  const predByImage = new Map(pred.annotations.map((a) => [a.imageId, a]));
  const pairs = gt.annotations.map((g) => {
    const p = predByImage.get(g.imageId);
    if (!p) throw new SegkitError(`no prediction for the image with id ${g.imageId}`, { file: predJson });
    return { g, p, gtPng: pngPath(gtDir, g.fileName, gtJson), predPng: pngPath(predDir, p.fileName, predJson) };
  });
  const stat = new PqStat();
  // PNGs decode on libuv's threads: keep a few pairs in flight while the counting runs here
  const read = (k: number) => {
    const pair = pairs[k];
    if (!pair) return undefined;
    const pending = Promise.all([readPanopticPng(pair.gtPng), readPanopticPng(pair.predPng)]);
    pending.catch(() => undefined); // awaited in its turn; an error thrown before then must not go unhandled
    return pending;
  };
  const inFlight = Array.from({ length: PREFETCH }, (_, k) => read(k));
  for (let k = 0; k < pairs.length; k++) {
    const { g, p, gtPng, predPng } = pairs[k] as (typeof pairs)[number];
    const [gtIds, predIds] = await (inFlight.shift() as NonNullable<ReturnType<typeof read>>);
    inFlight.push(read(k + PREFETCH));
    stat.add({ ...gtIds, segments: g.segments }, { ...predIds, segments: p.segments }, categories, {
      gt: gtPng,
      pred: predPng,
      imageId: g.imageId,
    });
    options.onProgress?.(k + 1, pairs.length);
  }
  return stat.scores(gt.categories);
}
