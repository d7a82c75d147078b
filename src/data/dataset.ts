import { errorMessage, SegkitError } from "../core/errors.js";
import type { Mask, RgbImage } from "../core/image.js";
import type { Palette } from "../core/palette.js";
import type { SkippedSample } from "../core/skipped.js";
import type { Instances } from "../masks/instances.js";

/**
 * One training pair at its stored size: image RGB uint8 HWC, mask class indices H x W (same H, W); for an instance
 * dataset (`task: "instance"`) also the image's object instances (category ids, crowd regions kept).
 */
export interface Sample {
  readonly id: string;
  readonly image: RgbImage;
  readonly mask: Mask;
  readonly instances?: Instances;
}

/**
 * The contract every dataset keeps. Samples are loaded lazily: `get(i)` reads and decodes sample i only
 * when asked, so a dataset larger than memory costs only its file list.
 * `get` rejects with a `SegkitError` naming the file when a sample turns out bad (undecodable, sizes differ,
 * unknown mask values); batch readers report such samples and go on (see `batches`).
 */
export interface Dataset {
  /** The format name (`folder`, `oxford-pet`, ...). */
  readonly format: string;
  /** Class names, index = class index. */
  readonly classNames: readonly string[];
  /** Mask value that marks pixels to ignore (void, outside the valid region). Never a class index. */
  readonly ignoreIndex: number;
  readonly palette?: Palette;
  /** The class left untinted in overlays (the background), if the dataset has one. */
  readonly backgroundClass?: number;
  readonly length: number;
  /** Samples found unusable while listing the files (unpaired, not images, not in the split), with reasons. */
  readonly skipped: readonly SkippedSample[];
  /** The id of sample i without loading it. */
  id(i: number): string;
  /** The files behind sample i (image, mask and, if any, valid region), for reports. Empty for generated data. */
  files(i: number): readonly string[];
  /**
   * Sample i. `size` is a hint from a loader that will bring the sample to that size anyway: a dataset may return
   * it already resized (image bilinear, mask nearest; what `transformSample` would give) when it can do so faster,
   * e.g. in the decoder; any other dataset ignores it.
   */
  get(i: number, size?: { width: number; height: number }): Promise<Sample>;
  /** Only the mask of sample i, when the dataset can read it without decoding the image (evaluation uses it). */
  getMask?(i: number): Promise<Mask>;
  /** Instance datasets: the instances of sample i without decoding the image. */
  getInstances?(i: number): Promise<Instances>;
  /** Instance datasets: the categories their instances' `classIds` refer to. */
  readonly categories?: readonly { readonly id: number; readonly name: string }[];
  /**
   * The COCO category behind each class (index = class; null: none, e.g. a background class), for formats read
   * from COCO files. A model card keeps it, so that results can be written with the dataset's own ids.
   */
  readonly classCategories?: readonly (ClassCategory | null)[];
  /**
   * Set by `instanceTargetDataset`: the class maps encode instances (background, boundary of `boundary` px, one
   * interior class per category), so a model trained on them is an instance model.
   */
  readonly instanceTargets?: { readonly boundary: number };
}

/** A COCO category as a class stands for it (`isthing`: COCO panoptic's thing / stuff). */
export interface ClassCategory {
  readonly id: number;
  readonly isthing?: boolean;
}

/** What a view of `ds` (a subset, a cache, tiles) keeps of it: format, classes, ignore index, palette, skipped. */
export function viewInfo(
  ds: Dataset,
): Pick<
  Dataset,
  | "format"
  | "classNames"
  | "ignoreIndex"
  | "palette"
  | "backgroundClass"
  | "skipped"
  | "categories"
  | "instanceTargets"
  | "classCategories"
> {
  return {
    ...(ds.classCategories ? { classCategories: ds.classCategories } : {}),
    ...(ds.categories ? { categories: ds.categories } : {}),
    ...(ds.instanceTargets ? { instanceTargets: ds.instanceTargets } : {}),
    format: ds.format,
    classNames: ds.classNames,
    ignoreIndex: ds.ignoreIndex,
    ...(ds.palette ? { palette: ds.palette } : {}),
    ...(ds.backgroundClass !== undefined ? { backgroundClass: ds.backgroundClass } : {}),
    skipped: ds.skipped,
  };
}

/** A view of `ds` holding only the given sample indices, in that order. */
export function subset(ds: Dataset, indices: readonly number[]): Dataset {
  const at = (i: number): number => {
    const j = indices[i];
    if (j === undefined) throw new RangeError(`sample ${i} out of range 0..${indices.length - 1}`);
    return j;
  };
  return {
    ...viewInfo(ds),
    length: indices.length,
    id: (i) => ds.id(at(i)),
    files: (i) => ds.files(at(i)),
    get: (i, size) => ds.get(at(i), size),
    ...(ds.getMask ? { getMask: (i: number) => (ds.getMask as (j: number) => Promise<Mask>)(at(i)) } : {}),
    ...(ds.getInstances
      ? { getInstances: (i: number) => (ds.getInstances as (j: number) => Promise<Instances>)(at(i)) }
      : {}),
  };
}

/** The report for sample i that failed to load with `err`: the file the error names (else the sample's first file). */
export function skippedFrom(ds: Dataset, i: number, err: unknown): SkippedSample {
  if (err instanceof SegkitError) return { path: err.file ?? ds.files(i)[0] ?? ds.id(i), reason: err.message };
  return { path: ds.files(i)[0] ?? ds.id(i), reason: errorMessage(err) };
}

/** `ds` with each sample decoded once and kept (at its stored size), so epochs after the first decode nothing. */
export function cached(ds: Dataset): Dataset {
  const memo = new Map<number, Promise<Sample>>();
  const get = (i: number): Promise<Sample> => {
    let sample = memo.get(i);
    if (!sample) {
      sample = ds.get(i);
      // a failed read is not kept: the loader reports it, and the next epoch tries again
      sample.catch(() => memo.delete(i));
      memo.set(i, sample);
    }
    return sample;
  };
  return {
    ...viewInfo(ds),
    length: ds.length,
    id: (i) => ds.id(i),
    files: (i) => ds.files(i),
    get,
    getMask: async (i) => (await get(i)).mask,
  };
}
