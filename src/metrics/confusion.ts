import { SegkitError } from "../core/errors.js";
import { DEFAULT_IGNORE_INDEX } from "../core/image.js";

/**
 * Statistics, the first of the two steps (statistics, then reductions: see `reduce.ts`).
 *
 * A confusion matrix over C classes: `counts[t * C + p]` is the number of pixels whose true class is t and whose
 * predicted class is p (rows truth, columns prediction, as scikit-learn's `confusion_matrix`). Counts are float64,
 * exact integers up to 2^53 (about 9e15 pixels). Pixels whose truth is the ignore index, or where a valid-region
 * mask is 0, are not counted.
 *
 * Masks are class-index `Uint8Array`s (H x W, row-major, as `Mask.data`); truth and prediction of one image have
 * the same length.
 *
 * `missed[t]` counts pixels of true class t that have no prediction at all (a missing or unreadable prediction
 * file): they are false negatives of t and wrong for pixel accuracy, but nobody's false positive.
 */
export interface ConfusionOptions {
  ignoreIndex?: number;
}

export class ConfusionMatrix {
  readonly numClasses: number;
  readonly ignoreIndex: number;
  readonly counts: Float64Array;
  readonly missed: Float64Array;
  /** Scratch counts for one update: uint32 is exact for any single image (< 4e9 pixels) and fast to increment. */
  private readonly scratch: Uint32Array;

  constructor(numClasses: number, options: ConfusionOptions = {}) {
    if (!Number.isInteger(numClasses) || numClasses < 1 || numClasses > 255) {
      throw new RangeError(`numClasses must be an integer from 1 to 255, got ${numClasses}`);
    }
    this.numClasses = numClasses;
    this.ignoreIndex = options.ignoreIndex ?? DEFAULT_IGNORE_INDEX;
    if (this.ignoreIndex < numClasses) {
      throw new RangeError(
        `ignore index ${this.ignoreIndex} is one of the ${numClasses} classes; choose one >= ${numClasses}`,
      );
    }
    this.counts = new Float64Array(numClasses * numClasses);
    this.missed = new Float64Array(numClasses);
    this.scratch = new Uint32Array(256 * 256);
  }

  /**
   * Adds one image (or a batch laid out contiguously). `valid`, when given, has one byte per pixel (0 = not scored).
   * A truth or prediction value that is neither a class nor (truth only) the ignore index is an error naming `name`.
   */
  update(truth: Uint8Array, pred: Uint8Array, valid?: Uint8Array, name = "<prediction>"): this {
    if (truth.length !== pred.length || (valid && valid.length !== truth.length)) {
      throw new SegkitError(
        `truth has ${truth.length} pixels, prediction ${pred.length}${valid ? `, valid region ${valid.length}` : ""}`,
        { file: name },
      );
    }
    const s = this.scratch;
    s.fill(0);
    const n = truth.length;
    if (valid) {
      for (let i = 0; i < n; i++) {
        if (valid[i] === 0) continue;
        const k = ((truth[i] as number) << 8) | (pred[i] as number);
        s[k] = (s[k] as number) + 1;
      }
    } else {
      for (let i = 0; i < n; i++) {
        const k = ((truth[i] as number) << 8) | (pred[i] as number);
        s[k] = (s[k] as number) + 1;
      }
    }
    this.fold(s, name);
    return this;
  }

  /** Counts the scored pixels of an image whose prediction is missing as missed (see the class comment). */
  addMissed(truth: Uint8Array, valid?: Uint8Array, name = "<truth>"): this {
    const hist = new Float64Array(256);
    for (let i = 0; i < truth.length; i++) {
      if (valid && valid[i] === 0) continue;
      const t = truth[i] as number;
      hist[t] = (hist[t] as number) + 1;
    }
    for (let t = 0; t < 256; t++) {
      if (hist[t] === 0 || t === this.ignoreIndex) continue;
      if (t >= this.numClasses) {
        throw new SegkitError(`truth value ${t} outside the classes 0..${this.numClasses - 1}`, { file: name });
      }
      this.missed[t] = (this.missed[t] as number) + (hist[t] as number);
    }
    return this;
  }

