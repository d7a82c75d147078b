/**
 * COCO instance-segmentation and box scoring, exactly as pycocotools' `COCOeval` (`evaluate`, `accumulate`,
 * `summarize`) with its default parameters, for `iouType` `segm` and `bbox`.
 *
 * What pycocotools does, and so what this does:
 * - Ground truth: every image and category of the instances file (sorted ids). A ground truth is ignored when it is
 *   a crowd region or its file `area` is outside the area range (`[0, 1e10]`, `[0, 32²]`, `[32², 96²]`,
 *   `[96², 1e10]`, both ends inclusive).
 * - Detections (`loadRes`): when the first result has a `bbox`, every result's area is `w * h` of its box (a result
 *   without a segmentation gets the box as its mask); otherwise the area is the mask's pixel count and a missing box is
 *   the mask's extent. Ids are the list positions + 1; detections are never crowd.
 * - Per image and category: detections sorted by score, highest first, ties in list order (numpy's stable
 *   mergesort), the first 100 kept; IoU as `maskUtils.iou` (a crowd ground truth's union is the detection alone:
 *   `rleIou` / `bboxIou` of src/masks/rle.ts). For each IoU threshold .50:.05:.95, each detection in order takes the
 *   best-IoU ground truth not yet taken (crowd regions can be taken again; ties go to the later one; a non-ignored
 *   match is never traded for an ignored one). Unmatched detections outside the area range are ignored.
 * - Accumulate: per category, area range and maxDets (1, 10, 100), the detections of all images merged by score (stable
 *   in image order), precision made monotone from the right and read at 101 recall points (0 past the last recall),
 *   recall the last one; -1 where a category has no non-ignored ground truth.
 * - Summarize: the twelve numbers are means of the entries > -1 (-1 when there are none).
 * A ground-truth annotation id of 0 counts as "no match" in pycocotools (its matches are stored as ids): mirrored.
 */
import { SegkitError } from "../core/errors.js";
import { readJson } from "../io/fs.js";
import { type Polygon, segmentationToRle } from "../masks/polygon.js";
import { bboxIou, type Rle, rleArea, rleIou, rleToBbox } from "../masks/rle.js";

export type CocoIouType = "segm" | "bbox";

/** The twelve numbers of `COCOeval.summarize`, in its order (pycocotools' `stats`). */
export const COCO_STAT_NAMES = [
  "AP",
  "AP50",
  "AP75",
  "APs",
  "APm",
  "APl",
  "AR1",
  "AR10",
  "AR100",
  "ARs",
  "ARm",
  "ARl",
] as const;
export type CocoStatName = (typeof COCO_STAT_NAMES)[number];

/** pycocotools' default detection parameters (`Params.setDetParams`), the thresholds computed as numpy's linspace. */
export const COCO_PARAMS = {
  iouThrs: linspace(0.5, 0.95, 10),
  recThrs: linspace(0, 1, 101),
  maxDets: [1, 10, 100],
  areaRng: [
    [0, 1e10],
    [0, 32 ** 2],
    [32 ** 2, 96 ** 2],
    [96 ** 2, 1e10],
  ],
  areaRngLbl: ["all", "small", "medium", "large"],
} as const;

/** numpy's `linspace(start, stop, num)`: `i * step + start`, the last one `stop` exactly. */
function linspace(start: number, stop: number, num: number): number[] {
  const step = (stop - start) / (num - 1);
  return Array.from({ length: num }, (_, i) => (i === num - 1 ? stop : i * step + start));
}

type Bbox = readonly [number, number, number, number];
type Segmentation =
  | readonly Polygon[]
  | { readonly size: readonly number[]; readonly counts: string | readonly number[] };

/** One annotation as the evaluation sees it (ground truth or detection). */
interface EvalAnn {
  readonly id: number;
  readonly area: number;
  readonly bbox: Bbox;
  readonly iscrowd: boolean;
  readonly score: number;
  /** The mask, decoded on first use. */
  rle(): Rle;
}

export interface CocoImage {
  readonly id: number;
  readonly file_name?: string;
  readonly width: number;
  readonly height: number;
}

