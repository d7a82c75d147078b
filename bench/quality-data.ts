/**
 * Dataset views for bench/quality.ts: decoded samples kept in memory, samples cut into tiles, and a dataset held
 * as plain arrays (what the PyTorch peer reads). All keep the base dataset's classes, ignore index and palette.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SegkitError } from "../src/core/errors.js";
import { createImage, createMask } from "../src/core/image.js";
import type { SkippedSample } from "../src/core/skipped.js";
import { type Dataset, type Sample, viewInfo } from "../src/data/dataset.js";
import { type BatchOptions, batches } from "../src/data/loader.js";

export { cached } from "../src/data/dataset.js";

/**
 * `ds` cut into tiles: every sample (at most `grid * tile` pixels each way, more than `(grid - 1) * tile`) is
 * padded at the bottom and right to `grid * tile` (image black, mask the ignore index) and cut into
 * `grid` = [rows, cols] tiles of `tile` = [height, width], row-major. Sample i's tile k is index
 * `i * rows * cols + k`, id `<id>@r<row>c<col>`. Padding is never scored, so a confusion matrix over all the tiles
 * of an image equals the one over the image.
 */
export function tiled(ds: Dataset, tile: readonly [number, number], grid: readonly [number, number]): Dataset {
  const [th, tw] = tile;
  const [rows, cols] = grid;
  const per = rows * cols;
  const where = (j: number) => {
    const i = Math.floor(j / per);
    const k = j % per;
    return { i, r: Math.floor(k / cols), c: k % cols };
  };
  const get = async (j: number): Promise<Sample> => {
    const { i, r, c } = where(j);
    const s = await ds.get(i);
    const { width: w, height: h } = s.image;
    if (h > rows * th || h <= (rows - 1) * th || w > cols * tw || w <= (cols - 1) * tw) {
      throw new SegkitError(`${w}x${h} image does not make ${rows}x${cols} tiles of ${tw}x${th}`, {
        file: ds.files(i)[0] ?? ds.id(i),
      });
    }
    const image = createImage(tw, th);
    const mask = createMask(tw, th, new Uint8Array(tw * th).fill(ds.ignoreIndex));
    const x0 = c * tw;
    const span = Math.min(tw, w - x0);
    for (let y = 0; y < th && r * th + y < h; y++) {
      const from = (r * th + y) * w + x0;
      image.data.set(s.image.data.subarray(from * 3, (from + span) * 3), y * tw * 3);
      mask.data.set(s.mask.data.subarray(from, from + span), y * tw);
    }
    return { id: `${s.id}@r${r}c${c}`, image, mask };
  };
  return {
    ...viewInfo(ds),
    length: ds.length * per,
    id: (j) => {
      const { i, r, c } = where(j);
      return `${ds.id(i)}@r${r}c${c}`;
    },
    files: (j) => ds.files(where(j).i),
    get,
  };
}

/** A dataset as arrays at one size: images uint8 [n, H, W, 3], masks uint8 class indices [n, H, W]. */
export interface SampleArrays {
  ids: string[];
  n: number;
  height: number;
  width: number;
  images: Uint8Array;
  masks: Uint8Array;
}

/**
 * Every sample of `ds` resized to `size` [H, W] (image bilinear, mask nearest: what `fit` and `batches` do), in
 * order, as arrays; without augmentation, or with `augment` as `fit`'s epoch `epoch` with seed `seed` draws it (the
 * same draws: they depend only on seed, epoch and sample). Samples that fail to load are reported and left out.
 */
export async function loadArrays(
  ds: Dataset,
  size: readonly [number, number],
  onSkip: (skip: SkippedSample) => void,
  augmented?: { augment: NonNullable<BatchOptions["augment"]>; seed: number; epoch: number },
): Promise<SampleArrays> {
  const [height, width] = size;
  const parts: { images: Uint8Array; masks: Uint8Array; ids: readonly string[] }[] = [];
  for await (const b of batches(ds, { size, batchSize: 32, onSkip, ...augmented })) parts.push(b);
  const n = parts.reduce((sum, p) => sum + p.ids.length, 0);
  const images = new Uint8Array(n * height * width * 3);
  const masks = new Uint8Array(n * height * width);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * height * width * 3);
    masks.set(p.masks, at * height * width);
    at += p.ids.length;
  }
  return { ids: parts.flatMap((p) => [...p.ids]), n, height, width, images, masks };
}

/** `a` as a dataset with the classes, ignore index and palette of `base` (sample i = row i of the arrays). */
export function arraysDataset(base: Dataset, a: SampleArrays): Dataset {
  const px = a.height * a.width;
  const at = (i: number) => {
    if (!(i >= 0 && i < a.n)) throw new RangeError(`sample ${i} out of range 0..${a.n - 1}`);
    return i;
  };
  return {
    ...viewInfo(base),
    length: a.n,
    id: (i) => a.ids[at(i)] as string,
    files: () => [],
    get: async (i) => ({
      id: a.ids[at(i)] as string,
      image: createImage(a.width, a.height, a.images.subarray(i * px * 3, (i + 1) * px * 3)),
      mask: createMask(a.width, a.height, a.masks.subarray(i * px, (i + 1) * px)),
    }),
  };
}

/** Writes `a` to `dir` as `<name>-images.bin` and `<name>-masks.bin` (raw uint8) and returns how to read them. */
export async function writeArrays(dir: string, name: string, a: SampleArrays) {
  const images = join(dir, `${name}-images.bin`);
  const masks = join(dir, `${name}-masks.bin`);
  await writeFile(images, a.images);
  await writeFile(masks, a.masks);
  return { n: a.n, images, masks };
}