  /** Moves the 256 x 256 value-pair counts into the C x C matrix, after checking every value seen (all or nothing). */
  private fold(s: Uint32Array, name: string): void {
    const C = this.numClasses;
    const badTruth = new Set<number>();
    const badPred = new Set<number>();
    for (let t = 0; t < 256; t++) {
      if (t === this.ignoreIndex) continue;
      for (let p = 0; p < 256; p++) {
        if (s[(t << 8) | p] === 0) continue;
        if (t >= C) badTruth.add(t);
        else if (p >= C) badPred.add(p);
      }
    }
    if (badTruth.size > 0 || badPred.size > 0) {
      const list = (xs: Set<number>) => [...xs].sort((a, b) => a - b).join(", ");
      const parts = [
        badTruth.size ? `truth values ${list(badTruth)}` : "",
        badPred.size ? `predicted values ${list(badPred)}` : "",
      ].filter(Boolean);
      throw new SegkitError(
        `${parts.join(" and ")} outside the classes 0..${C - 1} (ignore index ${this.ignoreIndex})`,
        {
          file: name,
        },
      );
    }
    for (let t = 0; t < C; t++) {
      for (let p = 0; p < C; p++)
        this.counts[t * C + p] = (this.counts[t * C + p] as number) + (s[(t << 8) | p] as number);
    }
  }

  /** Adds another matrix's counts (for example from another worker). */
  merge(other: ConfusionMatrix): this {
    if (other.numClasses !== this.numClasses) {
      throw new RangeError(`cannot merge ${other.numClasses}-class counts into ${this.numClasses}-class counts`);
    }
    for (let i = 0; i < this.counts.length; i++) {
      this.counts[i] = (this.counts[i] as number) + (other.counts[i] as number);
    }
    for (let c = 0; c < this.numClasses; c++) this.missed[c] = (this.missed[c] as number) + (other.missed[c] as number);
    return this;
  }

  reset(): this {
    this.counts.fill(0);
    this.missed.fill(0);
    return this;
  }

  /** A matrix holding `counts[t][p]` (as `toArray` gives them, e.g. read back from JSON). */
  static fromArray(counts: readonly (readonly number[])[], options: ConfusionOptions = {}): ConfusionMatrix {
    const cm = new ConfusionMatrix(counts.length, options);
    for (const [t, row] of counts.entries()) {
      if (row.length !== counts.length || !row.every((v) => Number.isFinite(v) && v >= 0)) {
        throw new RangeError(
          `confusion row ${t} must hold ${counts.length} non-negative counts, got [${row.join(", ")}]`,
        );
      }
      cm.counts.set(row, t * counts.length);
    }
    return cm;
  }

  /** counts[t][p] as nested arrays (for JSON and tests). */
  toArray(): number[][] {
    const C = this.numClasses;
    return Array.from({ length: C }, (_, t) => Array.from(this.counts.subarray(t * C, (t + 1) * C)));
  }
}

/** Per-class pixel statistics: true/false positives, false negatives, true negatives (each length C). */
export interface ClassStats {
  tp: Float64Array;
  fp: Float64Array;
  fn: Float64Array;
  tn: Float64Array;
}

/** tp/fp/fn/tn per class from a confusion matrix (one-vs-rest). */
export function classStats(cm: ConfusionMatrix): ClassStats {
  const C = cm.numClasses;
  const m = cm.counts;
  let total = 0;
  for (let i = 0; i < m.length; i++) total += m[i] as number;
  for (let c = 0; c < C; c++) total += cm.missed[c] as number;
  const tp = new Float64Array(C);
  const fp = new Float64Array(C);
  const fn = new Float64Array(C);
  const tn = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let row = 0;
    let col = 0;
    for (let k = 0; k < C; k++) {
      row += m[c * C + k] as number;
      col += m[k * C + c] as number;
    }
    const d = m[c * C + c] as number;
    row += cm.missed[c] as number;
    tp[c] = d;
    fn[c] = row - d;
    fp[c] = col - d;
    tn[c] = total - row - col + d;
  }
  return { tp, fp, fn, tn };
}
