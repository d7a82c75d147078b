/**
 * Pixel containers shared by every module. Pure data: no sharp, no tfjs, no fs.
 *
 * Layouts, stated once:
 * - `RgbImage.data`: uint8, row-major HWC, 3 channels: `data[(y * width + x) * 3 + c]`, c = R, G, B.
 * - `Mask.data`: uint8 class indices, row-major HW: `data[y * width + x]`; the dataset's ignore index
 *   (255 by default) marks pixels that count for nothing (void, outside the valid region).
 */

export interface RgbImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

export interface Mask {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

/** The ignore index used when a dataset names none; the torchvision / mmseg convention for 8-bit masks. */
export const DEFAULT_IGNORE_INDEX = 255;

export function createImage(width: number, height: number, data?: Uint8Array): RgbImage {
  const buf = data ?? new Uint8Array(width * height * 3);
  if (buf.length !== width * height * 3) {
    throw new RangeError(`RgbImage ${width}x${height} needs ${width * height * 3} bytes, got ${buf.length}`);
  }
  return { data: buf, width, height };
}

export function createMask(width: number, height: number, data?: Uint8Array): Mask {
  const buf = data ?? new Uint8Array(width * height);
  if (buf.length !== width * height) {
    throw new RangeError(`Mask ${width}x${height} needs ${width * height} bytes, got ${buf.length}`);
  }
  return { data: buf, width, height };
}

/** Per-value pixel counts of a mask (index = value 0..255). */
export function maskHistogram(mask: Mask, into: Float64Array = new Float64Array(256)): Float64Array {
  const d = mask.data;
  for (let i = 0; i < d.length; i++) into[d[i] as number] = (into[d[i] as number] as number) + 1;
  return into;
}
