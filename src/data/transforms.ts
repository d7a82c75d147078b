import { createImage, createMask, type Mask, type RgbImage } from "../core/image.js";
import type { Rng } from "../core/random.js";
import { type ImageResample, type Rect, resizeImage, resizeMask } from "../io/resize.js";
import type { Sample } from "./dataset.js";

/**
 * Joint augmentation: every geometric change is applied to image and mask with the same parameters
 * (image resampled bilinearly, mask by nearest neighbour, so no new labels); photometric changes touch the image only.
 */
export interface AugmentOptions {
  /** Probability of a horizontal flip. */
  hflip?: number;
  /** Probability of a vertical flip. */
  vflip?: number;
  /**
   * Probability of a quarter turn (clockwise; square outputs only). With hflip and vflip at 0.5, 0.5 draws each of
   * the 8 flips and rotations by 90 degrees equally often (what patch training on retinal or EM images uses).
   */
  rot90?: number;
  /** Random scale-crop: the crop's area as a fraction of the image, drawn from [min, max] (1 = no crop). */
  scale?: readonly [number, number];
  /** Random scale-crop: the crop's aspect ratio (width / height) range, drawn log-uniformly. */
  ratio?: readonly [number, number];
  /** Rotation by an angle drawn from [-rotate, rotate] degrees; corners revealed are black / ignored. */
  rotate?: number;
  /** Brightness: add delta * 255 with delta drawn from [-brightness, brightness]. */
  brightness?: number;
  /** Contrast: scale around the image mean by a factor drawn from [1 - contrast, 1 + contrast]. */
  contrast?: number;
}

export const DEFAULT_AUGMENT: Required<AugmentOptions> = {
  hflip: 0.5,
  vflip: 0,
  rot90: 0,
  scale: [0.5, 1],
  ratio: [3 / 4, 4 / 3],
  rotate: 10,
  brightness: 0.2,
  contrast: 0.2,
};

export interface TransformOptions {
  /** Output size in pixels. */
  width: number;
  height: number;
  /** Joint augmentation; off when undefined. Needs `rng`. */
  augment?: AugmentOptions;
  rng?: Rng;
  resample?: ImageResample;
  /** Mask value for pixels revealed by rotation. */
  ignoreIndex: number;
}

/**
 * A random crop rectangle in integer pixels (the torchvision RandomResizedCrop recipe): area fraction and aspect
 * ratio drawn from the ranges, up to 10 tries to fit, else the whole image.
 */
export function randomCropRect(
  width: number,
  height: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
  rng: Rng,
): Rect {
  const area = width * height;
  for (let t = 0; t < 10; t++) {
    const a = area * rng.uniform(scale[0], scale[1]);
    const r = Math.exp(rng.uniform(Math.log(ratio[0]), Math.log(ratio[1])));
    const w = Math.round(Math.sqrt(a * r));
    const h = Math.round(Math.sqrt(a / r));
    if (w >= 1 && h >= 1 && w <= width && h <= height) {
      return { x: rng.int(0, width - w + 1), y: rng.int(0, height - h + 1), width: w, height: h };
    }
  }
  return { x: 0, y: 0, width, height };
}

export function flipImage(img: RgbImage): RgbImage {
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const s = (y * img.width + x) * 3;
      const d = (y * img.width + img.width - 1 - x) * 3;
      out[d] = img.data[s] as number;
      out[d + 1] = img.data[s + 1] as number;
      out[d + 2] = img.data[s + 2] as number;
    }
  }
  return createImage(img.width, img.height, out);
}

export function flipMask(mask: Mask): Mask {
  const out = new Uint8Array(mask.data.length);
  for (let y = 0; y < mask.height; y++) {
    const row = y * mask.width;
    for (let x = 0; x < mask.width; x++) out[row + mask.width - 1 - x] = mask.data[row + x] as number;
  }
  return createMask(mask.width, mask.height, out);
}

/**
 * Image and mask with output pixel (x, y) taken from input pixel `from(x, y)` (an exact flip or quarter turn);
 * the output is `width` x `height`.
 */
function remapSample(
  sample: { image: RgbImage; mask: Mask },
  width: number,
  height: number,
  from: (x: number, y: number) => [number, number],
): { image: RgbImage; mask: Mask } {
  const { image: img, mask } = sample;
  const image = createImage(width, height);
  const out = createMask(width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [sx, sy] = from(x, y);
      const s = sy * img.width + sx;
      const d = y * width + x;
      out.data[d] = mask.data[s] as number;
      image.data.set(img.data.subarray(s * 3, s * 3 + 3), d * 3);
    }
  }
  return { image, mask: out };
}

/** Image and mask flipped upside down. */
export function flipVertical(sample: { image: RgbImage; mask: Mask }): { image: RgbImage; mask: Mask } {
  const { width: w, height: h } = sample.image;
  return remapSample(sample, w, h, (x, y) => [x, h - 1 - y]);
}

/** Image and mask turned a quarter clockwise (a w x h input gives h x w). */
export function rotate90(sample: { image: RgbImage; mask: Mask }): { image: RgbImage; mask: Mask } {
  const { width: w, height: h } = sample.image;
  return remapSample(sample, h, w, (x, y) => [y, h - 1 - x]);
}

