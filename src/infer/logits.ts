import { createMask, type Mask } from "../core/image.js";

/**
 * Logits to masks and probabilities, pure functions on typed arrays (no tfjs, so both engines share them).
 * Logits are HWC: `logits[(y * width + x) * C + c]`, as one image of the model's NHWC output.
 * Probabilities are returned as class planes, CHW: `probs[(k * height + y) * width + x]`, one plane per class
 * (K = C; a one-channel sigmoid head gives K = 2 planes, 1 - p and p, so that plane k is always class k).
 */

/**
 * Class indices of HWC logits: argmax over C (the first on ties, as `tf.argMax`), or for C = 1 (sigmoid head)
 * class 1 where the logit is >= 0, i.e. sigmoid >= 0.5.
 */
export function logitsToMask(logits: Float32Array, width: number, height: number, channels: number): Mask {
  const n = width * height;
  const out = new Uint8Array(n);
  if (channels === 1) {
    for (let i = 0; i < n; i++) out[i] = (logits[i] as number) >= 0 ? 1 : 0;
    return createMask(width, height, out);
  }
  for (let i = 0; i < n; i++) {
    let best = 0;
    let max = logits[i * channels] as number;
    for (let c = 1; c < channels; c++) {
      const v = logits[i * channels + c] as number;
      if (v > max) {
        max = v;
        best = c;
      }
    }
    out[i] = best;
  }
  return createMask(width, height, out);
}

/** Class probability planes (CHW, see the module doc) of HWC logits: softmax over C, or sigmoid for C = 1. */
export function logitsToProbabilities(
  logits: Float32Array,
  width: number,
  height: number,
  channels: number,
): Float32Array {
  const n = width * height;
  if (channels === 1) {
    const out = new Float32Array(2 * n);
    for (let i = 0; i < n; i++) {
      const p = 1 / (1 + Math.exp(-(logits[i] as number)));
      out[i] = 1 - p;
      out[n + i] = p;
    }
    return out;
  }
  const out = new Float32Array(channels * n);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let c = 0; c < channels; c++) max = Math.max(max, logits[i * channels + c] as number);
    let sum = 0;
    for (let c = 0; c < channels; c++) {
      const e = Math.exp((logits[i * channels + c] as number) - max);
      out[c * n + i] = e;
      sum += e;
    }
    for (let c = 0; c < channels; c++) out[c * n + i] = (out[c * n + i] as number) / sum;
  }
  return out;
}
