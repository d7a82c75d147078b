import { createMask, type Mask } from "../core/image.js";

/**
 * Logits to masks and probabilities, pure functions on typed arrays (no tfjs, so both engines share them).
 * Logits are HWC: `logits[(y * width + x) * C + c]`, as one image of the model's NHWC output.
 * Probabilities are returned as class planes, CHW: `probs[(k * height + y) * width + x]`, one plane per class
 * (K = C; a one-channel sigmoid head gives K = 2 planes, 1 - p and p, so that plane k is always class k).
 */

/**
 * Bilinear resize of an HWC float image with half-pixel centres (TF `resize_bilinear(half_pixel_centers=True)`,
 * PyTorch `interpolate(mode="bilinear", align_corners=False)`, no antialiasing): output pixel x samples the input
 * at (x + 0.5) * inW / outW - 0.5, clamped to the edge pixels.
 */
export function resizeBilinear(
  src: Float32Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): Float32Array {
  if (src.length !== width * height * channels) {
    throw new RangeError(`resizeBilinear: ${src.length} values, expected ${width} x ${height} x ${channels}`);
  }
  if (width === outWidth && height === outHeight) return src.slice();
  const taps = (n: number, out: number) => {
    const lo = new Int32Array(out);
    const hi = new Int32Array(out);
    const f = new Float32Array(out);
    for (let i = 0; i < out; i++) {
      const s = Math.min(n - 1, Math.max(0, ((i + 0.5) * n) / out - 0.5));
      lo[i] = Math.floor(s);
      hi[i] = Math.min(n - 1, (lo[i] as number) + 1);
      f[i] = s - (lo[i] as number);
    }
    return { lo, hi, f };
  };
  const tx = taps(width, outWidth);
  const ty = taps(height, outHeight);
  const out = new Float32Array(outWidth * outHeight * channels);
  for (let y = 0; y < outHeight; y++) {
    const r0 = (ty.lo[y] as number) * width;
    const r1 = (ty.hi[y] as number) * width;
    const fy = ty.f[y] as number;
    for (let x = 0; x < outWidth; x++) {
      const x0 = tx.lo[x] as number;
      const x1 = tx.hi[x] as number;
      const fx = tx.f[x] as number;
      const a = (r0 + x0) * channels;
      const b = (r0 + x1) * channels;
      const c = (r1 + x0) * channels;
      const d = (r1 + x1) * channels;
      const o = (y * outWidth + x) * channels;
      for (let k = 0; k < channels; k++) {
        const top = (src[a + k] as number) + ((src[b + k] as number) - (src[a + k] as number)) * fx;
        const bottom = (src[c + k] as number) + ((src[d + k] as number) - (src[c + k] as number)) * fx;
        out[o + k] = top + (bottom - top) * fy;
      }
    }
  }
  return out;
}

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
