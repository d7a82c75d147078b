import { SegkitError } from "../core/errors.js";
import type { Rect } from "../io/resize.js";
import { bilinearTaps, resizeBilinear } from "../masks/resize.js";
import { type Rle, rleCountsBuilder } from "../masks/rle.js";
import { SAM_IMAGE_SIZE, SAM_LOW_RES_SIZE, type SamSize } from "./transforms.js";

/**
 * The decoder's low-res logits to logits in the original frame, as `Sam.postprocess_masks` (and the official ONNX
 * decoder's in-graph `mask_postprocessing`): upscale the 256 x 256 planes to 1024 x 1024 with
 * `F.interpolate(mode="bilinear", align_corners=False)`, crop to `inputSize` (the resized image inside the padded
 * square), resize that to the original `(H, W)` the same way. Threshold the result with `thresholdMasks` (> 0).
 *
 * Input `lowRes`: `[planes, 256, 256]` float32 (the decoder's `low_res_masks [1, 4, 256, 256]`). Output planes are
 * CHW float32: `data[(c * height + y) * width + x]`.
 *
 * Four ways, same semantics:
 * - `postprocessMasks`: the reference, stage by stage, in float32 with torch's index and weight arithmetic
 *   (`resizeBilinear` with `precision: "float32"`; the crop is fused: only the kept 1024-frame pixels are computed);
 * - `upscaleMasks`: what a viewer needs per click: both bilinear stages folded into one separable kernel per axis
 *   (at most 3 distinct low-res taps per output pixel and axis, weights multiplied in doubles), applied only to the chosen channels,
 *   at any output size (e.g. the display size; the final interpolation then targets that size instead of `(H, W)`)
 *   and only over a region of that output (what is on screen). At the original size it equals `postprocessMasks`
 *   up to float rounding (measured against torch: |diff| <= 9.5e-7 for both, on logits up to ~10);
 * - `upscaleAndThreshold`: what `SamPredictor.predict` returns per click: every plane at the original size, thresholded
 *   and its stability score counted in the same pass (the same float32 values as `upscaleMasks`);
 * - `upscaleToRle`: one plane of `upscaleMasks` at the original size, thresholded, straight to an RLE with its box,
 *   area and stability counts, computing only the output pixels that can reach the stability floor (the same
 *   float32 values there): what automatic mask generation needs per candidate.
 */

/**
 * Where the image sits in the model's frame: SAM's resized image in the padded 1024 square (`inputSize`, cropped
 * after the 1024 upscale), or `"stretch"`: SAM 2's, the image stretched over the whole frame, whose masks go from
 * 256 x 256 to the output in one resize (`SAM2Transforms.postprocess_masks`).
 */
export type SamMaskFrame = SamSize | "stretch";

function checkInputs(lowRes: Float32Array, inputSize: SamMaskFrame, originalSize: SamSize): number {
  const plane = SAM_LOW_RES_SIZE * SAM_LOW_RES_SIZE;
  if (lowRes.length === 0 || lowRes.length % plane !== 0) {
    throw new SegkitError(`low-res masks must be [planes, 256, 256] float32, got ${lowRes.length} values`);
  }
  const sizes = [["original size", originalSize, Infinity]] as [string, SamSize, number][];
  if (inputSize !== "stretch") sizes.push(["input size", inputSize, SAM_IMAGE_SIZE]);
  for (const [what, s, max] of sizes) {
    if (!Number.isInteger(s.height) || !Number.isInteger(s.width) || s.height < 1 || s.width < 1) {
      throw new SegkitError(`${what} must be positive integers, got ${s.height} x ${s.width} (H x W)`);
    }
    if (s.height > max || s.width > max) throw new SegkitError(`${what} ${s.height} x ${s.width} exceeds ${max}`);
  }
  return lowRes.length / plane;
}

/**
 * `Sam.postprocess_masks` on every plane of `lowRes`: logits `[planes, H, W]` float32 at the original size.
 * Reference semantics and arithmetic; costs ~2 full-size bilinear passes per plane (see `upscaleMasks`).
 */
