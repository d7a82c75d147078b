/**
 * One epoch's record, as `fit` reports it, appends it to `metrics.jsonl` (one JSON object per line) and keeps it in
 * the checkpoints. Keys name the split and the metric (`val/miou`), as TensorBoard and Lightning logs do. Validation
 * scores are over the whole validation set at the model's input size (masks resized nearest, the dataset's ignore
 * index not scored), from one confusion matrix (`datasetScores`): `val/miou` is the mean over classes of the
 * dataset-wide IoU (Keras `MeanIoU`); a class absent from truth and prediction is left out of it (NaN in
 * `val/iou`). In JSON, NaN is written as null.
 */
export interface EpochMetrics {
  /** From 1. */
  epoch: number;
  /** The learning rate used in this epoch. */
  lr: number;
  /** Mean of the per-batch training losses weighted by batch size (Keras's running mean at the epoch's end). */
  "train/loss": number;
  /** The same mean over the validation batches (model in inference mode). */
  "val/loss": number;
  "val/miou": number;
  "val/pixelAccuracy": number;
  /** IoU per class, index = class (NaN: absent from truth and prediction). */
  "val/iou": number[];
  /** Training images per second in this epoch (decoding, augmentation and steps). */
  "train/imagesPerSecond": number;
  /** Wall time of the epoch (training, validation), seconds. */
  seconds: number;
}

/** `m` as one JSON line (NaN as null), without the newline. */
export function metricsLine(m: EpochMetrics): string {
  return JSON.stringify(m);
}

/** An `EpochMetrics` read back from JSON: nulls (written for NaN) become NaN again. */
export function reviveMetrics(raw: Record<string, unknown>): EpochMetrics {
  const num = (v: unknown) => (typeof v === "number" ? v : Number.NaN);
  return {
    epoch: num(raw.epoch),
    lr: num(raw.lr),
    "train/loss": num(raw["train/loss"]),
    "val/loss": num(raw["val/loss"]),
    "val/miou": num(raw["val/miou"]),
    "val/pixelAccuracy": num(raw["val/pixelAccuracy"]),
    "val/iou": Array.isArray(raw["val/iou"]) ? raw["val/iou"].map(num) : [],
    "train/imagesPerSecond": num(raw["train/imagesPerSecond"]),
    seconds: num(raw.seconds),
  };
}

/** One plain line for logs: `epoch 3/20  lr 1.00e-3  train/loss 0.5123  val/loss 0.4410  val/miou 0.6012 ...`. */
export function formatEpochLine(m: EpochMetrics, epochs: number, classNames?: readonly string[]): string {
  const f = (x: number) => (Number.isNaN(x) ? "n/a" : x.toFixed(4));
  const perClass = m["val/iou"].map((x, c) => `${classNames?.[c] ?? c} ${f(x)}`).join(", ");
  return (
    `epoch ${m.epoch}/${epochs}  lr ${m.lr.toExponential(2)}  train/loss ${f(m["train/loss"])}  ` +
    `val/loss ${f(m["val/loss"])}  val/miou ${f(m["val/miou"])}  val/pixelAccuracy ${f(m["val/pixelAccuracy"])}  ` +
    `(IoU ${perClass})  ${m["train/imagesPerSecond"].toFixed(1)} img/s  ${m.seconds.toFixed(1)} s`
  );
}
