import { SegkitError } from "../core/errors.js";
import { DEFAULT_IGNORE_INDEX, type Mask } from "../core/image.js";
import { nanMean } from "./reduce.js";

/**
 * Boundary metrics for class-index masks (H x W, row-major), per class.
 *
 * Boundary F1 (BF score; Csurka et al. 2013, BMVC, as MATLAB `bfscore`): the boundary of class c is the set of
 * pixels of c with a 4-neighbour (inside the image) of another label. A predicted boundary pixel is matched when a
 * true boundary pixel of the same class lies within Euclidean distance `tolerance`; precision = matched predicted
 * / predicted boundary pixels, recall = matched true / true boundary pixels, F1 = 2PR / (P + R). Scored per image
 * and class. Two dataset means: `f1[c]` averages class c over the images where it has a boundary in truth or
 * prediction (and `meanF1` averages those over classes); `imageMeanF1` averages over images each image's mean over
 * its classes (MATLAB `evaluateSemanticSegmentation`'s MeanBFScore, as SegNet reports on CamVid).
 *
 * Boundary IoU (Cheng et al. 2021, CVPR): G_d and P_d are the pixels of class c in truth and prediction within
 * chessboard distance d of a pixel of another label or of the image edge (the mask minus its erosion by a 3x3
 * square d times on a zero-padded mask, as the authors' code does); boundary IoU = |G_d n P_d| / |G_d u P_d|,
 * accumulated over the dataset per class. d = max(1, round(dilationRatio x image diagonal)).
 *
 * Ignored truth pixels (the ignore index, e.g. void or outside a valid region) are left out of every count, and
 * before boundaries are found they take the prediction's label there, so the edge of a void region or of the field
 * of view is not a boundary of the truth. Classes with nothing to count are NaN and left out of the means (the
 * zero-division policy of `reduce.ts`, "exclude"). An image without a usable prediction (`addMissed`) scores F1 0
 * for every class with a true boundary and adds its true bands to the boundary-IoU unions.
 */
export interface BoundaryOptions {
  /** BF match distance in pixels. */
  tolerance?: number;
  /** BF match distance as a fraction of the image diagonal (overrides `tolerance`; MATLAB's default is 0.75%). */
  toleranceRatio?: number;
  /** Boundary IoU band width as a fraction of the image diagonal. */
  dilationRatio?: number;
  ignoreIndex?: number;
  /** Compute only one of the two (the other is NaN). */
  only?: "f1" | "iou";
}

export const DEFAULT_BOUNDARY_OPTIONS = { tolerance: 2, dilationRatio: 0.02 } as const;

/** Offsets (dy, dx) within Euclidean distance r, nearest first. */
function discOffsets(r: number): [number, number][] {
  const out: [number, number][] = [];
  const R = Math.floor(r);
  for (let dy = -R; dy <= R; dy++) for (let dx = -R; dx <= R; dx++) if (dx * dx + dy * dy <= r * r) out.push([dy, dx]);
  return out.sort((a, b) => a[0] * a[0] + a[1] * a[1] - (b[0] * b[0] + b[1] * b[1]));
}

/** 1 where the pixel has a 4-neighbour inside the image with a different label. */
function boundaryMap(labels: Uint8Array, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const v = labels[i];
      if (
        (x > 0 && labels[i - 1] !== v) ||
        (x < w - 1 && labels[i + 1] !== v) ||
        (y > 0 && labels[i - w] !== v) ||
        (y < h - 1 && labels[i + w] !== v)
      ) {
        out[i] = 1;
      }
    }
  }
  return out;
}

/** Whether pixel i has a 4-neighbour that is scored (not ignored) and of another label. */
function bordersScoredOther(t: Uint8Array, w: number, h: number, i: number, ignore: number): boolean {
  const v = t[i];
  const x = i % w;
  const other = (j: number) => t[j] !== v && t[j] !== ignore;
  return (
    (x > 0 && other(i - 1)) ||
    (x < w - 1 && other(i + 1)) ||
    (i >= w && other(i - w)) ||
    (i < (h - 1) * w && other(i + w))
  );
}

/**
 * Per class: boundary pixels of `from` (class c) with a boundary pixel of `to` of the same class within the disc,
 * and the number of boundary pixels of `from`. Pixels where `ignore` holds are skipped.
 */