export function postprocessMasks(lowRes: Float32Array, inputSize: SamSize, originalSize: SamSize): Float32Array {
  const planes = checkInputs(lowRes, inputSize, originalSize);
  const low = SAM_LOW_RES_SIZE;
  const { height: inH, width: inW } = inputSize;
  const area = originalSize.height * originalSize.width;
  const out = new Float32Array(planes * area);
  for (let c = 0; c < planes; c++) {
    const plane = lowRes.subarray(c * low * low, (c + 1) * low * low);
    // stage 1 fused with the crop: the 1024 x 1024 upscale, only rows < inputSize.height and columns < inputSize.width
    const mid = resizeBilinear(plane, low, low, 1, SAM_IMAGE_SIZE, SAM_IMAGE_SIZE, {
      precision: "float32",
      crop: inputSize,
    });
    // stage 2: the cropped input-frame logits to the original size
    const full = resizeBilinear(mid, inW, inH, 1, originalSize.width, originalSize.height, { precision: "float32" });
    out.set(full, c * area);
  }
  return out;
}

export interface UpscaleMasksOptions {
  /** Size the last interpolation targets instead of the original `(H, W)`, e.g. the display size. */
  outputSize?: SamSize;
  /** Part of that output to compute (pixels of the output grid); default all of it. */
  region?: Rect;
  /** Planes of `lowRes` to upscale, in the order returned; default all. */
  channels?: readonly number[];
}

export interface UpscaledMasks {
  /** `[channels, region.height, region.width]` float32 logits. */
  data: Float32Array;
  width: number;
  height: number;
  channels: number;
}

/** Low-res taps per output pixel and axis in the composed kernels (two stages of 2 taps read at most 3 rows). */
const TAPS = 3;

/**
 * Composed 1-D kernel: output `o` of the region = sum over `TAPS` taps of `low[idx] * w` (low-res frame indices,
 * distinct; an unused tap repeats the first index with weight 0).
 */
interface ComposedTaps {
  idx: Int32Array;
  w: Float64Array;
}

/**
 * The composed kernel of outputs `start .. start + count - 1` of the two-stage resize `low -> 1024 -> crop -> outLen`,
 * or of the one resize `low -> outLen` (`"stretch"`). The weights of one low-res index are summed (in doubles), so an
 * output costs 2 or 3 products instead of 4.
 */
function composedTaps(
  low: number,
  cropLen: number | "stretch",
  outLen: number,
  start: number,
  count: number,
): ComposedTaps {
  const idx = new Int32Array(count * TAPS);
  const w = new Float64Array(count * TAPS);
  const add = (o: number, i: number, weight: number) => {
    for (let s = 0; s < TAPS; s++) {
      const k = o * TAPS + s;
      if (s > 0 && w[k] === 0 && idx[k] === idx[o * TAPS]) idx[k] = i; // an unused tap
      if (idx[k] === i) {
        w[k] = (w[k] as number) + weight;
        return;
      }
    }
    throw new Error(`more than ${TAPS} low-res taps`); // cannot happen: two bilinear stages, scale >= 1 in stage 1
  };
  if (cropLen === "stretch") {
    const t = bilinearTaps(low, outLen, "float32", count, start);
    for (let o = 0; o < count; o++) {
      idx.fill(t.i0[o] as number, o * TAPS, (o + 1) * TAPS);
      w[o * TAPS] = t.w0[o] as number;
      add(o, t.i1[o] as number, t.w1[o] as number);
    }
    return { idx, w };
  }
  const t2 = bilinearTaps(cropLen, outLen, "float32", start + count);
  const t1 = bilinearTaps(low, SAM_IMAGE_SIZE, "float32", cropLen);
  for (let o = 0; o < count; o++) {
    const a = t2.i0[start + o] as number;
    const b = t2.i1[start + o] as number;
    const wa = t2.w0[start + o] as number;
    const wb = t2.w1[start + o] as number;
    idx.fill(t1.i0[a] as number, o * TAPS, (o + 1) * TAPS);
    w[o * TAPS] = wa * (t1.w0[a] as number);
    add(o, t1.i1[a] as number, wa * (t1.w1[a] as number));
    add(o, t1.i0[b] as number, wb * (t1.w0[b] as number));
    add(o, t1.i1[b] as number, wb * (t1.w1[b] as number));
  }
  return { idx, w };
}

