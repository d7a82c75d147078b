import { type ClassStats, type ConfusionMatrix, classStats } from "./confusion.js";
import { classScores, nanMean, type ReduceOptions } from "./reduce.js";

/**
 * Binary mode: one foreground class against the rest, with the same reductions.
 * Predictions may be class indices (`labelsToBinary`) or foreground probabilities (`probabilitiesToBinary`,
 * threshold 0.5 by default). Scores are those of the foreground (as segmentation_models_pytorch's binary mode).
 */
export const DEFAULT_BINARY_THRESHOLD = 0.5;

/** 1 where the label is the foreground class, 0 elsewhere; the ignore index is kept. */
export function labelsToBinary(labels: Uint8Array, foreground: number, ignoreIndex = 255): Uint8Array {
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i] as number;
    out[i] = v === ignoreIndex ? ignoreIndex : v === foreground ? 1 : 0;
  }
  return out;
}

/** 1 where the foreground probability is >= threshold (pass logits with threshold 0). */
export function probabilitiesToBinary(probs: ArrayLike<number>, threshold = DEFAULT_BINARY_THRESHOLD): Uint8Array {
  const out = new Uint8Array(probs.length);
  for (let i = 0; i < probs.length; i++) out[i] = (probs[i] as number) >= threshold ? 1 : 0;
  return out;
}

export interface BinaryScores {
  iou: number;
  dice: number;
  precision: number;
  recall: number;
  pixelAccuracy: number;
}

/** Foreground scores from a 2-class confusion matrix (class 1 = foreground), over the whole dataset. */
export function binaryScores(cm: ConfusionMatrix, options: ReduceOptions = {}): BinaryScores {
  if (cm.numClasses !== 2) throw new RangeError(`binary scores need a 2-class matrix, got ${cm.numClasses} classes`);
  return binaryFromStats(classStats(cm), options);
}

/**
 * The per-image reduction in binary mode: each image's foreground scores (as `binaryScores`), averaged over the
 * images where each is defined (per the zero-division policy). `images` from `SegmentationMetrics.imageStats()`.
 */
export function binaryPerImageScores(images: readonly ClassStats[], options: ReduceOptions = {}): BinaryScores {
  const each = images.map((s) => binaryFromStats(s, options)).filter((b) => !Number.isNaN(b.pixelAccuracy));
  const mean = (k: keyof BinaryScores) => nanMean(each.map((b) => b[k]));
  return {
    iou: mean("iou"),
    dice: mean("dice"),
    precision: mean("precision"),
    recall: mean("recall"),
    pixelAccuracy: mean("pixelAccuracy"),
  };
}

function binaryFromStats(stats: ClassStats, options: ReduceOptions): BinaryScores {
  const s = classScores(stats, options);
  const correct = (stats.tp[0] as number) + (stats.tp[1] as number);
  const total = correct + (stats.fn[0] as number) + (stats.fn[1] as number);
  return {
    iou: s.iou[1] as number,
    dice: s.dice[1] as number,
    precision: s.precision[1] as number,
    recall: s.recall[1] as number,
    pixelAccuracy: total > 0 ? correct / total : Number.NaN,
  };
}