/**
 * Rotates image (bilinear) and mask (nearest) by `degrees` about the image centre, same size out.
 * Pixels whose source falls outside become black in the image and `fill` in the mask.
 */
export function rotateSample(
  img: RgbImage,
  mask: Mask,
  degrees: number,
  fill: number,
): { image: RgbImage; mask: Mask } {
  const { width: w, height: h } = img;
  const src = img.data;
  const cos = Math.cos((degrees * Math.PI) / 180);
  const sin = Math.sin((degrees * Math.PI) / 180);
  const outImg = new Uint8Array(w * h * 3);
  const outMask = new Uint8Array(w * h).fill(fill);
  // Source pixel value of channel c at (x, y), 0 outside the image.
  const at = (x: number, y: number, c: number): number =>
    x >= 0 && y >= 0 && x < w && y < h ? (src[(y * w + x) * 3 + c] as number) : 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // Inverse map of the pixel centre (x + 0.5, y + 0.5) about the image centre into the source.
      const dx = x + 0.5 - w / 2;
      const dy = y + 0.5 - h / 2;
      const sx = cos * dx + sin * dy + w / 2 - 0.5;
      const sy = -sin * dx + cos * dy + h / 2 - 0.5;
      const o = y * w + x;
      const nx = Math.round(sx);
      const ny = Math.round(sy);
      if (nx >= 0 && ny >= 0 && nx < w && ny < h) outMask[o] = mask.data[ny * w + nx] as number;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      if (x0 < -1 || y0 < -1 || x0 >= w || y0 >= h) continue;
      const fx = sx - x0;
      const fy = sy - y0;
      const inside = x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h;
      const i00 = (y0 * w + x0) * 3;
      const i10 = i00 + 3;
      const i01 = i00 + w * 3;
      const i11 = i01 + 3;
      for (let c = 0; c < 3; c++) {
        // Interior pixels (nearly all) index directly; only the border band goes through the bounds check.
        const p00 = inside ? (src[i00 + c] as number) : at(x0, y0, c);
        const p10 = inside ? (src[i10 + c] as number) : at(x0 + 1, y0, c);
        const p01 = inside ? (src[i01 + c] as number) : at(x0, y0 + 1, c);
        const p11 = inside ? (src[i11 + c] as number) : at(x0 + 1, y0 + 1, c);
        const top = p00 + (p10 - p00) * fx;
        const bottom = p01 + (p11 - p01) * fx;
        outImg[o * 3 + c] = Math.round(top + (bottom - top) * fy);
      }
    }
  }
  return { image: createImage(w, h, outImg), mask: createMask(w, h, outMask) };
}

/** Brightness and contrast on the image only: v' = (v - mean) * contrast + mean + brightness * 255, clamped. */
export function adjustColor(img: RgbImage, brightness: number, contrast: number): RgbImage {
  let sum = 0;
  for (let i = 0; i < img.data.length; i++) sum += img.data[i] as number;
  const mean = sum / img.data.length;
  const out = new Uint8Array(img.data.length);
  const add = mean * (1 - contrast) + brightness * 255;
  for (let i = 0; i < img.data.length; i++) {
    out[i] = Math.min(255, Math.max(0, Math.round((img.data[i] as number) * contrast + add)));
  }
  return createImage(img.width, img.height, out);
}

/**
 * Brings a sample to the output size, with joint augmentation when asked:
 * crop (random scale-crop) and resize in one pass -> horizontal flip -> vertical flip -> quarter turn -> rotation ->
 * brightness/contrast. A draw is made only for an option that is on, so the draws of the older options (and the
 * augmentations of existing seeds) do not change.
 */
export async function transformSample(sample: Sample, options: TransformOptions): Promise<Sample> {
  const { width, height, augment, rng } = options;
  if (augment && !rng) throw new Error("transformSample: augmentation needs an rng");
  const a = augment ? { ...DEFAULT_AUGMENT, ...augment } : undefined;
  const src = sample.image;
  // 1. Crop region (whole image without augmentation), resized to the output size: image bilinear, mask nearest.
  const rect = a && rng && a.scale[0] < 1 ? randomCropRect(src.width, src.height, a.scale, a.ratio, rng) : undefined;
  let image = await resizeImage(src, width, height, options.resample ?? "bilinear", rect);
  let mask = resizeMask(sample.mask, width, height, rect);
  if (!a || !rng) return { id: sample.id, image, mask };
  // 2. Flips and quarter turns of both.
  if (rng.next() < a.hflip) {
    image = flipImage(image);
    mask = flipMask(mask);
  }
  if (a.vflip > 0 && rng.next() < a.vflip) ({ image, mask } = flipVertical({ image, mask }));
  if (a.rot90 > 0 && width === height && rng.next() < a.rot90) ({ image, mask } = rotate90({ image, mask }));
  // 3. Rotation of both about the centre; revealed corners are ignored in the mask.
  if (a.rotate > 0) {
    const deg = rng.uniform(-a.rotate, a.rotate);
    ({ image, mask } = rotateSample(image, mask, deg, options.ignoreIndex));
  }
  // 4. Photometric jitter, image only.
  if (a.brightness > 0 || a.contrast > 0) {
    image = adjustColor(image, rng.uniform(-a.brightness, a.brightness), rng.uniform(1 - a.contrast, 1 + a.contrast));
  }
  return { id: sample.id, image, mask };
}