/** One low-res row (from `row` in `src`) through the composed horizontal taps into `out` from `offset`, in doubles. */
function horizontal(src: Float32Array, row: number, tx: ComposedTaps, out: Float64Array, offset: number): void {
  const count = tx.idx.length / TAPS;
  const { idx, w } = tx;
  for (let i = 0; i < count; i++) {
    const j = i * TAPS;
    out[offset + i] =
      (src[row + (idx[j] as number)] as number) * (w[j] as number) +
      (src[row + (idx[j + 1] as number)] as number) * (w[j + 1] as number) +
      (src[row + (idx[j + 2] as number)] as number) * (w[j + 2] as number);
  }
}

/** The rows of `tmp` (offsets) and weights of output row `y`'s vertical taps. */
function verticalTaps(ty: ComposedTaps, y: number, width: number) {
  const j = y * TAPS;
  return {
    a: (ty.idx[j] as number) * width,
    b: (ty.idx[j + 1] as number) * width,
    c: (ty.idx[j + 2] as number) * width,
    wa: ty.w[j] as number,
    wb: ty.w[j + 1] as number,
    wc: ty.w[j + 2] as number,
  };
}

/** Output row `y` through the composed vertical taps from the horizontal pass's rows `tmp` into `out` from `offset`. */
function vertical(tmp: Float64Array, ty: ComposedTaps, y: number, width: number, out: Float32Array, offset: number) {
  const { a, b, c, wa, wb, wc } = verticalTaps(ty, y, width);
  for (let i = 0; i < width; i++) {
    out[offset + i] = (tmp[a + i] as number) * wa + (tmp[b + i] as number) * wb + (tmp[c + i] as number) * wc;
  }
}

/**
 * The cheap path of `postprocessMasks` for interactive use: only the chosen channels, at `outputSize` (default the
 * original size), only over `region`; same semantics (see the module comment). Cost per channel about
 * `3 * (256 * region.width + region.height * region.width)` multiply-adds.
 */
export function upscaleMasks(
  lowRes: Float32Array,
  inputSize: SamMaskFrame,
  originalSize: SamSize,
  options: UpscaleMasksOptions = {},
): UpscaledMasks {
  const planes = checkInputs(lowRes, inputSize, originalSize);
  const outSize = options.outputSize ?? originalSize;
  checkInputs(lowRes, inputSize, outSize);
  const region = options.region ?? { x: 0, y: 0, width: outSize.width, height: outSize.height };
  const { x, y, width, height } = region;
  if (
    ![x, y, width, height].every(Number.isInteger) ||
    x < 0 ||
    y < 0 ||
    width < 1 ||
    height < 1 ||
    x + width > outSize.width ||
    y + height > outSize.height
  ) {
    throw new SegkitError(
      `region ${x},${y} ${width}x${height} is not inside the ${outSize.width}x${outSize.height} output`,
    );
  }
  const channels = options.channels ?? Array.from({ length: planes }, (_, i) => i);
  for (const c of channels) {
    if (!Number.isInteger(c) || c < 0 || c >= planes) {
      throw new SegkitError(`channel ${c} does not exist: the low-res masks have ${planes} planes`);
    }
  }
  const low = SAM_LOW_RES_SIZE;
  const stretch = inputSize === "stretch";
  const tx = composedTaps(low, stretch ? inputSize : inputSize.width, outSize.width, x, width);
  const ty = composedTaps(low, stretch ? inputSize : inputSize.height, outSize.height, y, height);
  let rowMin = low;
  let rowMax = 0;
  for (const r of ty.idx) {
    rowMin = Math.min(rowMin, r);
    rowMax = Math.max(rowMax, r);
  }
  const tmp = new Float64Array(low * width);
  const out = new Float32Array(channels.length * width * height);
  channels.forEach((c, k) => {
    const base = c * low * low;
    // horizontal: the low-res rows the vertical taps read, to the region's columns
    for (let r = rowMin; r <= rowMax; r++) horizontal(lowRes, base + r * low, tx, tmp, r * width);
    // vertical: 4 rows of tmp per output row
    for (let yy = 0; yy < height; yy++) vertical(tmp, ty, yy, width, out, (k * height + yy) * width);
  });
  return { data: out, width, height, channels: channels.length };
}

