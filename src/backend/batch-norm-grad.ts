/**
 * The gradient of `FusedBatchNorm` (what `tf.layers.batchNormalization` runs, with the batch's `tf.moments` as mean
 * and variance in training), without tfjs-core's full-size `tile` and with one set of per-channel sums shared by the
 * mean, variance, scale and offset gradients. With rstd = 1/sqrt(var + eps), xc = x - mean and sums over every
 * axis but the channel one (mean of rank 1, as layers use it):
 *   dx = dy * (rstd * scale)              dmean = -rstd * scale * sum(dy)      doffset = sum(dy)
 *   dscale = rstd * sum(dy * xc)          dvar = -0.5 * rstd^3 * scale * sum(dy * xc)
 * the stock formulas with the per-channel factors taken out of the sums (equal up to float32 rounding). The sums are
 * `tf.sum` over the leading axes, which segkit's wasm `Sum` runs as one pass (see reduce-grads.ts). Any other mean
 * rank goes to the stock gradient. Registered globally, so it runs (and is tested) on every backend.
 */
import * as tf from "@tensorflow/tfjs";
import { reluGradient } from "./native.js";
import { overrideGradients, reduceGradients } from "./reduce-grads.js";

function fusedBatchNormGradient(original: tf.GradConfig): tf.GradConfig {
  return {
    kernelName: tf.FusedBatchNorm,
    inputsToSave: ["x", "mean", "variance", "scale"],
    gradFunc: (dy, saved, attrs) => {
      const [x, mean, variance, scale] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor | undefined];
      if (mean.rank !== 1 || x.rank < 2) return original.gradFunc(dy, saved, attrs);
      const g = dy as tf.Tensor;
      const { varianceEpsilon } = attrs as unknown as tf.FusedBatchNormAttrs;
      const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
      const scaleValue = scale ?? tf.scalar(1);
      const rstd = tf.rsqrt(tf.add(variance, tf.scalar(varianceEpsilon)));
      // computed once here (the per-input closures below each run in their own tidy); only [C] tensors survive
      const [sumDy, sumDyXc] = tf.tidy(() => [tf.sum(g, axes), tf.sum(tf.mul(g, tf.sub(x, mean)), axes)]) as [
        tf.Tensor,
        tf.Tensor,
      ];
      const minusHalfRCube = () => tf.mul(tf.mul(tf.mul(rstd, rstd), rstd), tf.scalar(-0.5));
      const asMean = (t: tf.Tensor) => tf.reshape(t, mean.shape);
      return {
        x: () => tf.mul(g, tf.mul(rstd, scaleValue)),
        mean: () => asMean(tf.mul(tf.mul(tf.neg(rstd), scaleValue), sumDy)),
        variance: () => asMean(tf.mul(tf.mul(minusHalfRCube(), scaleValue), sumDyXc)),
        scale: () => asMean(tf.mul(rstd, sumDyXc)),
        offset: () => asMean(tf.clone(sumDy)),
      };
    },
  };
}

/**
 * Replaces the gradients of FusedBatchNorm (above), Relu (one native pass where registered: native.ts) and Mean/Sum
 * (a wasm broadcast without `ones(x.shape)`: see reduce-grads.ts) for every backend, once. tfjs's own configs stay
 * available through `stockGradient`.
 */
export function registerGradientOverrides(): void {
  overrideGradients({ [tf.FusedBatchNorm]: fusedBatchNormGradient, [tf.Relu]: reluGradient, ...reduceGradients });
}
