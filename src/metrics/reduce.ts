import { type ClassStats, ConfusionMatrix, classStats } from "./confusion.js";

/**
 * Reductions, the second step: scores from the statistics of `confusion.ts`.
 *
 * THE ZERO-DIVISION POLICY (the one place it is defined):
 * a score whose denominator is 0 (IoU and Dice of a class absent from both truth and prediction, precision of a
 * class never predicted, recall of a class not in the truth) takes the value `zeroDivision`:
 * - `"exclude"` (default): NaN in per-class results, and left out of every mean (Keras `MeanIoU` does this for
 *   absent classes; scikit-learn's `zero_division=np.nan`);
 * - a number (0 or 1 usually): that value, counted in the means (scikit-learn's `zero_division=0` / `1`).
 * A mean over no defined value is NaN.
 */
export type ZeroDivision = "exclude" | number;

export interface ReduceOptions {
  zeroDivision?: ZeroDivision;
}

export const DEFAULT_ZERO_DIVISION: ZeroDivision = "exclude";

function ratio(num: number, den: number, zd: ZeroDivision): number {
  if (den !== 0) return num / den;
  return zd === "exclude" ? Number.NaN : zd;
}

/** The mean of the values that are not NaN (NaN when there are none). */
export function nanMean(values: ArrayLike<number>): number {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (!Number.isNaN(v)) {
      sum += v;
      n++;
    }
  }
  return n === 0 ? Number.NaN : sum / n;
}

/** Per-class scores, index = class. `support` is the number of true pixels of the class. */
export interface ClassScores {
  iou: number[];
  dice: number[];
  precision: number[];
  recall: number[];
  support: number[];
}

/** IoU = tp / (tp + fp + fn); Dice = F1 = 2tp / (2tp + fp + fn); precision = tp / (tp + fp); recall = tp / (tp + fn). */
export function classScores(stats: ClassStats, options: ReduceOptions = {}): ClassScores {
  const zd = options.zeroDivision ?? DEFAULT_ZERO_DIVISION;
  const C = stats.tp.length;
  const out: ClassScores = { iou: [], dice: [], precision: [], recall: [], support: [] };
  for (let c = 0; c < C; c++) {
    const tp = stats.tp[c] as number;
    const fp = stats.fp[c] as number;
    const fn = stats.fn[c] as number;
    out.iou.push(ratio(tp, tp + fp + fn, zd));
    out.dice.push(ratio(2 * tp, 2 * tp + fp + fn, zd));
    out.precision.push(ratio(tp, tp + fp, zd));
    out.recall.push(ratio(tp, tp + fn, zd));
    out.support.push(tp + fn);
  }
  return out;
}

/** Scores of a whole dataset from its accumulated confusion matrix ("dataset" reduction, micro over images). */
export interface DatasetScores {
  /** Correct pixels / scored pixels. */
  pixelAccuracy: number;
  /** Mean over classes of the dataset-wide per-class IoU (Keras `MeanIoU`, torchmetrics `MulticlassJaccardIndex(average="macro")`). */
  meanIoU: number;
  meanDice: number;
  meanPrecision: number;
  meanRecall: number;
  /** Sum over classes of (true pixel share x IoU) (Long et al. 2015, FCN). */
  frequencyWeightedIoU: number;
  perClass: ClassScores;
  /** Pixels scored (not ignored). */
  pixels: number;
}

export function datasetScores(cm: ConfusionMatrix, options: ReduceOptions = {}): DatasetScores {
  const stats = classStats(cm);
  const perClass = classScores(stats, options);
  let correct = 0;
  let total = 0;
  for (let c = 0; c < cm.numClasses; c++) {
    correct += stats.tp[c] as number;
    total += (stats.tp[c] as number) + (stats.fn[c] as number);
  }
  let fw = 0;
  perClass.iou.forEach((iou, c) => {
    const share = total > 0 ? (perClass.support[c] as number) / total : 0;
    if (share > 0) fw += share * iou;
  });
  return {
    pixelAccuracy: total > 0 ? correct / total : Number.NaN,
    meanIoU: nanMean(perClass.iou),
    meanDice: nanMean(perClass.dice),
    meanPrecision: nanMean(perClass.precision),
    meanRecall: nanMean(perClass.recall),
    frequencyWeightedIoU: total > 0 ? fw : Number.NaN,
    perClass,
    pixels: total,
  };
}