export interface ThresholdedMasks {
  /** Per plane, 1 where the upscaled logit is > `threshold`, else 0: `[rows * width]` (`thresholdMasks`). */
  masks: Uint8Array[];
  /** Per plane, `stabilityScore` of its upscaled logits (`threshold`, `offset`). */
  stability: Float32Array;
  /** Per plane, the stability score's terms: logits above `threshold + offset` and above `threshold - offset`. */
  intersections: number[];
  unions: number[];
  /** With `logits`: per plane, the upscaled logits `[rows * width]` float32 (what `upscaleMasks` returns). */
  logits?: Float32Array[];
}

export interface UpscaleAndThresholdOptions {
  /** The mask is `logit > threshold` (SAM's `mask_threshold`, 0). */
  threshold?: number;
  /** Stability score offset (SAM's `stability_score_offset`, 1). */
  offset?: number;
  /** Also return the upscaled logits. */
  logits?: boolean;
  /**
   * Output rows `[start, end)` only (default all): masks and logits hold those rows, the scores count them, so that
   * parts computed apart (e.g. on two threads) add up to the whole.
   */
  rows?: readonly [number, number];
}

/**
 * What a click needs from `upscaleMasks` at the original size, in one pass per plane: every plane of `lowRes`
 * upscaled (the same float32 values as `upscaleMasks`: same taps, same products and sums in doubles, rounded once),
 * thresholded (`thresholdMasks`) and counted for its stability score (`stabilityScore`), without materialising the
 * logits unless `logits` asks for them. The taps and the scratch rows are kept for the next call with the same sizes
 * (a session clicks on one image).
 */
export function upscaleAndThreshold(
  lowRes: Float32Array,
  inputSize: SamMaskFrame,
  originalSize: SamSize,
  options: UpscaleAndThresholdOptions = {},
): ThresholdedMasks {
  const planes = checkInputs(lowRes, inputSize, originalSize);
  const { threshold = 0, offset = 1, rows = [0, originalSize.height] } = options;
  const [start, end] = rows;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || start >= end || end > originalSize.height) {
    throw new SegkitError(`rows [${start}, ${end}) are not a part of the ${originalSize.height} output rows`);
  }
  return thresholdPlanes(lowRes, planes, inputSize, originalSize, {
    threshold,
    offset,
    logits: options.logits === true,
    start,
    end,
  });
}

/** A low-res value's side of the mask threshold and the stability band: certain above, certain below, or neither. */
const ABOVE = 1;
const BELOW = 2;
/** Room for the rounding of an interpolation around `v`: a value beyond a bound by more is beyond it after it too. */
const roundingMargin = (v: number) => 1e-3 + 1e-5 * Math.abs(v);

/**
 * The planes of `lowRes` and the composed taps `upscaleAndThreshold` uses at these sizes (the inputs checked as it
 * checks them), for a kernel that computes its full pass elsewhere (native-upscale.ts).
 */
export function upscaleTaps(lowRes: Float32Array, inputSize: SamMaskFrame, originalSize: SamSize) {
  const planes = checkInputs(lowRes, inputSize, originalSize);
  const { tx, ty } = planeGeometry(inputSize, originalSize);
  return { planes, tx, ty };
}

/**
 * `upscaleAndThreshold`, computing only the pixels whose value is in doubt unless the logits are asked for (or most
 * of a plane is in doubt: the full pass). Every output is a convex combination of at most 3 x 3 low-res values
 * (bilinear weights are >= 0 and sum to 1), so where all of them are above the threshold and the stability band
 * (with room for the rounding) the pixel is 1 and counts for both stability sums, and where all are below it is 0
 * and counts for neither; only the rest (near the mask's edge) is interpolated, with the same taps and operations as
 * the full pass (horizontal taps in doubles, vertical taps, rounded once to float32), so masks and scores are the same.
 */
