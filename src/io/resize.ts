import sharp from "sharp";
import { createImage, createMask, type Mask, type RgbImage } from "../core/image.js";

/**
 * Image resampling:
 * - `bilinear`: libvips' linear kernel through sharp; when shrinking, the kernel widens with the scale (antialiased,
 *   as Pillow's BILINEAR), so small outputs do not alias;
 * - `area`: each output pixel is the exact area-weighted mean of the input pixels it covers (OpenCV INTER_AREA);
 *   when enlarging it falls back to bilinear.
 * Masks are only ever resized by nearest neighbour, so a resized mask never holds a value its input did not.
 */
export type ImageResample = "bilinear" | "area";

/** A pixel rectangle in the source image: x, y of its top-left corner, width, height. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * Resizes `img` (or the integer pixel rectangle `rect` of it, so crop and resize are one pass) to width x height.
 */
export async function resizeImage(
  img: RgbImage,
  width: number,
  height: number,
  method: ImageResample = "bilinear",
  rect?: Rect,
): Promise<RgbImage> {
  if (!rect && img.width === width && img.height === height) return img;
  if (method === "area" && width <= (rect?.width ?? img.width) && height <= (rect?.height ?? img.height)) {
    return resizeArea(rect ? cropImage(img, rect) : img, width, height);
  }
  let pipeline = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  if (rect) pipeline = pipeline.extract({ left: rect.x, top: rect.y, width: rect.width, height: rect.height });
  const { data, info } = await pipeline
    .resize(width, height, { fit: "fill", kernel: "linear" })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return createImage(info.width, info.height, new Uint8Array(data.buffer, data.byteOffset, data.length));
}

/** The integer pixel rectangle `rect` of `img`. */
export function cropImage(img: RgbImage, rect: Rect): RgbImage {
  const out = new Uint8Array(rect.width * rect.height * 3);
  for (let y = 0; y < rect.height; y++) {
    const from = ((rect.y + y) * img.width + rect.x) * 3;
    out.set(img.data.subarray(from, from + rect.width * 3), y * rect.width * 3);
  }
  return createImage(rect.width, rect.height, out);
}

/** Area-weighted downscale, separable: rows first, then columns, in float. */
function resizeArea(img: RgbImage, width: number, height: number): RgbImage {
  const xw = areaWeights(img.width, width);
  const yw = areaWeights(img.height, height);
  const tmp = new Float32Array(img.height * width * 3);
  for (let y = 0; y < img.height; y++) {
    for (let ox = 0; ox < width; ox++) {
      const w = xw[ox] as AreaSpan;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = 0; k < w.weights.length; k++) {
        const s = (y * img.width + w.start + k) * 3;
        const f = w.weights[k] as number;
        r += (img.data[s] as number) * f;
        g += (img.data[s + 1] as number) * f;
        b += (img.data[s + 2] as number) * f;
      }
      const d = (y * width + ox) * 3;
      tmp[d] = r;
      tmp[d + 1] = g;
      tmp[d + 2] = b;
    }
  }
  const out = new Uint8Array(width * height * 3);
  for (let oy = 0; oy < height; oy++) {
    const w = yw[oy] as AreaSpan;
    for (let i = 0; i < width * 3; i++) {
      let acc = 0;
      for (let k = 0; k < w.weights.length; k++)
        acc += (tmp[(w.start + k) * width * 3 + i] as number) * (w.weights[k] as number);
      out[oy * width * 3 + i] = Math.round(acc);
    }
  }
  return createImage(width, height, out);
}

interface AreaSpan {
  start: number;
  weights: Float64Array;
}

/** For each output index, the input indices it covers and their overlap fractions (summing to 1). */
function areaWeights(inSize: number, outSize: number): AreaSpan[] {
  const scale = inSize / outSize;
  const spans: AreaSpan[] = [];
  for (let o = 0; o < outSize; o++) {
    const lo = o * scale;
    const hi = lo + scale;
    const start = Math.floor(lo);
    const end = Math.min(Math.ceil(hi), inSize);
    const weights = new Float64Array(end - start);
    for (let i = start; i < end; i++) weights[i - start] = (Math.min(hi, i + 1) - Math.max(lo, i)) / scale;
    spans.push({ start, weights });
  }
  return spans;
}

/**
 * Nearest-neighbour mask resize with pixel-centre alignment: output pixel x samples input
 * floor((x + 0.5) * inW / outW). `rect` (default: the whole mask) selects the source region,
 * so crop and resize are one pass.
 */
export function resizeMask(mask: Mask, width: number, height: number, rect?: Rect): Mask {
  if (!rect && mask.width === width && mask.height === height) return mask;
  return createMask(width, height, sampleNearest(mask, width, height, rect));
}

/**
 * `resizeMask`'s sampling on any row-major single-channel plane (8- or 16-bit stored values): the values at the
 * output's pixel centres, in a new array of the input's type.
 */
export function sampleNearest<T extends Uint8Array | Uint16Array>(
  plane: { data: T; width: number; height: number },
  width: number,
  height: number,
  rect?: Rect,
): T {
  const r = rect ?? { x: 0, y: 0, width: plane.width, height: plane.height };
  const { x, y, width: rw, height: rh } = r;
  const whole = [x, y, rw, rh].every(Number.isInteger);
  if (!whole || x < 0 || y < 0 || rw < 1 || rh < 1 || x + rw > plane.width || y + rh > plane.height) {
    // Outside the mask the lookup would read other rows or undefined (stored as 0): values the mask does not hold.
    throw new RangeError(
      `resizeMask: rect ${x},${y} ${rw}x${rh} is not inside the ${plane.width}x${plane.height} mask`,
    );
  }
  const src = plane.data;
  const out = (src instanceof Uint16Array ? new Uint16Array(width * height) : new Uint8Array(width * height)) as T;
  const cols = new Int32Array(width);
  for (let x = 0; x < width; x++) cols[x] = r.x + Math.min(r.width - 1, Math.floor(((x + 0.5) * r.width) / width));
  for (let y = 0; y < height; y++) {
    const sy = r.y + Math.min(r.height - 1, Math.floor(((y + 0.5) * r.height) / height));
    const row = sy * plane.width;
    for (let x = 0; x < width; x++) out[y * width + x] = src[row + (cols[x] as number)] as number;
  }
  return out;
}