/** A COCO instances file read for evaluation: images and categories by sorted id, annotations per image x category. */
export interface CocoEvalSet {
  readonly file: string | undefined;
  readonly images: readonly CocoImage[];
  readonly categories: readonly { readonly id: number; readonly name: string }[];
  /** `anns[k * images.length + i]`: category k's annotations on image i, in file order. */
  readonly anns: readonly (EvalAnn[] | undefined)[];
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function fail(file: string | undefined, message: string): never {
  throw new SegkitError(message, file ? { file } : {});
}

function readBbox(v: unknown, file: string | undefined, what: string): Bbox {
  if (!Array.isArray(v) || v.length !== 4 || !v.every(isNum)) fail(file, `${what}: bbox must be [x, y, w, h]`);
  return v as unknown as Bbox;
}

function lazyRle(seg: () => Segmentation, image: CocoImage, file: string | undefined, what: string): () => Rle {
  let rle: Rle | undefined;
  return () => {
    if (!rle) {
      const s = seg();
      if (!Array.isArray(s) && !isObject(s)) fail(file, `${what}: segmentation must be polygons or RLE`);
      try {
        rle = segmentationToRle(s, image.height, image.width, file);
      } catch (err) {
        if (err instanceof SegkitError) fail(file, `${what}: ${err.message}`);
        throw err;
      }
    }
    return rle;
  };
}

/** Reads a COCO instances JSON value (ground truth); `file` names it in errors. */
export function cocoEvalGroundTruth(json: unknown, file?: string): CocoEvalSet {
  if (!isObject(json) || !Array.isArray(json.images) || !Array.isArray(json.annotations)) {
    fail(file, "not a COCO instances file (needs images, categories and annotations lists)");
  }
  if (!Array.isArray(json.categories)) fail(file, "not a COCO instances file (no categories list)");
  const images = json.images.map((im: unknown, n) => {
    if (!isObject(im) || !isNum(im.id) || !Number.isInteger(im.width) || !Number.isInteger(im.height)) {
      fail(file, `images[${n}]: needs a numeric id, integer width and height`);
    }
    const fileName = typeof im.file_name === "string" ? { file_name: im.file_name } : {};
    return { id: im.id, width: im.width as number, height: im.height as number, ...fileName };
  });
  const categories = json.categories.map((c: unknown, n) => {
    if (!isObject(c) || !isNum(c.id)) fail(file, `categories[${n}]: needs a numeric id`);
    return { id: c.id, name: typeof c.name === "string" ? c.name : String(c.id) };
  });
  images.sort((a, b) => a.id - b.id);
  categories.sort((a, b) => a.id - b.id);
  for (const [what, list] of [
    ["image", images],
    ["category", categories],
  ] as const) {
    for (let n = 1; n < list.length; n++) {
      if (list[n]?.id === list[n - 1]?.id) fail(file, `duplicate ${what} id ${list[n]?.id}`);
    }
  }
  const set: CocoEvalSet = { file, images, categories, anns: new Array(images.length * categories.length) };
  const seen = new Set<number>();
  for (const [n, a] of json.annotations.entries()) {
    const what = `annotations[${n}]`;
    if (!isObject(a)) fail(file, `${what}: not an object`);
    const id = isNum(a.id) ? a.id : n + 1;
    if (seen.has(id)) fail(file, `${what}: duplicate annotation id ${id}`);
    seen.add(id);
    const place = locate(set, a, file, what);
    const rle = lazyRle(() => a.segmentation as Segmentation, place.image, file, what);
    const bbox = a.bbox === undefined ? undefined : readBbox(a.bbox, file, what);
    if (a.area !== undefined && !isNum(a.area)) fail(file, `${what}: area must be a number`);
    const area = a.area as number | undefined;
    const ann: EvalAnn = {
      id,
      // pycocotools needs both; a file without them is scored on the mask's own (documented in the README)
      area: area ?? rleArea(rle()),
      bbox: bbox ?? rleToBbox(rle()),
      iscrowd: Boolean(a.iscrowd),
      score: 1,
      rle,
    };
    push(set, place.slot, ann);
  }
  return set;
}

function locate(set: CocoEvalSet, a: Json, file: string | undefined, what: string) {
  const i = indexOfId(set.images, a.image_id);
  if (i < 0) fail(file, `${what}: image_id ${JSON.stringify(a.image_id)} is not an image of the ground truth`);
  const k = indexOfId(set.categories, a.category_id);
  if (k < 0) fail(file, `${what}: category_id ${JSON.stringify(a.category_id)} is not a category of the ground truth`);
  return { slot: k * set.images.length + i, image: set.images[i] as CocoImage };
}

/** Binary search in a list sorted by id. */
function indexOfId(list: readonly { id: number }[], id: unknown): number {
  if (!isNum(id)) return -1;
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = (list[mid] as { id: number }).id;
    if (v === id) return mid;
    if (v < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

function push(set: CocoEvalSet, slot: number, ann: EvalAnn): void {
  const anns = set.anns as (EvalAnn[] | undefined)[];
  const list = anns[slot];
  if (list) list.push(ann);
  else anns[slot] = [ann];
}

/**
 * Reads detections against a ground truth: a COCO results list (`[{ image_id, category_id, segmentation | bbox,
 * score }]`) or a COCO file whose `annotations` carry `score` (its images matched to the ground truth's by
 * `file_name`, or by base name when that is unique). Areas and boxes as pycocotools' `loadRes` makes them.
 */
export function cocoEvalDetections(json: unknown, gt: CocoEvalSet, file?: string): CocoEvalSet {
  let results: unknown[];
  let imageIdOf = (id: unknown): unknown => id;
  if (Array.isArray(json)) results = json;
  else if (isObject(json) && Array.isArray(json.annotations)) {
    results = json.annotations;
    if (Array.isArray(json.images)) imageIdOf = matchImages(json.images, gt, file);
  } else fail(file, "not COCO results: expected a list of detections or a COCO file with annotations");
  const set: CocoEvalSet = { file, images: gt.images, categories: gt.categories, anns: new Array(gt.anns.length) };
  const first = results[0];
  const boxes = isObject(first) && Array.isArray(first.bbox) && first.bbox.length > 0;
  for (const [n, r] of results.entries()) {
    const what = `detection ${n}`;
    if (!isObject(r)) fail(file, `${what}: not an object`);
    if (!isNum(r.score)) fail(file, `${what}: score must be a number`);
    const place = locate(set, { ...r, image_id: imageIdOf(r.image_id) }, file, what);
    let ann: EvalAnn;
    if (boxes) {
      if (r.bbox === undefined) fail(file, `${what}: no bbox (the first detection has one, so all need one)`);
      const bbox = readBbox(r.bbox, file, what);
      const [x, y, w, h] = bbox;
      const seg = (r.segmentation ?? [[x, y, x, y + h, x + w, y + h, x + w, y]]) as Segmentation;
      ann = {
        id: n + 1,
        area: w * h,
        bbox,
        iscrowd: false,
        score: r.score,
        rle: lazyRle(() => seg, place.image, file, what),
      };
    } else {
      if (r.segmentation === undefined) fail(file, `${what}: needs a segmentation or a bbox`);
      const rle = lazyRle(() => r.segmentation as Segmentation, place.image, file, what);
      const bbox = r.bbox === undefined ? rleToBbox(rle()) : readBbox(r.bbox, file, what);
      ann = { id: n + 1, area: rleArea(rle()), bbox, iscrowd: false, score: r.score, rle };
    }
    push(set, place.slot, ann);
  }
  return set;
}

/** Prediction image id -> ground-truth image id, by `file_name` (or a unique base name). */
function matchImages(images: unknown[], gt: CocoEvalSet, file: string | undefined): (id: unknown) => unknown {
  const base = (p: string) => p.slice(p.lastIndexOf("/") + 1);
  const byName = new Map<string, number>();
  const byBase = new Map<string, number | null>();
  for (const im of gt.images) {
    if (im.file_name === undefined) continue;
    byName.set(im.file_name, im.id);
    const b = base(im.file_name);
    byBase.set(b, byBase.has(b) ? null : im.id);
  }
  const map = new Map<unknown, number>();
  for (const [n, im] of images.entries()) {
    if (!isObject(im) || typeof im.file_name !== "string") fail(file, `images[${n}]: needs a file_name`);
    const id = byName.get(im.file_name) ?? byBase.get(base(im.file_name));
    if (id === undefined || id === null) {
      fail(file, `images[${n}]: file_name ${JSON.stringify(im.file_name)} is not an image of the ground truth`);
    }
    map.set(im.id, id);
  }
  return (id) => {
    if (!map.has(id)) fail(file, `image_id ${JSON.stringify(id)} is not an image of the predictions' own images list`);
    return map.get(id);
  };
}

export interface CocoEvalResult {
  readonly iouType: CocoIouType;
  /** pycocotools' `stats`, in `COCO_STAT_NAMES` order. */
  readonly stats: readonly number[];
  /** AP per category (IoU .50:.95, area all, maxDets 100; -1 when it has no non-ignored ground truth), by id order. */
  readonly perClass: readonly { readonly id: number; readonly name: string; readonly ap: number }[];
  /** `eval['precision']` `[T, R, K, A, M]` flattened row-major (numpy's order); -1 where undefined. */
  readonly precision: Float64Array;
  /** `eval['recall']` `[T, K, A, M]` flattened row-major. */
  readonly recall: Float64Array;
  /** `[T, R, K, A, M]`. */
  readonly counts: readonly [number, number, number, number, number];
}

/** Per image x category x area range: `evaluateImg`'s answer, reduced to what `accumulate` reads. */
interface ImageEval {
  /** Detection scores, sorted, at most maxDets[-1]. */
  readonly scores: readonly number[];
  /** `[t * D + d]`: 1 matched (to a ground truth whose id is not 0), 0 not. */
  readonly matched: Uint8Array;
  /** `[t * D + d]`: 1 ignored. */
  readonly ignored: Uint8Array;
  /** Ground truths not ignored. */
  readonly npig: number;
}

const byScore = (a: EvalAnn, b: EvalAnn) => b.score - a.score;

/** `COCOeval(gt, dt, iouType)`: evaluate, accumulate and summarize. */
export function cocoEvaluate(gt: CocoEvalSet, dt: CocoEvalSet, iouType: CocoIouType): CocoEvalResult {
  const { iouThrs, recThrs, maxDets, areaRng } = COCO_PARAMS;
  const T = iouThrs.length;
  const R = recThrs.length;
  const K = gt.categories.length;
  const A = areaRng.length;
  const M = maxDets.length;
  const I = gt.images.length;
  const maxDet = maxDets[M - 1] as number;
  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  for (let k = 0; k < K; k++) {
    // evaluate: E[a] lists the image evaluations of category k (images with ground truth or detections), image order
    const E: ImageEval[][] = areaRng.map(() => []);
    for (let i = 0; i < I; i++) {
      const g = gt.anns[k * I + i] ?? [];
      const d = [...(dt.anns[k * I + i] ?? [])].sort(byScore).slice(0, maxDet);
      if (g.length === 0 && d.length === 0) continue;
      const ious =
        g.length === 0 || d.length === 0
          ? []
          : iouType === "segm"
            ? rleIou(
                d.map((x) => x.rle()),
                g.map((x) => x.rle()),
                g.map((x) => x.iscrowd),
              )
            : bboxIou(
                d.map((x) => x.bbox),
                g.map((x) => x.bbox),
                g.map((x) => x.iscrowd),
              );
      for (const [a, rng] of areaRng.entries()) (E[a] as ImageEval[]).push(evaluateImg(g, d, ious, rng));
    }
    // accumulate: one stable score order of the merged detections serves every area range and maxDets
    const E0 = E[0] as ImageEval[];
    if (E0.length === 0) continue;
    const owner: number[] = [];
    const pos: number[] = [];
    const score: number[] = [];
    for (const [e, ev] of E0.entries()) {
      for (const [p, s] of ev.scores.entries()) {
        owner.push(e);
        pos.push(p);
        score.push(s);
      }
    }
    const order = score.map((_, j) => j).sort((x, y) => (score[y] as number) - (score[x] as number) || x - y);
    for (let a = 0; a < A; a++) {
      const Ea = E[a] as ImageEval[];
      let npig = 0;
      for (const ev of Ea) npig += ev.npig;
      if (npig === 0) continue;
      for (let m = 0; m < M; m++) {
        const cut = order.filter((j) => (pos[j] as number) < (maxDets[m] as number));
        const nd = cut.length;
        const rc = new Float64Array(nd);
        const pr = new Array<number>(nd);
        for (let t = 0; t < T; t++) {
          let tp = 0;
          let fp = 0;
          for (let n = 0; n < nd; n++) {
            const j = cut[n] as number;
            const ev = Ea[owner[j] as number] as ImageEval;
            const at = t * ev.scores.length + (pos[j] as number);
            if (!ev.ignored[at]) {
              if (ev.matched[at]) tp++;
              else fp++;
            }
            rc[n] = tp / npig;
            pr[n] = tp / (fp + tp + Number.EPSILON);
          }
          recall[((t * K + k) * A + a) * M + m] = nd ? (rc[nd - 1] as number) : 0;
          for (let n = nd - 1; n > 0; n--) if ((pr[n] as number) > (pr[n - 1] as number)) pr[n - 1] = pr[n] as number;
          // searchsorted(rc, recThrs, side='left'), then 0 past the last detection
          let p = 0;
          for (let r = 0; r < R; r++) {
            while (p < nd && (rc[p] as number) < (recThrs[r] as number)) p++;
            precision[(((t * R + r) * K + k) * A + a) * M + m] = p < nd ? (pr[p] as number) : 0;
          }
        }
      }
    }
  }
  const counts = [T, R, K, A, M] as const;
  const result = { iouType, precision, recall, counts };
  return {
    ...result,
    stats: summarize(result),
    perClass: gt.categories.map((c, k) => ({
      id: c.id,
      name: c.name,
      ap: meanDefined(precisionAt(result, { k, a: 0, m: M - 1 })),
    })),
  };
}

function evaluateImg(
  gt: readonly EvalAnn[],
  dt: readonly EvalAnn[],
  ious: readonly (readonly number[])[],
  [lo, hi]: readonly [number, number],
): ImageEval {
  const { iouThrs } = COCO_PARAMS;
  const T = iouThrs.length;
  const D = dt.length;
  const outside = (area: number) => area < lo || area > hi;
  // ground truths not ignored first, each group in file order (a stable argsort of the ignore flags)
  const gind = gt.map((_, g) => g);
  const gIg = gt.map((g) => g.iscrowd || outside(g.area));
  gind.sort((x, y) => Number(gIg[x]) - Number(gIg[y]));
  const G = gind.length;
  const taken = new Uint8Array(T * G);
  const matched = new Uint8Array(T * D);
  const ignored = new Uint8Array(T * D);
  if (ious.length > 0) {
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < D; d++) {
        let iou = Math.min(iouThrs[t] as number, 1 - 1e-10);
        let m = -1;
        const row = ious[d] as readonly number[];
        for (let s = 0; s < G; s++) {
          const g = gind[s] as number;
          if (taken[t * G + s] && !gt[g]?.iscrowd) continue;
          if (m > -1 && !gIg[gind[m] as number] && gIg[g]) break;
          const v = row[g] as number;
          if (v < iou) continue;
          iou = v;
          m = s;
        }
        if (m === -1) continue;
        const gm = gind[m] as number;
        ignored[t * D + d] = gIg[gm] ? 1 : 0;
        matched[t * D + d] = (gt[gm] as EvalAnn).id !== 0 ? 1 : 0;
        taken[t * G + m] = 1;
      }
    }
  }
  for (let d = 0; d < D; d++) {
    if (!outside((dt[d] as EvalAnn).area)) continue;
    for (let t = 0; t < T; t++) if (!matched[t * D + d]) ignored[t * D + d] = 1;
  }
  return { scores: dt.map((d) => d.score), matched, ignored, npig: gIg.filter((x) => !x).length };
}

type Accumulated = Pick<CocoEvalResult, "precision" | "recall" | "counts">;

/** The precision entries at one area range and maxDets (all IoU thresholds and recall points), one category or all. */
function precisionAt(r: Accumulated, at: { k?: number; a: number; m: number; t?: number }): number[] {
  const [T, R, K, A, M] = r.counts;
  const out: number[] = [];
  for (let t = 0; t < T; t++) {
    if (at.t !== undefined && t !== at.t) continue;
    for (let q = 0; q < R; q++) {
      for (let k = 0; k < K; k++) {
        if (at.k === undefined || k === at.k)
          out.push(r.precision[(((t * R + q) * K + k) * A + at.a) * M + at.m] as number);
      }
    }
  }
  return out;
}

function recallAt(r: Accumulated, at: { a: number; m: number; t?: number }): number[] {
  const [T, , K, A, M] = r.counts;
  const out: number[] = [];
  for (let t = 0; t < T; t++) {
    if (at.t !== undefined && t !== at.t) continue;
    for (let k = 0; k < K; k++) out.push(r.recall[((t * K + k) * A + at.a) * M + at.m] as number);
  }
  return out;
}

/** The mean of the entries > -1; -1 when there are none (summarize's `mean_s`). */
function meanDefined(values: readonly number[]): number {
  let sum = 0;
  let n = 0;
  for (const v of values) {
    if (v > -1) {
      sum += v;
      n++;
    }
  }
  return n === 0 ? -1 : sum / n;
}

/** `_summarizeDets`' twelve calls: AP or AR, IoU threshold (all when undefined), area range, maxDets. */
const SUMMARY: readonly (readonly [boolean, number | undefined, string, number])[] = [
  [true, undefined, "all", 100],
  [true, 0.5, "all", 100],
  [true, 0.75, "all", 100],
  [true, undefined, "small", 100],
  [true, undefined, "medium", 100],
  [true, undefined, "large", 100],
  [false, undefined, "all", 1],
  [false, undefined, "all", 10],
  [false, undefined, "all", 100],
  [false, undefined, "small", 100],
  [false, undefined, "medium", 100],
  [false, undefined, "large", 100],
];

function summarize(r: Accumulated): number[] {
  const { iouThrs, maxDets, areaRngLbl } = COCO_PARAMS;
  return SUMMARY.map(([ap, iouThr, area, maxDet]) => {
    const a = areaRngLbl.indexOf(area as (typeof areaRngLbl)[number]);
    const m = maxDets.indexOf(maxDet as (typeof maxDets)[number]);
    // exact equality, as numpy's where(iouThr == iouThrs)
    const t = iouThr === undefined ? undefined : iouThrs.indexOf(iouThr as (typeof iouThrs)[number]);
    if (t === -1) return -1;
    const at = t === undefined ? { a, m } : { a, m, t };
    return meanDefined(ap ? precisionAt(r, at) : recallAt(r, at));
  });
}

/** pycocotools' summarize lines (` Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.378`). */
export function formatCocoSummary(stats: readonly number[]): string[] {
  return SUMMARY.map(([ap, iouThr, area, det], n) => {
    const title = (ap ? "Average Precision" : "Average Recall").padEnd(18);
    const iou = iouThr === undefined ? "0.50:0.95" : iouThr.toFixed(2);
    return ` ${title} ${ap ? "(AP)" : "(AR)"} @[ IoU=${iou.padEnd(9)} | area=${area.padStart(6)} | maxDets=${String(det).padStart(3)} ] = ${(stats[n] as number).toFixed(3)}`;
  });
}

/** One IoU type's JSON report (see `cocoEvalReport`). */
export type CocoEvalReport = Record<CocoStatName, number> & {
  /** AP per category name (`name (id)` when two share a name); -1: no non-ignored ground truth. */
  perClass: Record<string, number>;
  /** `precision[t][r][k]` at area all, maxDets 100 (IoU thresholds x 101 recall points x categories; -1 undefined). */
  precision: number[][][];
  /** `recall[t][k][a][m]` (IoU thresholds x categories x area ranges x maxDets). */
  recall: number[][][][];
  params: { iouThrs: readonly number[]; recThrs: readonly number[]; maxDets: readonly number[]; catIds: number[] };
};

/** The JSON report of one IoU type: the twelve numbers by name, per-class AP, the precision and recall arrays. */
export function cocoEvalReport(r: CocoEvalResult): CocoEvalReport {
  const [T, R, K, A, M] = r.counts;
  const named = Object.fromEntries(COCO_STAT_NAMES.map((n, i) => [n, r.stats[i] as number])) as Record<
    CocoStatName,
    number
  >;
  const names = r.perClass.map((c) => c.name);
  const perClass = Object.fromEntries(
    r.perClass.map((c) => [names.indexOf(c.name) === names.lastIndexOf(c.name) ? c.name : `${c.name} (${c.id})`, c.ap]),
  );
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const precision = range(T).map((t) =>
    range(R).map((q) => range(K).map((k) => r.precision[(((t * R + q) * K + k) * A + 0) * M + (M - 1)] as number)),
  );
  const recall = range(T).map((t) =>
    range(K).map((k) => range(A).map((a) => range(M).map((m) => r.recall[((t * K + k) * A + a) * M + m] as number))),
  );
  const { iouThrs, recThrs, maxDets } = COCO_PARAMS;
  return {
    ...named,
    perClass,
    precision,
    recall,
    params: { iouThrs, recThrs, maxDets, catIds: r.perClass.map((c) => c.id) },
  };
}

/** `segkit eval --task instance`: the prediction file (results list or COCO file) scored against a COCO instances file. */
export async function evaluateCocoFiles(
  predFile: string,
  gtFile: string,
  iouTypes: readonly CocoIouType[] = ["segm", "bbox"],
): Promise<CocoEvalResult[]> {
  const gt = cocoEvalGroundTruth(await readJson(gtFile), gtFile);
  const dt = cocoEvalDetections(await readJson(predFile), gt, predFile);
  return iouTypes.map((t) => cocoEvaluate(gt, dt, t));
}
