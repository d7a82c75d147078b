import { SegkitError } from "../core/errors.js";
import { createRng, deriveSeed, permutation } from "../core/random.js";
import type { SkippedSample } from "../core/skipped.js";
import type { ImageResample } from "../io/resize.js";
import { type Dataset, type Sample, skippedFrom, subset } from "./dataset.js";
import { type AugmentOptions, transformSample } from "./transforms.js";

/**
 * Seeded split of 0..n-1 into parts by fractions (summing to at most 1; the last part takes the rounding rest
 * when they sum to 1). The same (n, fractions, seed) always gives the same parts.
 */
export function splitIndices(n: number, fractions: readonly number[], seed: number): number[][] {
  const total = fractions.reduce((a, b) => a + b, 0);
  if (fractions.some((f) => !(f >= 0)) || total > 1 + 1e-9) {
    throw new RangeError(`split fractions must be >= 0 and sum to at most 1, got ${fractions.join(", ")}`);
  }
  const order = permutation(n, createRng(seed));
  const parts: number[][] = [];
  let start = 0;
  fractions.forEach((f, k) => {
    const last = k === fractions.length - 1 && Math.abs(total - 1) < 1e-9;
    const end = last ? n : Math.min(n, start + Math.round(f * n));
    parts.push(order.slice(start, end));
    start = end;
  });
  return parts;
}

/** `splitIndices` applied to a dataset: e.g. `splitDataset(ds, [0.8, 0.2], 42)` -> [train, val]. */
export function splitDataset(ds: Dataset, fractions: readonly number[], seed: number): Dataset[] {
  return splitIndices(ds.length, fractions, seed).map((idx) => subset(ds, idx));
}

/**
 * A batch, channels last. `images`: uint8 [B, H, W, 3]; `masks`: uint8 class indices [B, H, W]
 * (ignore index where pixels count for nothing); `ids[b]` names sample b.
 */
export interface Batch {
  readonly images: Uint8Array;
  readonly masks: Uint8Array;
  readonly ids: readonly string[];
  readonly size: number;
  readonly height: number;
  readonly width: number;
}

export interface BatchOptions {
  batchSize?: number;
  /** Output size in pixels: a number for square, or [height, width]. */
  size: number | readonly [number, number];
  /** Shuffle each epoch (seeded by seed and epoch). */
  shuffle?: boolean;
  seed?: number;
  /** Epoch number: with `seed`, selects the shuffle order and augmentation draws. */
  epoch?: number;
  augment?: AugmentOptions | boolean;
  resample?: ImageResample;
  /** Samples decoded ahead of the consumer (bounds memory; decoding runs on libuv threads meanwhile). */
  prefetch?: number;
  /** Keep a final batch smaller than batchSize (default true). */
  keepLast?: boolean;
  /** Throw on the first bad sample instead of reporting it and going on. */
  strict?: boolean;
  /** Called for each sample that fails to load or decode; the sample is left out of its batch. */
  onSkip?: (skip: SkippedSample) => void;
}

export const DEFAULT_BATCH_OPTIONS = {
  batchSize: 8,
  shuffle: false,
  seed: 0,
  epoch: 0,
  prefetch: 16,
  keepLast: true,
  strict: false,
} as const;

/**
 * Loads, resizes and (optionally) augments samples and yields them in batches, keeping up to `prefetch`
 * samples in flight so that decoding overlaps the consumer's work. Each sample's augmentation draws depend only
 * on (seed, epoch, sample index), so results do not depend on timing. Bad samples are reported through `onSkip`
 * (with their files and the reason) and left out, or thrown with `strict`.
 */
export async function* batches(ds: Dataset, options: BatchOptions): AsyncGenerator<Batch> {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const o = { ...DEFAULT_BATCH_OPTIONS, ...given } as typeof DEFAULT_BATCH_OPTIONS & BatchOptions;
  const [height, width] = typeof o.size === "number" ? [o.size, o.size] : o.size;
  if (![o.batchSize, height, width, o.prefetch].every((v) => Number.isInteger(v) && v >= 1)) {
    throw new RangeError("batches: batchSize, size and prefetch must be positive integers");
  }
  const augment = o.augment === true ? {} : o.augment || undefined;
  const order = o.shuffle
    ? permutation(ds.length, createRng(deriveSeed(o.seed, o.epoch)))
    : Array.from({ length: ds.length }, (_, i) => i);

  const load = async (i: number): Promise<Sample | SkippedSample> => {
    try {
      const sample = await ds.get(i);
      return await transformSample(sample, {
        width,
        height,
        ignoreIndex: ds.ignoreIndex,
        ...(o.resample ? { resample: o.resample } : {}),
        ...(augment ? { augment, rng: createRng(deriveSeed(o.seed, o.epoch, i)) } : {}),
      });
    } catch (err) {
      return skippedFrom(ds, i, err);
    }
  };

  const inFlight: Promise<Sample | SkippedSample>[] = [];
  let next = 0;
  const fill = () => {
    while (inFlight.length < o.prefetch && next < order.length) inFlight.push(load(order[next++] as number));
  };
  let pending: Sample[] = [];
  const emit = (group: Sample[]): Batch => {
    const images = new Uint8Array(group.length * height * width * 3);
    const masks = new Uint8Array(group.length * height * width);
    group.forEach((s, b) => {
      images.set(s.image.data, b * height * width * 3);
      masks.set(s.mask.data, b * height * width);
    });
    return { images, masks, ids: group.map((s) => s.id), size: group.length, height, width };
  };
  fill();
  while (inFlight.length > 0) {
    const result = await (inFlight.shift() as Promise<Sample | SkippedSample>);
    fill();
    if ("reason" in result) {
      if (o.strict) throw new SegkitError(result.reason, { file: result.path });
      o.onSkip?.(result);
      continue;
    }
    pending.push(result);
    if (pending.length === o.batchSize) {
      yield emit(pending);
      pending = [];
    }
  }
  if (pending.length > 0 && o.keepLast) yield emit(pending);
}
