import type { Mask } from "../core/image.js";
import type { SkippedSample } from "../core/skipped.js";
import { type Dataset, skippedFrom } from "../data/dataset.js";

/**
 * Class pixel statistics of a dataset and median-frequency balancing (Eigen & Fergus 2015, as SegNet weights
 * CamVid's classes):
 *   freq(c) = pixels of class c / total scored pixels of the images in which c appears,
 *   weight(c) = median over the present classes of freq / freq(c).
 * Rare classes get weights above 1, frequent ones below. A class that appears in no image gets weight 1 (with no
 * pixel of it in the training set, its weight changes no cross-entropy term). Ignored pixels count for nothing.
 */

/** Per class: its pixels (`pixels[c]`) and the scored pixels of the images that contain it (`imagePixels[c]`). */
export interface ClassFrequencies {
  pixels: number[];
  imagePixels: number[];
}

/** Counts one mask into `into` (created for `numClasses` classes when absent). Values >= numClasses are skipped. */
export function countClassPixels(mask: Mask, numClasses: number, into?: ClassFrequencies): ClassFrequencies {
  const out = into ?? { pixels: new Array(numClasses).fill(0), imagePixels: new Array(numClasses).fill(0) };
  const hist = new Float64Array(256);
  for (let i = 0; i < mask.data.length; i++) {
    const v = mask.data[i] as number;
    hist[v] = (hist[v] as number) + 1;
  }
  let scored = 0;
  for (let c = 0; c < numClasses; c++) scored += hist[c] as number;
  for (let c = 0; c < numClasses; c++) {
    const n = hist[c] as number;
    if (n === 0) continue;
    out.pixels[c] = (out.pixels[c] as number) + n;
    out.imagePixels[c] = (out.imagePixels[c] as number) + scored;
  }
  return out;
}

/** Median-frequency weights from the counts (see the module comment). */
export function medianFrequencyWeights(freq: ClassFrequencies): number[] {
  const f = freq.pixels.map((n, c) => (n > 0 ? n / (freq.imagePixels[c] as number) : Number.NaN));
  const present = f.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (present.length === 0) return f.map(() => 1);
  const mid = present.length >> 1;
  const median =
    present.length % 2 === 1 ? (present[mid] as number) : ((present[mid - 1] as number) + (present[mid] as number)) / 2;
  return f.map((x) => (Number.isNaN(x) ? 1 : median / x));
}

/**
 * Median-frequency class weights of `ds`, from every mask at its stored size (`getMask` when the dataset has it,
 * else `get`). Samples that fail to load go to `onSkip` and are left out.
 */
export async function autoClassWeights(ds: Dataset, onSkip?: (skip: SkippedSample) => void): Promise<number[]> {
  const C = ds.classNames.length;
  const freq: ClassFrequencies = { pixels: new Array(C).fill(0), imagePixels: new Array(C).fill(0) };
  for (let i = 0; i < ds.length; i++) {
    let mask: Mask;
    try {
      mask = ds.getMask ? await ds.getMask(i) : (await ds.get(i)).mask;
    } catch (err) {
      onSkip?.(skippedFrom(ds, i, err));
      continue;
    }
    countClassPixels(mask, C, freq);
  }
  return medianFrequencyWeights(freq);
}