function thresholdPlanes(
  lowRes: Float32Array,
  planes: number,
  inputSize: SamMaskFrame,
  { height: H, width: W }: SamSize,
  {
    threshold,
    offset,
    logits,
    start,
    end,
  }: { threshold: number; offset: number; logits: boolean; start: number; end: number },
): ThresholdedMasks {
  const { tx, ty, xFirst, xLast, tmp } = planeGeometry(inputSize, { height: H, width: W });
  const low = SAM_LOW_RES_SIZE;
  const hi = threshold + offset;
  const lo = threshold - offset;
  const top = Math.max(hi, lo, threshold);
  const bottom = Math.min(hi, lo, threshold);
  const state = new Uint8Array(low * low);
  // per low-res row: every value ABOVE, every value BELOW, or mixed (0); and whether any value is either
  const rowState = new Uint8Array(low);
  const rowSome = new Uint8Array(low);
  // the state of each low-res column over the low-res rows of one output row
  const colState = new Uint8Array(low);
  const done = new Uint8Array(low);
  const classified = new Uint8Array(low);
  const masks: Uint8Array[] = [];
  const logitPlanes: Float32Array[] = [];
  const stability = new Float32Array(planes);
  const intersections: number[] = [];
  const unions: number[] = [];
  const size = (end - start) * W;
  for (let c = 0; c < planes; c++) {
    const plane = lowRes.subarray(c * low * low, (c + 1) * low * low);
    const mask = new Uint8Array(size);
    const out = logits ? new Float32Array(size) : undefined;
    let inter = 0;
    let union = 0;
    // the horizontal pass of a low-res row, made when an output row first needs it
    done.fill(0);
    const need = (r: number) => {
      if (done[r]) return;
      horizontal(plane, r * low, tx, tmp, r * W);
      done[r] = 1;
    };
    const counts = [0, 0];
    const exact = (y: number, x0: number, x1: number) => {
      if (x0 >= x1) return;
      const j = y * TAPS;
      need(ty.idx[j] as number);
      need(ty.idx[j + 1] as number);
      need(ty.idx[j + 2] as number);
      exactRow(tmp, verticalTaps(ty, y, W), (y - start) * W, x0, x1, { threshold, lo, hi }, mask, counts);
    };
    const finish = () => {
      masks.push(mask);
      if (out) logitPlanes.push(out);
      intersections.push(inter + (counts[0] as number));
      unions.push(union + (counts[1] as number));
      stability[c] = (intersections[c] as number) / (unions[c] as number);
    };
    // a plane mostly in doubt (logits near the threshold everywhere: an untrained decoder's) takes the full pass
    let sure = 0;
    for (let r = 8; r < low && !out; r += 16) {
      for (let i = r * low + 8; i < (r + 1) * low; i += 16) {
        const v = plane[i] as number;
        if (v > top + roundingMargin(v) || v < bottom - roundingMargin(v)) sure++;
      }
    }
    if (out || sure < 128) {
      for (let y = start; y < end; y++) {
        exact(y, 0, W);
        if (out) vertical(tmp, ty, y, W, out, (y - start) * W);
      }
      finish();
      continue;
    }
    // rows from their least and greatest value (a NaN or an infinity, which the sum carries, makes a row mixed: the
    // full pass's zero-weight taps turn an infinity into NaN); a row's values are classified when a stretch needs them
    for (let r = 0; r < low; r++) {
      let mn = Number.POSITIVE_INFINITY;
      let mx = Number.NEGATIVE_INFINITY;
      let sum = 0;
      for (let i = r * low; i < (r + 1) * low; i++) {
        const v = plane[i] as number;
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
        sum += v;
      }
      const ok = Number.isFinite(sum);
      rowState[r] = ok && mn > top + roundingMargin(mn) ? ABOVE : ok && mx < bottom - roundingMargin(mx) ? BELOW : 0;
      rowSome[r] = +(mx > top + roundingMargin(mx) || mn < bottom - roundingMargin(mn));
    }
    classified.fill(0);
    const classify = (r: number) => {
      if (classified[r]) return;
      for (let i = r * low; i < (r + 1) * low; i++) {
        const v = plane[i] as number;
        state[i] = v > top + roundingMargin(v) ? ABOVE : v < bottom - roundingMargin(v) ? BELOW : 0;
      }
      classified[r] = 1;
    };
    let window = -1;
    for (let y = start; y < end; y++) {
      const j = y * TAPS;
      const r0 = Math.min(ty.idx[j] as number, ty.idx[j + 1] as number, ty.idx[j + 2] as number);
      const r1 = Math.max(ty.idx[j] as number, ty.idx[j + 1] as number, ty.idx[j + 2] as number);
      let rows = ABOVE | BELOW;
      let certain = true;
      for (let r = r0; r <= r1; r++) {
        rows &= rowState[r] as number;
        certain &&= rowSome[r] !== 0;
      }
      const row = (y - start) * W;
      if (!certain) {
        // a low-res row without a certain value: every output of this row is in doubt
        exact(y, 0, W);
        continue;
      }
      if (rows === BELOW) continue;
      if (rows === ABOVE) {
        mask.fill(1, row, row + W);
        inter += W;
        union += W;
        continue;
      }
      if (window !== r0 * low + r1) {
        window = r0 * low + r1;
        for (let r = r0; r <= r1; r++) classify(r);
        for (let col = 0; col < low; col++) {
          let s = ABOVE | BELOW;
          for (let r = r0; r <= r1; r++) s &= state[r * low + col] as number;
          colState[col] = s;
        }
      }
      // runs of low-res columns of one certain state cover the outputs whose taps all fall inside them
      let x = 0;
      for (let col = 0; col < low; ) {
        const s = colState[col] as number;
        let end = col;
        while (end + 1 < low && colState[end + 1] === s) end++;
        if (s !== 0) {
          const xa = Math.max(x, xFirst[col] as number);
          const xb = xLast[end] as number;
          if (xa <= xb) {
            exact(y, x, xa);
            if (s === ABOVE) {
              mask.fill(1, row + xa, row + xb + 1);
              inter += xb + 1 - xa;
              union += xb + 1 - xa;
            }
            x = xb + 1;
          }
        }
        col = end + 1;
      }
      exact(y, x, W);
    }
    finish();
  }
  return { masks, stability, intersections, unions, ...(logits ? { logits: logitPlanes } : {}) };
}

