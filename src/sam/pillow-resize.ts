import { createImage, type RgbImage } from "../core/image.js";

/**
 * Pillow's `Image.resize(size, Image.BILINEAR)` for RGB uint8 images, bit for bit: the resize Segment Anything's
 * `ResizeLongestSide.apply_image` runs (through torchvision's `to_pil_image` and `resize`), ported from Pillow's
 * `src/libImaging/Resample.c` (`precompute_coeffs`, `normalize_coeffs_8bpc`, `ImagingResampleHorizontal_8bpc`,
 * `ImagingResampleVertical_8bpc`, `ImagingResampleInner`; checked against Debian's Pillow 9.4 by
 * `scripts/make_sam_transform_fixtures.py`).
 *
 * The algorithm, with the details that decide the last bit:
 * - separable convolution with the triangle filter `max(0, 1 - |x|)`; when shrinking by `scale = in / out > 1` the
 *   filter is stretched by `scale` (support `1 * scale`), which is the antialiasing; when enlarging it is plain
 *   bilinear with support 1;
 * - output pixel `o` is centred on input coordinate `center = (o + 0.5) * scale`; it reads input pixels
 *   `xmin = int(center - support + 0.5)` (clamped to 0) up to `int(center + support + 0.5)` (clamped to the size),
 *   pixel `i` weighted by `filter((i - center + 0.5) / max(scale, 1))`, the weights divided by their sum (doubles);
 * - the weights become integers `int(w * 2^22 ± 0.5)` (PRECISION_BITS = 22); each output value is
 *   `2^21 + sum(pixel * weight)` shifted right by 22 and clipped to 0..255 (integer arithmetic, so exact in JS);
 * - the horizontal pass runs first, over only the rows the vertical pass reads, into an 8-bit image (rounded as
 *   above); then the vertical pass; an axis whose size does not change is not resampled at all.
 */

const PRECISION_BITS = 22;

/** Per output pixel: the first input index, the tap count, and `ksize` fixed-point weights. */
interface Coeffs {
  bounds: Int32Array; // [xmin0, count0, xmin1, count1, ...]
  weights: Int32Array; // outSize x ksize
  ksize: number;
}

/** Pillow's filters (`Resample.c`): support and kernel. BICUBIC is the Keys cubic with a = -0.5. */
const FILTERS = {
  bilinear: { support: 1, kernel: (t: number) => (t < 1 ? 1 - t : 0) },
  bicubic: {
    support: 2,
    kernel: (t: number) => (t < 1 ? (1.5 * t - 2.5) * t * t + 1 : t < 2 ? (((t - 5) * t + 8) * t - 4) * -0.5 : 0),
  },
} as const;
export type PillowFilter = keyof typeof FILTERS;

/** `precompute_coeffs` + `normalize_coeffs_8bpc` for `filter` and the box (0, inSize). */
function resampleCoeffs(inSize: number, outSize: number, filter: PillowFilter): Coeffs {
  const { support: base, kernel } = FILTERS[filter];
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = base * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) truncates toward zero: the same as Math.trunc, not Math.floor, for center - support + 0.5 < 0
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const count = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < count; x++) {
      const w = kernel(Math.abs((x + xmin - center + 0.5) * ss));
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < count; x++) {
      const w = ww !== 0 ? (k[x] as number) / ww : (k[x] as number);
      // bicubic weights can be negative: rounded away from zero, as normalize_coeffs_8bpc
      weights[xx * ksize + x] =
        w < 0 ? Math.trunc(-0.5 + w * 2 ** PRECISION_BITS) : Math.trunc(0.5 + w * 2 ** PRECISION_BITS);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = count;
  }
  return { bounds, weights, ksize };
}

/** `clip8`: the fixed-point sum to 0..255 (the sum fits in int32, so `>>` is C's arithmetic shift). */
function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

const HALF = 1 << (PRECISION_BITS - 1);

/** Rows `y0 .. y0 + rows - 1` of `src`, resampled horizontally to `outW` columns. */
function horizontal(src: RgbImage, y0: number, rows: number, outW: number, c: Coeffs): Uint8Array {
  const out = new Uint8Array(outW * rows * 3);
  const { bounds, weights, ksize } = c;
  const d = src.data;
  const rowLen = src.width * 3;
  for (let yy = 0; yy < rows; yy++) {
    const row = (yy + y0) * rowLen;
    let o = yy * outW * 3;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[xx * 2] as number;
      const count = bounds[xx * 2 + 1] as number;
      const kb = xx * ksize;
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      let p = row + xmin * 3;
      for (let x = 0; x < count; x++, p += 3) {
        const w = weights[kb + x] as number;
        s0 += (d[p] as number) * w;
        s1 += (d[p + 1] as number) * w;
        s2 += (d[p + 2] as number) * w;
      }
      out[o++] = clip8(s0);
      out[o++] = clip8(s1);
      out[o++] = clip8(s2);
    }
  }
  return out;
}

/** `src` (width x any rows, RGB) resampled vertically to `outH` rows. */
function vertical(src: Uint8Array, width: number, outH: number, c: Coeffs): Uint8Array {
  const out = new Uint8Array(width * outH * 3);
  const { bounds, weights, ksize } = c;
  const rowLen = width * 3;
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2] as number;
    const count = bounds[yy * 2 + 1] as number;
    const kb = yy * ksize;
    const o = yy * rowLen;
    for (let i = 0; i < rowLen; i++) {
      let s = HALF;
      let p = ymin * rowLen + i;
      for (let y = 0; y < count; y++, p += rowLen) s += (src[p] as number) * (weights[kb + y] as number);
      out[o + i] = clip8(s);
    }
  }
  return out;
}

/**
 * `img` resized to `width` x `height` exactly as Pillow's `img.resize((width, height), Image.BILINEAR)` on an RGB
 * image (HWC uint8 in and out). Returns `img` itself when the size does not change (Pillow returns a copy).
 */
export function pillowResizeBilinear(img: RgbImage, width: number, height: number): RgbImage {
  return pillowResize(img, width, height, "bilinear");
}

/** `img.resize((width, height), filter)` as Pillow does it (BILINEAR, or BICUBIC: `resize`'s default for RGB). */
export function pillowResize(img: RgbImage, width: number, height: number, filter: PillowFilter): RgbImage {
  for (const [name, v] of [
    ["width", width],
    ["height", height],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`pillowResize: ${name} must be >= 1, got ${v}`);
  }
  if (width === img.width && height === img.height) return img;
  const cv = resampleCoeffs(img.height, height, filter);
  if (width === img.width) return createImage(width, height, vertical(img.data, width, height, cv));
  const ch = resampleCoeffs(img.width, width, filter);
  if (height === img.height) return createImage(width, height, horizontal(img, 0, height, width, ch));
  // the horizontal pass covers only the input rows the vertical pass reads, then the vertical bounds shift to them
  const first = cv.bounds[0] as number;
  const last = (cv.bounds[height * 2 - 2] as number) + (cv.bounds[height * 2 - 1] as number);
  for (let i = 0; i < height; i++) cv.bounds[i * 2] = (cv.bounds[i * 2] as number) - first;
  const temp = horizontal(img, first, last - first, width, ch);
  return createImage(width, height, vertical(temp, width, height, cv));
}
