import * as tf from "@tensorflow/tfjs";
import { type MemoryContext, withWasmMemoryGuard } from "../backend/memory.js";
import type { SkippedSample } from "../core/skipped.js";
import type { Dataset } from "../data/dataset.js";
import { type Batch, batches } from "../data/loader.js";
import type { LossFn } from "../losses/losses.js";
import { ConfusionMatrix } from "../metrics/confusion.js";
import { datasetScores } from "../metrics/reduce.js";
import { tensorToLabels } from "../models/labels.js";

/**
 * Scoring a model (its predictions made here, in inference mode); `evaluate.ts` scores prediction files on disk.
 * `fit` validates every epoch with `scoreModel`; the training report predicts its samples with `predictBatch`.
 * Logits `[B, H, W, C]` become class indices by argmax, or for one logit channel by its sign (sigmoid >= 0.5).
 */

/** Scores of a model on a dataset, as `fit` validates: `loss` (NaN without a loss), mIoU, pixel accuracy, IoU per class. */
export interface ModelScores {
  loss: number;
  miou: number;
  pixelAccuracy: number;
  /** Index = class; NaN for a class absent from truth and prediction. */
  iou: number[];
  /** The confusion counts the scores come from, [truth][prediction] (pixels; the ignore index not counted). */
  confusion: number[][];
}

export interface EvaluateModelOptions {
  /** [height, width] the samples are resized to (the model's input size). */
  inputSize: readonly [number, number];
  batchSize?: number;
  /** Also report this loss (the mean over batches weighted by batch size). */
  loss?: LossFn;
  onSkip?: (skip: SkippedSample) => void;
}

/** Batch tensors: images float32 [B, H, W, 3] 0..255, labels int32 [B, H, W]. The caller disposes them. */
export function batchTensors(batch: Batch): [tf.Tensor4D, tf.Tensor3D] {
  const { size, height, width } = batch;
  return [
    tf.tensor4d(Float32Array.from(batch.images), [size, height, width, 3]),
    tf.tensor3d(Int32Array.from(batch.masks), [size, height, width], "int32"),
  ];
}

/**
 * The model's class indices for images `x` (float32 `[B, H, W, 3]` 0..255) as uint8 `[B, H, W]`, and with `y` and
 * `loss` the loss against labels `y` (int32 `[B, H, W]`; NaN otherwise). Inference mode; frees its tensors.
 */
async function labelsAndLoss(
  model: tf.LayersModel,
  x: tf.Tensor4D,
  ctx: MemoryContext,
  y?: tf.Tensor3D,
  loss?: LossFn,
): Promise<[Uint8Array, number]> {
  return withWasmMemoryGuard(ctx, async () => {
    const logits = tf.tidy(() => model.apply(x, { training: false }) as tf.Tensor);
    try {
      let value = Number.NaN;
      if (loss && y) {
        const cost = loss(y, logits);
        value = (await cost.data())[0] as number;
        cost.dispose();
      }
      return [await tensorToLabels(logits, { threshold: 0 }), value];
    } finally {
      logits.dispose();
    }
  });
}

/** The model's class-index predictions for a batch, uint8 [B, H, W] (inference mode; frees its tensors). */
export async function predictBatch(model: tf.LayersModel, batch: Batch): Promise<Uint8Array> {
  const [x, y] = batchTensors(batch);
  try {
    const ctx = { what: "report samples", batchSize: batch.size, inputSize: [batch.height, batch.width] as const };
    return (await labelsAndLoss(model, x, ctx))[0];
  } finally {
    tf.dispose([x, y]);
  }
}

/**
 * Scores `model` on `ds` at the model's input size (masks resized nearest, the ignore index not scored), from
 * one confusion matrix over the dataset (`datasetScores`), with the model in inference mode.
 */
export async function evaluateModel(
  model: tf.LayersModel,
  ds: Dataset,
  options: EvaluateModelOptions,
): Promise<ModelScores> {
  return (await scoreModel(model, ds, options, {})) as ModelScores;
}

/** `evaluateModel`, with progress after each batch (images done, mean loss so far) and abort (null when aborted). */
export async function scoreModel(
  model: tf.LayersModel,
  ds: Dataset,
  options: EvaluateModelOptions,
  run: { signal?: AbortSignal; onProgress?: (done: number, loss: number) => void },
): Promise<ModelScores | null> {
  const cm = new ConfusionMatrix(ds.classNames.length, { ignoreIndex: ds.ignoreIndex });
  const batchSize = options.batchSize ?? 8;
  const ctx = { what: "validation step", batchSize, inputSize: options.inputSize };
  let sum = 0;
  let done = 0;
  const stream = batches(ds, {
    size: options.inputSize,
    batchSize,
    ...(options.onSkip ? { onSkip: options.onSkip } : {}),
  });
  for await (const batch of stream) {
    if (run.signal?.aborted) return null;
    const [x, y] = batchTensors(batch);
    try {
      const [labels, value] = await labelsAndLoss(model, x, ctx, y, options.loss);
      cm.update(batch.masks, labels, undefined, `batch ${batch.ids.join(", ")}`);
      sum += value * batch.size;
      done += batch.size;
    } finally {
      tf.dispose([x, y]);
    }
    run.onProgress?.(done, sum / done);
  }
  const scores = datasetScores(cm);
  return {
    loss: done > 0 ? sum / done : Number.NaN,
    miou: scores.meanIoU,
    pixelAccuracy: scores.pixelAccuracy,
    iou: scores.perClass.iou,
    confusion: cm.toArray(),
  };
}
