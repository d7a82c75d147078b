import { SegkitError } from "../core/errors.js";
import type { Rect } from "../io/resize.js";

/**
 * Sliding-window (tiled) prediction geometry, pure functions. Coordinates are pixels of the original image,
 * windows are `Rect`s (x, y of the top-left corner, width, height) of the model's input size.
 *
 * Window placement follows nnU-Net (`compute_steps_for_sliding_window`): along an axis of `size` pixels, the
 * fewest windows of `tile` pixels whose step is at most `tile * (1 - overlap)` (and at least 1), spread evenly so that the first
 * starts at 0 and the last ends at `size`: n = ceil((size - tile) / (tile * (1 - overlap))) + 1 windows at
 * round(i * (size - tile) / (n - 1)). An axis shorter than the tile gets one window centred on it
 * (start -floor((tile - size) / 2)): the image is padded on both sides, as MONAI and nnU-Net pad, here by
 * repeating the edge pixels.
 *
 * Blending: each window's logits are weighted by an importance map and the weighted sum is divided by the sum of
 * weights, per pixel (MONAI `sliding_window_inference`, nnU-Net): "gaussian" (the default of both when blending)
 * weighs a window's centre over its edges, where the model sees less context; "constant" is a plain mean.
 */

export type TileBlend = "gaussian" | "constant";

export interface TileOptions {
  /** Fraction of a window shared with its neighbour, 0 <= overlap < 1 (at least; even spreading adds some). */
  overlap?: number;
  blend?: TileBlend;
}

export const DEFAULT_TILE_OPTIONS: Required<TileOptions> = { overlap: 0.25, blend: "gaussian" };

/** Sigma of the gaussian importance map as a fraction of the window side (MONAI `sigma_scale`, nnU-Net 1/8). */
export const GAUSSIAN_SIGMA_SCALE = 0.125;
/** Lowest weight of the importance map, so that every pixel of a window counts (MONAI and nnU-Net floor it too). */
export const MIN_TILE_WEIGHT = 1e-3;

export function validateTileOptions(options: TileOptions = {}): Required<TileOptions> {
  const o = {
    overlap: options.overlap ?? DEFAULT_TILE_OPTIONS.overlap,
    blend: options.blend ?? DEFAULT_TILE_OPTIONS.blend,
  };
  if (!(o.overlap >= 0 && o.overlap < 1)) {
    throw new SegkitError(`tile overlap must be a number from 0 to below 1, got ${o.overlap}`);
  }
  if (o.blend !== "gaussian" && o.blend !== "constant") {
    throw new SegkitError(`unknown tile blend "${o.blend}"`, { hint: "use one of: gaussian, constant" });
  }
  return o;
}

/** Start positions of the windows along one axis (see the module doc); the last window ends at `size`. */
export function windowStarts(size: number, tile: number, overlap: number): number[] {
  if (![size, tile].every((v) => Number.isInteger(v) && v >= 1) || !(overlap >= 0 && overlap < 1)) {
    throw new RangeError(`windowStarts: size ${size}, tile ${tile} must be positive integers, overlap in [0, 1)`);
  }
  if (size <= tile) return [size === tile ? 0 : -Math.floor((tile - size) / 2)];
  const n = Math.ceil((size - tile) / Math.max(1, tile * (1 - overlap))) + 1;
  const step = (size - tile) / (n - 1);
  return Array.from({ length: n }, (_, i) => Math.round(i * step));
}

/** The windows covering a width x height image, row by row, each `tileWidth` x `tileHeight`. */
export function windowGrid(
  width: number,
  height: number,
  tileWidth: number,
  tileHeight: number,
  overlap: number,
): Rect[] {
  const xs = windowStarts(width, tileWidth, overlap);
  return windowStarts(height, tileHeight, overlap).flatMap((y) =>
    xs.map((x) => ({ x, y, width: tileWidth, height: tileHeight })),
  );
}

/** One axis of the gaussian importance map: exp(-d^2 / 2 sigma^2), d from the window centre to a pixel centre. */
function gaussian1d(n: number): Float64Array {
  const sigma = GAUSSIAN_SIGMA_SCALE * n;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.exp(-((i + 0.5 - n / 2) ** 2) / (2 * sigma * sigma));
  const max = Math.max(...out);
  return out.map((v) => v / max);
}

/**
 * The importance map of a `height` x `width` window, row-major: all ones ("constant"), or the product of two 1-D
 * gaussians ("gaussian", 1 at the centre, floored at `MIN_TILE_WEIGHT`).
 */
export function blendWeights(width: number, height: number, blend: TileBlend): Float32Array {
  const out = new Float32Array(width * height);
  if (blend === "constant") return out.fill(1);
  const gx = gaussian1d(width);
  const gy = gaussian1d(height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      out[y * width + x] = Math.max(MIN_TILE_WEIGHT, (gy[y] as number) * (gx[x] as number));
    }
  }
  return out;
}