/**
 * Per-image reductions: each image scored on its own, then averaged over images.
 * - `macro`: per image, the mean over its classes (absent ones per the zero-division policy), then the mean over
 *   images (torchmetrics `segmentation.MeanIoU` from the versions that exclude absent classes; up to 1.6 it counted
 *   them as 0, which is `zeroDivision: 0` here, and averaged per batch);
 * - `micro`: per image, tp/fp/fn summed over classes first, then the score, then the mean over images
 *   (segmentation_models_pytorch `reduction="micro-imagewise"`).
 */
export interface PerImageScores {
  macro: { iou: number; dice: number; precision: number; recall: number; pixelAccuracy: number };
  micro: { iou: number; dice: number; precision: number; recall: number };
  /** The number of images with scored pixels (images wholly ignored are left out). */
  images: number;
}

export function perImageScores(images: readonly ClassStats[], options: ReduceOptions = {}): PerImageScores {
  const zd = options.zeroDivision ?? DEFAULT_ZERO_DIVISION;
  const macro = { iou: [] as number[], dice: [] as number[], precision: [] as number[], recall: [] as number[] };
  const micro = { iou: [] as number[], dice: [] as number[], precision: [] as number[], recall: [] as number[] };
  const acc: number[] = [];
  for (const s of images) {
    if (s.tp.every((tp, c) => tp + (s.fn[c] as number) === 0)) continue; // nothing scored in this image
    const cs = classScores(s, options);
    macro.iou.push(nanMean(cs.iou));
    macro.dice.push(nanMean(cs.dice));
    macro.precision.push(nanMean(cs.precision));
    macro.recall.push(nanMean(cs.recall));
    const sum = (a: Float64Array) => a.reduce((x, y) => x + y, 0);
    const tp = sum(s.tp);
    const fp = sum(s.fp);
    const fn = sum(s.fn);
    micro.iou.push(ratio(tp, tp + fp + fn, zd));
    micro.dice.push(ratio(2 * tp, 2 * tp + fp + fn, zd));
    micro.precision.push(ratio(tp, tp + fp, zd));
    micro.recall.push(ratio(tp, tp + fn, zd));
    acc.push(ratio(tp, tp + fn, Number.NaN));
  }
  return {
    macro: {
      iou: nanMean(macro.iou),
      dice: nanMean(macro.dice),
      precision: nanMean(macro.precision),
      recall: nanMean(macro.recall),
      pixelAccuracy: nanMean(acc),
    },
    micro: {
      iou: nanMean(micro.iou),
      dice: nanMean(micro.dice),
      precision: nanMean(micro.precision),
      recall: nanMean(micro.recall),
    },
    images: acc.length,
  };
}

/**
 * Accumulates truth/prediction pairs image by image: the dataset-wide confusion matrix, and (with `perImage`)
 * each image's class statistics, so that both reductions come from one pass.
 */
export class SegmentationMetrics {
  readonly confusion: ConfusionMatrix;
  private readonly image: ConfusionMatrix;
  private readonly images: ClassStats[] = [];

  constructor(
    numClasses: number,
    private readonly options: { ignoreIndex?: number; perImage?: boolean } = {},
  ) {
    this.confusion = new ConfusionMatrix(numClasses, options);
    this.image = new ConfusionMatrix(numClasses, options);
  }

  /** One image: class-index masks of equal length; `valid` 0 = not scored. */
  update(truth: Uint8Array, pred: Uint8Array, valid?: Uint8Array, name?: string): this {
    if (this.options.perImage) {
      this.image.reset().update(truth, pred, valid, name);
      this.confusion.merge(this.image);
      this.images.push(classStats(this.image));
    } else {
      this.confusion.update(truth, pred, valid, name);
    }
    return this;
  }

  /** One image without a usable prediction: its scored pixels are missed (wrong), in both reductions. */
  addMissed(truth: Uint8Array, valid?: Uint8Array, name?: string): this {
    if (this.options.perImage) {
      this.image.reset().addMissed(truth, valid, name);
      this.confusion.merge(this.image);
      this.images.push(classStats(this.image));
    } else {
      this.confusion.addMissed(truth, valid, name);
    }
    return this;
  }

  /** Each image's class statistics, in update order (with `perImage`; empty otherwise). */
  imageStats(): readonly ClassStats[] {
    return this.images;
  }

  compute(options: ReduceOptions = {}): DatasetScores & { perImage?: PerImageScores } {
    const scores = datasetScores(this.confusion, options);
    return this.options.perImage ? { ...scores, perImage: perImageScores(this.images, options) } : scores;
  }
}