/**
 * Outputs `x0 .. x1 - 1` of one row (`row`: its offset in `mask`) as `upscaleAndThreshold`'s full pass computes them
 * from the horizontal pass's rows `tmp` and the row's vertical taps; adds its stability counts to `counts`
 * ([above hi, above lo]).
 */
function exactRow(
  tmp: Float64Array,
  { a, b, c, wa, wb, wc }: ReturnType<typeof verticalTaps>,
  row: number,
  x0: number,
  x1: number,
  { threshold, lo, hi }: { threshold: number; lo: number; hi: number },
  mask: Uint8Array,
  counts: number[],
) {
  let n = 0;
  let m = 0;
  if (wc === 0) {
    for (let x = x0; x < x1; x++) {
      const v = Math.fround((tmp[a + x] as number) * wa + (tmp[b + x] as number) * wb);
      if (v > lo) {
        m++;
        if (v > hi) n++;
      }
      mask[row + x] = +(v > threshold);
    }
  } else {
    for (let x = x0; x < x1; x++) {
      const v = Math.fround((tmp[a + x] as number) * wa + (tmp[b + x] as number) * wb + (tmp[c + x] as number) * wc);
      if (v > lo) {
        m++;
        if (v > hi) n++;
      }
      mask[row + x] = +(v > threshold);
    }
  }
  counts[0] = (counts[0] as number) + n;
  counts[1] = (counts[1] as number) + m;
}

export interface UpscaleToRleOptions {
  /** Plane of `lowRes` (default 0). */
  channel?: number;
  /** The mask is `logit > threshold` (SAM's `mask_threshold`, 0). */
  threshold?: number;
  /** Stability counts: logits above `threshold + offset` and above `threshold - offset` (default 1). */
  offset?: number;
  /**
   * The frame the RLE covers, with the output at `(x, y)` inside it (a crop inside its image, as `uncrop_masks`);
   * default the output itself.
   */
  frame?: { x: number; y: number; height: number; width: number };
}

