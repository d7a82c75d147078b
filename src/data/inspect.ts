import { maskHistogram } from "../core/image.js";
import type { SkippedSample } from "../core/skipped.js";
import { type Dataset, skippedFrom } from "./dataset.js";

export interface SizeStats {
  min: number;
  median: number;
  max: number;
}

/**
 * What `inspectDataset` found. Pixel fractions are of all pixels of the usable pairs, so the class fractions
 * and `ignoredFraction` sum to 1.
 */
export interface DatasetReport {
  format: string;
  /** Usable image+mask pairs (decoded, sizes agree, mask values known). */
  pairs: number;
  /** Pairs the loader listed, usable or not. */
  listed: number;
  classes: { index: number; name: string; pixels: number; pixelFraction: number }[];
  ignoreIndex: number;
  ignoredPixels: number;
  ignoredFraction: number;
  totalPixels: number;
  width: SizeStats;
  height: SizeStats;
  /** Every sample left out, with its file and reason: unpaired files (from listing) and samples that failed to load. */
  skipped: SkippedSample[];
}

function stats(values: number[]): SizeStats {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return { min: 0, median: 0, max: 0 };
  const mid = s.length >> 1;
  const median = s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { min: s[0] as number, median, max: s[s.length - 1] as number };
}

/**
 * Decodes every sample once (a few at a time) and reports pairs, image sizes, per-class pixel fractions,
 * ignored pixels and every skipped sample with its reason (`strict`: the first bad sample is thrown instead).
 * `onProgress(done, total)` follows the work.
 */
export async function inspectDataset(
  ds: Dataset,
  options: { concurrency?: number; strict?: boolean; onProgress?: (done: number, total: number) => void } = {},
): Promise<DatasetReport> {
  const hist = new Float64Array(256);
  const widths: number[] = [];
  const heights: number[] = [];
  const failed: SkippedSample[] = [];
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < ds.length) {
      const i = next++;
      try {
        const s = await ds.get(i);
        maskHistogram(s.mask, hist);
        widths.push(s.image.width);
        heights.push(s.image.height);
      } catch (err) {
        if (options.strict) throw err;
        failed.push(skippedFrom(ds, i, err));
      }
      options.onProgress?.(++done, ds.length);
    }
  };
  const concurrency = options.concurrency ?? 4;
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new RangeError("concurrency must be an integer >= 1");
  await Promise.all(Array.from({ length: concurrency }, worker));
  const total = hist.reduce((a, b) => a + b, 0);
  const frac = (n: number) => (total > 0 ? n / total : 0);
  const ignored = hist[ds.ignoreIndex] ?? 0;
  return {
    format: ds.format,
    pairs: ds.length - failed.length,
    listed: ds.length,
    classes: ds.classNames.map((name, index) => {
      const pixels = hist[index] ?? 0;
      return { index, name, pixels, pixelFraction: frac(pixels) };
    }),
    ignoreIndex: ds.ignoreIndex,
    ignoredPixels: ignored,
    ignoredFraction: frac(ignored),
    totalPixels: total,
    width: stats(widths),
    height: stats(heights),
    skipped: [...ds.skipped, ...failed.sort((a, b) => a.path.localeCompare(b.path))],
  };
}
