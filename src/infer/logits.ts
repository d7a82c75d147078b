import { createMask, type Mask } from "../core/image.js";
import { bilinearTaps } from "../masks/resize.js";

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

/**
 * `logitsToMask(resizeBilinear(logits, width, height, channels, outWidth, outHeight), outWidth, outHeight, channels)`
 * without the resized logits, in a fraction of the time and memory, with the same classes, ties included:
 * - an output pixel whose four source pixels share their class, each by a clear margin, has that class (a convex
 *   combination of logit vectors keeps a strict argmax; the margin covers the rounding);
 * - any other pixel is interpolated as `resizeBilinear` does it (along x in float64, then y, rounded to float32).
 */
export function resizeLogitsToMask(
  logits: Float32Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): Mask {
  if (logits.length !== width * height * channels) {
    throw new RangeError(`resizeLogitsToMask: ${logits.length} values, expected ${width} x ${height} x ${channels}`);
  }
  // 1. each source pixel's class when its margin over every other class is clear, else 255
  const clear = new Uint8Array(width * height);
  for (let p = 0; p < width * height; p++) {
    const o = p * channels;
    if (channels === 1) {
      const v = logits[o] as number;
      clear[p] = Math.abs(v) > MARGIN * (1 + Math.abs(v)) ? (v >= 0 ? 1 : 0) : 255;
      continue;
    }
    let best = 0;
    let max = logits[o] as number;
    let second = -Infinity;
    for (let k = 1; k < channels; k++) {
      const v = logits[o + k] as number;
      if (v > max) {
        second = max;
        max = v;
        best = k;
      } else if (v > second) second = v;
    }
    clear[p] = max - second > MARGIN * (1 + Math.abs(max) + Math.abs(second)) ? best : 255;
  }
  // 2. per output pixel: the shared clear class, or the interpolated logits' argmax
  const tx = bilinearTaps(width, outWidth);
  const ty = bilinearTaps(height, outHeight);
  const f = Math.fround;
  const out = new Uint8Array(outWidth * outHeight);
  for (let y = 0; y < outHeight; y++) {
    const r0 = (ty.i0[y] as number) * width;
    const r1 = (ty.i1[y] as number) * width;
    const wy = ty.w1[y] as number;
    for (let x = 0; x < outWidth; x++) {
      const x0 = tx.i0[x] as number;
      const x1 = tx.i1[x] as number;
      const c = clear[r0 + x0] as number;
      if (c !== 255 && clear[r0 + x1] === c && clear[r1 + x0] === c && clear[r1 + x1] === c) {
        out[y * outWidth + x] = c;
        continue;
      }
      const wx = tx.w1[x] as number;
      const a = (r0 + x0) * channels;
      const b = (r0 + x1) * channels;
      const d = (r1 + x0) * channels;
      const e = (r1 + x1) * channels;
      let best = 0;
      let max = -Infinity;
      for (let k = 0; k < channels; k++) {
        const va = logits[a + k] as number;
        const vd = logits[d + k] as number;
        const top = va + ((logits[b + k] as number) - va) * wx;
        const bottom = vd + ((logits[e + k] as number) - vd) * wx;
        const v = f(top + (bottom - top) * wy);
        if (k === 0 || v > max) {
          max = v;
          best = k;
        }
      }
      out[y * outWidth + x] = channels === 1 ? (max >= 0 ? 1 : 0) : best;
    }
  }
  return createMask(outWidth, outHeight, out);
}

/** Relative margin by which a class must lead for its pixel to count as clear (float32 rounding is 6e-8). */
const MARGIN = 1e-5;

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