export interface UpscaledRle {
  /** Column-major counts of the mask in `frame`. */
  rle: Rle;
  /** Inclusive `[minX, minY, maxX, maxY]` of the mask in the output's own pixels; `[0, 0, 0, 0]` when empty. */
  box: [number, number, number, number];
  area: number;
  /** Pixels with a logit above `threshold + offset` and above `threshold - offset` (the stability score's terms). */
  intersections: number;
  unions: number;
}

/**
 * One plane of `upscaleMasks` at the original size, thresholded, as an RLE with its box, area and stability counts,
 * without materialising the plane: the same logits (identical float32 values) for every pixel that can reach
 * `threshold - offset`, and none computed for the rest. Bilinear weights are non-negative and sum to 1, so an output
 * pixel whose low-res taps are all below that level is below it too: per column only the output rows that read a
 * run of low-res rows able to reach it are computed. The cost follows the mask's extent, not the
 * image's: what automatic mask generation needs for each of its thousands of candidates.
 */
export function upscaleToRle(
  lowRes: Float32Array,
  inputSize: SamMaskFrame,
  originalSize: SamSize,
  options: UpscaleToRleOptions = {},
): UpscaledRle {
  const planes = checkInputs(lowRes, inputSize, originalSize);
  const { channel = 0, threshold = 0, offset = 1 } = options;
  if (!Number.isInteger(channel) || channel < 0 || channel >= planes) {
    throw new SegkitError(`channel ${channel} does not exist: the low-res masks have ${planes} planes`);
  }
  const { height: H, width: W } = originalSize;
  const frame = options.frame ?? { x: 0, y: 0, height: H, width: W };
  if (frame.x < 0 || frame.y < 0 || frame.x + W > frame.width || frame.y + H > frame.height) {
    throw new SegkitError(
      `a ${W}x${H} output at ${frame.x},${frame.y} is not inside the ${frame.width}x${frame.height} frame`,
    );
  }
  const low = SAM_LOW_RES_SIZE;
  const plane = lowRes.subarray(channel * low * low, (channel + 1) * low * low);
  const { tx, ty, firstY, lastY, tmp } = planeGeometry(inputSize, originalSize);
  const floor = threshold - Math.abs(offset);
  // below `floor` with room for the rounding of the interpolation: such a pixel counts nowhere
  const cold = (v: number) => v < floor - roundingMargin(v);

  // low-res rows holding a value that is not cold; the horizontal pass runs on those and the 2 rows either side
  // (the taps of one output row span at most 3 consecutive low-res rows), the others are -Infinity (cold)
  const hot: number[] = [];
  for (let r = 0; r < low; r++) {
    for (let c = 0; c < low; c++) {
      if (!cold(plane[r * low + c] as number)) {
        hot.push(r);
        break;
      }
    }
  }
  const need = new Uint8Array(low);
  for (const r of hot) need.fill(1, Math.max(0, r - 2), Math.min(low, r + 3));
  for (let r = 0; r < low; r++) {
    const out = r * W;
    if (!need[r]) {
      tmp.fill(Number.NEGATIVE_INFINITY, out, out + W);
      continue;
    }
    horizontal(plane, r * low, tx, tmp, out);
  }

  const { add, counts } = rleCountsBuilder();
  const box: [number, number, number, number] = [W, H, -1, -1];
  let area = 0;
  let intersections = 0;
  let unions = 0;
  const hi = threshold + offset;
  const lo = threshold - offset;
  add(false, frame.x * frame.height);
  // output rows [y0, y1] of column x read low-res rows [ra, rb]; y is the first row of the column not yet added
  let x = 0;
  let y = 0;
  const rows = (ra: number, rb: number) => {
    const y1 = lastY[rb] as number;
    const y0 = Math.max(firstY[ra] as number, y);
    if (y0 > y1) return;
    add(false, y0 - y);
    let inside = false;
    let n = 0;
    for (let yy = y0; yy <= y1; yy++) {
      const j = yy * TAPS;
      const v = Math.fround(
        (tmp[(ty.idx[j] as number) * W + x] as number) * (ty.w[j] as number) +
          (tmp[(ty.idx[j + 1] as number) * W + x] as number) * (ty.w[j + 1] as number) +
          (tmp[(ty.idx[j + 2] as number) * W + x] as number) * (ty.w[j + 2] as number),
      );
      if (v > hi) intersections++;
      if (v > lo) unions++;
      if (v > threshold !== inside) {
        add(inside, n);
        inside = !inside;
        n = 0;
      }
      n++;
      if (inside) {
        area++;
        if (x < box[0]) box[0] = x;
        box[2] = x;
        if (yy < box[1]) box[1] = yy;
        if (yy > box[3]) box[3] = yy;
      }
    }
    add(inside, n);
    y = y1 + 1;
  };
  for (x = 0; x < W; x++) {
    add(false, frame.y);
    // runs of consecutive low-res rows whose horizontal values are not cold; rows no run reaches are cold
    y = 0;
    let start = -1;
    let prev = -2;
    for (const r of hot) {
      if (cold(tmp[r * W + x] as number)) continue;
      if (r > prev + 1) {
        if (start >= 0) rows(start, prev);
        start = r;
      }
      prev = r;
    }
    if (start >= 0) rows(start, prev);
    add(false, H - y);
    add(false, frame.height - frame.y - H);
  }
  add(false, (frame.width - frame.x - W) * frame.height);
  return {
    rle: { size: [frame.height, frame.width], counts: counts() },
    box: box[2] < 0 ? [0, 0, 0, 0] : box,
    area,
    intersections,
    unions,
  };
}