function matchBoundaries(
  from: Uint8Array,
  fromEdge: Uint8Array,
  to: Uint8Array,
  toEdge: Uint8Array,
  scored: Uint8Array,
  w: number,
  h: number,
  disc: [number, number][],
  C: number,
): { matched: Float64Array; total: Float64Array } {
  const matched = new Float64Array(C);
  const total = new Float64Array(C);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (!fromEdge[i] || !scored[i]) continue;
      const c = from[i] as number;
      if (c >= C) continue;
      total[c] = (total[c] as number) + 1;
      for (const [dy, dx] of disc) {
        const yy = y + dy;
        const xx = x + dx;
        if (yy < 0 || xx < 0 || yy >= h || xx >= w) continue;
        const j = yy * w + xx;
        if (toEdge[j] && to[j] === c) {
          matched[c] = (matched[c] as number) + 1;
          break;
        }
      }
    }
  }
  return { matched, total };
}

/**
 * 1 for pixels of class c within chessboard distance d of another label or the image edge (the inner band):
 * c-pixels that do not survive erosion by a (2d+1) x (2d+1) square on a zero-padded mask.
 */
function innerBand(labels: Uint8Array, w: number, h: number, c: number, d: number): Uint8Array {
  const k = 2 * d + 1;
  // rowOk[i]: the 2d+1 pixels of the row centred on i are inside the image and all of class c.
  const rowOk = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    let run = 0; // length of the run of c ending at x
    for (let x = 0, i = y * w; x < w; x++, i++) {
      run = labels[i] === c ? run + 1 : 0;
      if (run >= k) rowOk[i - d] = 1;
    }
  }
  // A c-pixel survives the erosion when rowOk holds for the 2d+1 rows centred on it; the band is the rest.
  const band = new Uint8Array(w * h);
  const runs = new Int32Array(w);
  for (let y = 0; y < h; y++) {
    for (let x = 0, i = y * w; x < w; x++, i++) runs[x] = rowOk[i] ? (runs[x] as number) + 1 : 0;
    for (let x = 0, i = y * w; x < w; x++, i++) {
      if (labels[i] === c) band[i] = 1;
      if (y >= k - 1 && (runs[x] as number) >= k) band[i - d * w] = 0; // centre of a full column window survives
    }
  }
  return band;
}

/** The pixel distances used for an image of this size. */
export function boundaryDistances(width: number, height: number, options: BoundaryOptions = {}) {
  const diag = Math.hypot(width, height);
  const tolerance =
    options.toleranceRatio !== undefined
      ? options.toleranceRatio * diag
      : (options.tolerance ?? DEFAULT_BOUNDARY_OPTIONS.tolerance);
  const dilation = Math.max(1, Math.round((options.dilationRatio ?? DEFAULT_BOUNDARY_OPTIONS.dilationRatio) * diag));
  return { tolerance, dilation };
}

export interface BoundaryScores {
  /** Boundary F1 per class, averaged over images where defined. */
  f1: number[];
  /** Mean of `f1` over classes. */
  meanF1: number;
  /** Mean over images of each image's mean boundary F1 over its classes (MATLAB MeanBFScore). */
  imageMeanF1: number;
  /** Boundary IoU per class over the dataset. */
  iou: number[];
  meanIoU: number;
}

/** Accumulates boundary F1 and boundary IoU over images; `compute()` reduces. */
export class BoundaryMetrics {
  readonly ignoreIndex: number;
  private readonly f1Sum: Float64Array;
  private readonly f1Count: Float64Array;
  private readonly inter: Float64Array;
  private readonly union: Float64Array;
  private readonly imageF1: number[] = [];

  constructor(
    readonly numClasses: number,
    private readonly options: BoundaryOptions = {},
  ) {
    this.ignoreIndex = options.ignoreIndex ?? DEFAULT_IGNORE_INDEX;
    if (!Number.isInteger(numClasses) || numClasses < 1 || numClasses > 255) {
      throw new RangeError(`numClasses must be an integer from 1 to 255, got ${numClasses}`);
    }
    for (const k of ["tolerance", "toleranceRatio", "dilationRatio"] as const) {
      const v = options[k];
      if (v !== undefined && !(Number.isFinite(v) && v >= 0))
        throw new RangeError(`${k} must be a number >= 0, got ${v}`);
    }
    this.f1Sum = new Float64Array(numClasses);
    this.f1Count = new Float64Array(numClasses);
    this.inter = new Float64Array(numClasses);
    this.union = new Float64Array(numClasses);
  }

  update(truth: Mask, pred: Mask, name = "<prediction>"): this {
    const { width: w, height: h } = truth;
    if (pred.width !== w || pred.height !== h) {
      throw new SegkitError(`prediction is ${pred.width}x${pred.height}, truth ${w}x${h}`, { file: name });
    }
    const p = pred.data;
    const scored = new Uint8Array(w * h);
    // Ignored truth pixels take the predicted label, so that void and field-of-view edges are no true boundary.
    const t = Uint8Array.from(truth.data);
    for (let i = 0; i < t.length; i++) {
      if (t[i] === this.ignoreIndex) t[i] = p[i] as number;
      else scored[i] = 1;
    }
    const { tolerance, dilation } = boundaryDistances(w, h, this.options);

    if (this.options.only !== "iou") this.updateF1(t, p, scored, w, h, tolerance);
    if (this.options.only !== "f1") this.updateIoU(t, p, scored, w, h, dilation);
    return this;
  }

