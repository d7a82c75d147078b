import * as tf from "@tensorflow/tfjs";
import { SegkitError } from "../core/errors.js";
import {
  type BinaryCrossEntropyOptions,
  type CrossEntropyOptions,
  type DiceOptions,
  type FocalOptions,
  validateBinaryCrossEntropyOptions,
  validateCrossEntropyOptions,
  validateDiceOptions,
  validateFocalOptions,
} from "./options.js";

/**
 * Segmentation losses: pure functions `(yTrue, yPred, options) -> scalar`.
 *
 * Inputs (every loss):
 * - `yTrue`: int32 `[B, H, W]` class indices in 0..C-1 (binary: 0 or 1), or `ignoreIndex` (255 by default) for
 *   pixels that count for nothing: no loss, no gradient, not in any denominator. Other values are not checked
 *   (that would read the tensor back every step): a value outside 0..C-1 is a pixel of no class, which
 *   cross-entropy drops (its class weight is 0) and Dice and Focal count as background for every class.
 * - `yPred`: float32 `[B, H, W, C]` LOGITS (never probabilities); C = 1 is binary (sigmoid), C >= 2 multiclass
 *   (softmax). Softmax and sigmoid are applied inside, in log space (log-softmax, softplus).
 * Output: a float32 scalar. Each call runs in `tf.tidy`, so only the returned scalar survives.
 *
 * THE SEMANTICS (the one place they are defined; scripts/losses_reference.py checks them against PyTorch):
 * - Cross-entropy, multiclass (PyTorch `F.cross_entropy(weight=w, ignore_index, label_smoothing=e)`, mean):
 *   with logp = log_softmax(yPred), over the non-ignored pixels i with class y_i,
 *     loss = ( (1 - e) * sum_i w[y_i] * -logp_i[y_i]  +  e / C * sum_i sum_c w[c] * -logp_i[c] ) / sum_i w[y_i].
 *   Without weights (w = 1) it is the mean over the non-ignored pixels. With weights the smoothing term weighs
 *   class c by w[c] but still divides by sum_i w[y_i]: that is what PyTorch 1.13 computes (asserted in the
 *   script), not a mean of a smoothed-target cross-entropy weighted by the pixel's class.
 * - Binary cross-entropy (`F.binary_cross_entropy_with_logits`, mean over the non-ignored pixels), C = 1:
 *   per pixel t * softplus(-x) + (1 - t) * softplus(x).
 * - Dice (segmentation_models_pytorch `DiceLoss(mode, from_logits=True, smooth, eps, log_loss=False)` with
 *   ignore_index): probabilities p (softmax, or sigmoid for C = 1) and one-hot targets t (the 0/1 target for
 *   C = 1), both zeroed at ignored pixels; per class c, summed over the whole batch and all pixels,
 *     dice_c = (2 * sum(p_c * t_c) + smooth) / max(sum(p_c + t_c) + smooth, eps),  loss_c = 1 - dice_c;
 *   a class with no true pixel in the batch gets loss_c = 0 (so no gradient: its false positives cost nothing)
 *   and STILL counts in the mean over all C classes: loss = sum_c w_c * loss_c / sum_c w_c (w = 1: smp's
 *   plain mean; class weights are segkit's extension). Binary with no positive pixel: 0.
 * - Focal (smp `FocalLoss(mode, alpha, gamma, normalized=False, reduction="mean")` with ignore_index): per pixel
 *   and class, with the one-vs-rest target t and logit x, bce = t * softplus(-x) + (1 - t) * softplus(x),
 *     focal = (1 - exp(-bce))^gamma * bce * (alpha * t + (1 - alpha) * (1 - t))   (last factor only if alpha set);
 *   the mean over the non-ignored pixels, then SUMMED over the classes (smp's multiclass focal is C binary
 *   sigmoid focal losses, not a softmax focal loss; it grows with C). Not normalised.
 * - Every mean over no pixel (all ignored, or zero total class weight) is 0, not PyTorch's NaN: a batch that is
 *   all void should not poison training.
 */

/** A loss as the training loop calls it. */
export type LossFn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar;

/** Checks shapes and dtypes; returns C. `channels`: what the loss accepts. */
function checkInputs(loss: string, yTrue: tf.Tensor, yPred: tf.Tensor, channels: "binary" | "multiclass" | "any") {
  const [B, H, W, C] = yPred.shape;
  if (yPred.rank !== 4 || yPred.dtype !== "float32" || C === undefined) {
    throw new SegkitError(`${loss}: yPred must be float32 logits [B, H, W, C], got ${yPred.dtype} [${yPred.shape}]`);
  }
  if (yTrue.dtype !== "int32" || yTrue.rank !== 3 || `${yTrue.shape}` !== `${[B, H, W]}`) {
    throw new SegkitError(
      `${loss}: yTrue must be int32 class indices [${[B, H, W]}] to match yPred [${yPred.shape}], ` +
        `got ${yTrue.dtype} [${yTrue.shape}]`,
    );
  }
  if (channels === "binary" && C !== 1) {
    throw new SegkitError(`${loss}: needs one logit per pixel (C = 1), got C = ${C}`, { hint: "use cross-entropy" });
  }
  if (channels === "multiclass" && C < 2) {
    throw new SegkitError(`${loss}: needs C >= 2 logits per pixel, got C = 1`, { hint: "use binary cross-entropy" });
  }
  return C;
}

function checkClassWeights(loss: string, weights: readonly number[] | null, C: number): void {
  if (weights && weights.length !== C) {
    throw new SegkitError(`${loss}: classWeights has ${weights.length} values for ${C} classes`);
  }
}

/** Class weights as float32 `[C]`, ones when there are none. */
const weightsTensor = (weights: readonly number[] | null, C: number): tf.Tensor1D =>
  weights ? tf.tensor1d([...weights], "float32") : tf.ones([C]);

