import type { RgbImage } from "../core/image.js";
import { createRng, permutation } from "../core/random.js";
import type { SkippedSample } from "../core/skipped.js";
import { makeGrid, overlayMask } from "../io/write.js";
import { type Dataset, subset } from "./dataset.js";
import { batches } from "./loader.js";
import type { AugmentOptions } from "./transforms.js";

export interface PreviewOptions {
  /** Number of samples shown. */
  n?: number;
  /** Tile size in pixels (samples are resized to it, as training sees them). */
  size?: number;
  /** Show training-time augmentation. */
  augment?: AugmentOptions | boolean;
  /** Picks which samples (a seeded random choice) and the augmentation draws. */
  seed?: number;
  alpha?: number;
  onSkip?: (skip: SkippedSample) => void;
}

export const DEFAULT_PREVIEW = { n: 16, size: 192, seed: 0, alpha: 0.45 } as const;

/**
 * A grid of samples with their masks overlaid in the dataset's palette (background left clear),
 * about square: ceil(sqrt(n)) tiles a row. `shown` counts the tiles (samples that failed to load are left out).
 */
export async function previewGrid(
  ds: Dataset,
  options: PreviewOptions = {},
): Promise<{ grid: RgbImage; shown: number }> {
  const o = { ...DEFAULT_PREVIEW, ...options };
  const pick = permutation(ds.length, createRng(o.seed))
    .slice(0, o.n)
    .sort((a, b) => a - b);
  const chosen = subset(ds, pick);
  const tiles: RgbImage[] = [];
  for await (const b of batches(chosen, {
    size: o.size,
    batchSize: 1,
    seed: o.seed,
    augment: o.augment ?? false,
    ...(o.onSkip ? { onSkip: o.onSkip } : {}),
  })) {
    const px = b.width * b.height;
    const image = { data: b.images.subarray(0, px * 3), width: b.width, height: b.height };
    const mask = { data: b.masks.subarray(0, px), width: b.width, height: b.height };
    tiles.push(
      overlayMask(image, mask, {
        alpha: o.alpha,
        ignoreIndex: ds.ignoreIndex,
        ...(ds.palette ? { palette: ds.palette } : {}),
        ...(ds.backgroundClass !== undefined ? { skipClasses: [ds.backgroundClass] } : {}),
      }),
    );
  }
  const cols = Math.max(1, Math.ceil(Math.sqrt(tiles.length)));
  const rows: RgbImage[][] = [];
  for (let i = 0; i < tiles.length; i += cols) rows.push(tiles.slice(i, i + cols));
  return { grid: makeGrid(rows), shown: tiles.length };
}