  /** Boundary F1: match boundary pixels both ways within the tolerance disc. */
  private updateF1(t: Uint8Array, p: Uint8Array, scored: Uint8Array, w: number, h: number, tolerance: number): void {
    const C = this.numClasses;
    const disc = discOffsets(tolerance);
    const scores: number[] = [];
    const tEdge = boundaryMap(t, w, h);
    const pEdge = boundaryMap(p, w, h);
    const precision = matchBoundaries(p, pEdge, t, tEdge, scored, w, h, disc, C);
    const recall = matchBoundaries(t, tEdge, p, pEdge, scored, w, h, disc, C);
    for (let c = 0; c < C; c++) {
      const np = precision.total[c] as number;
      const nt = recall.total[c] as number;
      if (np + nt === 0) continue; // no boundary of c in this image: not scored
      const P = np > 0 ? (precision.matched[c] as number) / np : 0;
      const R = nt > 0 ? (recall.matched[c] as number) / nt : 0;
      scores.push(P + R > 0 ? (2 * P * R) / (P + R) : 0);
      this.addF1(c, scores[scores.length - 1] as number);
    }
    if (scores.length > 0) this.imageF1.push(nanMean(scores));
  }

  private addF1(c: number, f1: number): void {
    this.f1Sum[c] = (this.f1Sum[c] as number) + f1;
    this.f1Count[c] = (this.f1Count[c] as number) + 1;
  }

  /**
   * An image without a usable prediction: boundary F1 0 for each class with a true boundary (in scored pixels),
   * and its true bands added to the boundary-IoU unions.
   */
  addMissed(truth: Mask): this {
    const { width: w, height: h } = truth;
    const t = truth.data;
    const scored = Uint8Array.from(t, (v) => (v === this.ignoreIndex ? 0 : 1));
    if (this.options.only !== "iou") {
      const edge = boundaryMap(t, w, h);
      const has = new Uint8Array(256);
      for (let i = 0; i < t.length; i++) {
        // A true boundary pixel that only borders ignored pixels is not a boundary (as in update()).
        if (edge[i] && scored[i] && bordersScoredOther(t, w, h, i, this.ignoreIndex)) has[t[i] as number] = 1;
      }
      let any = false;
      for (let c = 0; c < this.numClasses; c++) {
        if (has[c]) {
          this.addF1(c, 0);
          any = true;
        }
      }
      if (any) this.imageF1.push(0);
    }
    if (this.options.only !== "f1") {
      const { dilation } = boundaryDistances(w, h, this.options);
      for (let c = 0; c < this.numClasses; c++) {
        const band = innerBand(t, w, h, c, dilation);
        let n = 0;
        for (let i = 0; i < band.length; i++) n += (band[i] as number) & (scored[i] as number);
        this.union[c] = (this.union[c] as number) + n;
      }
    }
    return this;
  }

  /** Boundary IoU: inner bands of truth and prediction for each class present in either. */
  private updateIoU(t: Uint8Array, p: Uint8Array, scored: Uint8Array, w: number, h: number, dilation: number): void {
    const present = new Uint8Array(256);
    for (let i = 0; i < t.length; i++) {
      present[t[i] as number] = 1;
      present[p[i] as number] = 1;
    }
    for (let c = 0; c < this.numClasses; c++) {
      if (!present[c]) continue;
      const gb = innerBand(t, w, h, c, dilation);
      const pb = innerBand(p, w, h, c, dilation);
      let inter = 0;
      let union = 0;
      for (let i = 0; i < gb.length; i++) {
        if (!scored[i]) continue;
        inter += (gb[i] as number) & (pb[i] as number);
        union += (gb[i] as number) | (pb[i] as number);
      }
      this.inter[c] = (this.inter[c] as number) + inter;
      this.union[c] = (this.union[c] as number) + union;
    }
  }

  compute(): BoundaryScores {
    const f1 = Array.from(this.f1Sum, (s, c) =>
      (this.f1Count[c] as number) > 0 ? s / (this.f1Count[c] as number) : Number.NaN,
    );
    const iou = Array.from(this.inter, (s, c) =>
      (this.union[c] as number) > 0 ? s / (this.union[c] as number) : Number.NaN,
    );
    return { f1, meanF1: nanMean(f1), imageMeanF1: nanMean(this.imageF1), iou, meanIoU: nanMean(iou) };
  }
}