/**
 * Targets as float32 `[B, H, W, C]` (one-hot for C >= 2, the 0/1 value for C = 1) and the float32 `[B, H, W, 1]`
 * mask of scored pixels; both are 0 at ignored pixels.
 */
function targets(yTrue: tf.Tensor, C: number, ignoreIndex: number): { t: tf.Tensor4D; valid: tf.Tensor4D } {
  const keep = tf.notEqual(yTrue, ignoreIndex);
  const valid = keep.toFloat().expandDims(-1) as tf.Tensor4D;
  const labels = tf.where(keep, yTrue, tf.zerosLike(yTrue));
  const t = C === 1 ? labels.toFloat().expandDims(-1) : tf.oneHot(labels as tf.Tensor3D, C).toFloat();
  return { t: t.mul(valid) as tf.Tensor4D, valid };
}

/** num / den, and 0 where den is 0 (num is then 0 too); the gradient stays finite. */
function divOrZero(num: tf.Tensor, den: tf.Tensor): tf.Scalar {
  return num.div(den.add(tf.equal(den, 0).toFloat())) as tf.Scalar;
}

/** Binary cross-entropy of logits x against targets t in [0, 1], elementwise, in the stable softplus form. */
function bceWithLogits(x: tf.Tensor, t: tf.Tensor): tf.Tensor {
  return t.mul(tf.softplus(x.neg())).add(tf.scalar(1).sub(t).mul(tf.softplus(x)));
}

/** Multiclass cross-entropy: `yTrue` int32 `[B, H, W]`, `yPred` float32 logits `[B, H, W, C]` (C >= 2). */
export function crossEntropy(yTrue: tf.Tensor, yPred: tf.Tensor, options?: CrossEntropyOptions): tf.Scalar {
  const o = validateCrossEntropyOptions(options);
  const C = checkInputs("cross-entropy", yTrue, yPred, "multiclass");
  checkClassWeights("cross-entropy", o.classWeights, C);
  return tf.tidy(() => {
    const w = weightsTensor(o.classWeights, C);
    const { t, valid } = targets(yTrue, C, o.ignoreIndex);
    const e = o.labelSmoothing;
    // Smoothed targets (1 - e) * onehot + e / C at scored pixels; the denominator keeps the unsmoothed w[y].
    const q = e > 0 ? t.mul(1 - e).add(valid.mul(e / C)) : t;
    const total = tf.sum(q.mul(w).mul(tf.logSoftmax(yPred))).neg();
    return divOrZero(total, tf.sum(t.mul(w)));
  });
}

/** Binary cross-entropy: `yTrue` int32 `[B, H, W]` of 0/1, `yPred` float32 logits `[B, H, W, 1]`. */
export function binaryCrossEntropy(yTrue: tf.Tensor, yPred: tf.Tensor, options?: BinaryCrossEntropyOptions): tf.Scalar {
  const o = validateBinaryCrossEntropyOptions(options);
  checkInputs("binary cross-entropy", yTrue, yPred, "binary");
  return tf.tidy(() => {
    const { t, valid } = targets(yTrue, 1, o.ignoreIndex);
    return divOrZero(tf.sum(bceWithLogits(yPred, t).mul(valid)), tf.sum(valid));
  });
}

/** Soft Dice loss: `yTrue` int32 `[B, H, W]`, `yPred` float32 logits `[B, H, W, C]` (C = 1 binary). */
export function diceLoss(yTrue: tf.Tensor, yPred: tf.Tensor, options?: DiceOptions): tf.Scalar {
  const o = validateDiceOptions(options);
  const C = checkInputs("dice", yTrue, yPred, "any");
  checkClassWeights("dice", o.classWeights, C);
  return tf.tidy(() => {
    const w = weightsTensor(o.classWeights, C);
    const { t, valid } = targets(yTrue, C, o.ignoreIndex);
    const p = (C === 1 ? tf.sigmoid(yPred) : tf.softmax(yPred)).mul(valid);
    const axes = [0, 1, 2]; // per class, over the batch and all pixels
    const intersection = tf.sum(p.mul(t), axes);
    const cardinality = tf.sum(p.add(t), axes);
    const dice = intersection
      .mul(2)
      .add(o.smooth)
      .div(tf.maximum(cardinality.add(o.smooth), o.eps));
    const present = tf.greater(tf.sum(t, axes), 0).toFloat();
    const perClass = tf.scalar(1).sub(dice).mul(present);
    return tf.sum(perClass.mul(w)).div(tf.sum(w)) as tf.Scalar;
  });
}

/** Focal loss: `yTrue` int32 `[B, H, W]`, `yPred` float32 logits `[B, H, W, C]` (C = 1 binary). */
export function focalLoss(yTrue: tf.Tensor, yPred: tf.Tensor, options?: FocalOptions): tf.Scalar {
  const o = validateFocalOptions(options);
  const C = checkInputs("focal", yTrue, yPred, "any");
  return tf.tidy(() => {
    const { t, valid } = targets(yTrue, C, o.ignoreIndex);
    const bce = bceWithLogits(yPred, t);
    // (1 - pt)^gamma with pt = exp(-bce), as -expm1(-bce) for precision when pt is near 1.
    let loss = o.gamma === 0 ? bce : tf.pow(tf.expm1(bce.neg()).neg(), o.gamma).mul(bce);
    if (o.alpha !== null)
      loss = loss.mul(
        t.mul(o.alpha).add(
          tf
            .scalar(1)
            .sub(t)
            .mul(1 - o.alpha),
        ),
      );
    // Mean over scored pixels for each class, summed over classes.
    return divOrZero(tf.sum(loss.mul(valid)), tf.sum(valid));
  });
}