/**
 * What `upscaleToRle` and `upscaleAndThreshold` need for one pair of sizes, kept for the next call (automatic masks
 * and clicks on one image repeat the sizes).
 */
let geometry: { key: string; value: ReturnType<typeof makePlaneGeometry> } | undefined;

function planeGeometry(inputSize: SamMaskFrame, outSize: SamSize) {
  const frame = inputSize === "stretch" ? inputSize : `${inputSize.height}x${inputSize.width}`;
  const key = `${frame}>${outSize.height}x${outSize.width}`;
  if (geometry?.key !== key) geometry = { key, value: makePlaneGeometry(inputSize, outSize) };
  return geometry.value;
}

/**
 * The composed taps both ways; for each low-res row r the output rows that read it, `firstY[r]` (the first whose
 * last tap is >= r) to `lastY[r]` (the last whose first tap is <= r), as taps grow with the row; for each low-res
 * column j, the first output column whose taps all are >= j (`xFirst[j]`) and the last whose taps all are <= j
 * (`xLast[j]`); the scratch plane of the horizontal pass.
 */
function makePlaneGeometry(inputSize: SamMaskFrame, { height: H, width: W }: SamSize) {
  const low = SAM_LOW_RES_SIZE;
  const tx = composedTaps(low, inputSize === "stretch" ? inputSize : inputSize.width, W, 0, W);
  const ty = composedTaps(low, inputSize === "stretch" ? inputSize : inputSize.height, H, 0, H);
  const firstY = new Int32Array(low).fill(H);
  const lastY = new Int32Array(low).fill(-1);
  for (let y = H - 1; y >= 0; y--) {
    const top = Math.max(...ty.idx.subarray(y * TAPS, (y + 1) * TAPS));
    for (let r = 0; r <= top; r++) firstY[r] = y;
  }
  for (let y = 0; y < H; y++) {
    const bottom = Math.min(...ty.idx.subarray(y * TAPS, (y + 1) * TAPS));
    for (let r = bottom; r < low; r++) lastY[r] = y;
  }
  const xFirst = new Int32Array(low).fill(W);
  const xLast = new Int32Array(low).fill(-1);
  for (let x = W - 1; x >= 0; x--) {
    const first = Math.min(...tx.idx.subarray(x * TAPS, (x + 1) * TAPS));
    for (let j = 0; j <= first; j++) xFirst[j] = x;
  }
  for (let x = 0; x < W; x++) {
    const last = Math.max(...tx.idx.subarray(x * TAPS, (x + 1) * TAPS));
    for (let j = last; j < low; j++) xLast[j] = x;
  }
  return { tx, ty, firstY, lastY, xFirst, xLast, tmp: new Float64Array(W * low) };
}
