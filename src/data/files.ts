import { extname, join } from "node:path";
import { SegkitError } from "../core/errors.js";
import type { Mask } from "../core/image.js";
import type { Palette } from "../core/palette.js";
import type { SkippedSample } from "../core/skipped.js";
import { listFiles } from "../io/fs.js";
import { readImage, readImageSize } from "../io/image.js";
import { applyEncoding, type MaskEncoding, type RawMask, readRawMask } from "../io/mask.js";
import type { Dataset, Sample } from "./dataset.js";

/** File extensions taken as images when listing a folder (decoding itself goes by content). */
export const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".jpe", ".png", ".gif", ".tif", ".tiff", ".webp"];

/** The files of one sample: image, mask, and optionally a valid-region mask (nonzero = valid). */
export interface SampleFiles {
  id: string;
  image: string;
  mask: string;
  valid?: string;
}

/**
 * Sorted names of the visible files in a directory (symbolic links followed); a missing directory is an error
 * naming it.
 */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return await listFiles(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SegkitError(code === "ENOENT" ? "directory not found" : `cannot list directory (${code})`, {
      file: dir,
      cause: err,
    });
  }
}

/** A file name without its last extension. */
export function stem(name: string): string {
  const ext = extname(name);
  return ext ? name.slice(0, -ext.length) : name;
}

export interface PairOptions {
  /** The pairing key of an image file name (default: the name without extension). */
  imageKey?: (name: string) => string | undefined;
  /** The pairing key of a mask file name (default: the name without extension). */
  maskKey?: (name: string) => string | undefined;
  /** Optional third directory of valid-region masks, paired by `validKey`. */
  validDir?: string;
  validKey?: (name: string) => string | undefined;
}

/**
 * Pairs the images in `imageDir` with the masks in `maskDir` by key (by default the base name, any extension).
 * Every file that does not end up in a pair is reported in `skipped` with its reason; nothing is dropped silently.
 */
export async function pairFiles(
  imageDir: string,
  maskDir: string,
  options: PairOptions = {},
): Promise<{ pairs: SampleFiles[]; skipped: SkippedSample[] }> {
  const skipped: SkippedSample[] = [];
  const index = async (dir: string, keyOf: (n: string) => string | undefined, images: boolean) => {
    const byKey = new Map<string, string>();
    for (const name of await listDir(dir)) {
      const path = join(dir, name);
      const ext = extname(name).toLowerCase();
      const key = keyOf(name);
      if (!IMAGE_EXTENSIONS.includes(ext)) {
        skipped.push({ path, reason: `not an image file (extension ${ext || "none"})` });
      } else if (key === undefined) {
        skipped.push({ path, reason: `file name does not follow the ${images ? "image" : "mask"} naming pattern` });
      } else if (byKey.has(key)) {
        skipped.push({ path, reason: `same base name as ${byKey.get(key)}` });
      } else {
        byKey.set(key, path);
      }
    }
    return byKey;
  };
  const images = await index(imageDir, options.imageKey ?? stem, true);
  const masks = await index(maskDir, options.maskKey ?? stem, false);
  const valids = options.validDir ? await index(options.validDir, options.validKey ?? stem, false) : undefined;
  const pairs: SampleFiles[] = [];
  for (const [key, image] of images) {
    const mask = masks.get(key);
    const valid = valids?.get(key);
    if (!mask) {
      skipped.push({ path: image, reason: `no mask for it in ${maskDir}` });
    } else if (valids && !valid) {
      skipped.push({ path: image, reason: `no valid-region mask for it in ${options.validDir}` });
    } else {
      pairs.push({ id: key, image, mask, ...(valid ? { valid } : {}) });
    }
  }
  for (const [key, mask] of masks) {
    if (!images.has(key)) skipped.push({ path: mask, reason: `no image for this mask in ${imageDir}` });
  }
  return { pairs, skipped };
}

export interface FileDatasetInfo {
  format: string;
  classNames: readonly string[];
  ignoreIndex: number;
  encoding: MaskEncoding;
  palette?: Palette;
  backgroundClass?: number;
}

/** Pixels where the valid-region mask is 0 become the ignore index. */
function applyValidRegion(mask: Mask, valid: Mask, ignoreIndex: number): void {
  for (let i = 0; i < mask.data.length; i++) if (valid.data[i] === 0) mask.data[i] = ignoreIndex;
}

/** A dataset over paired files on disk, loading each sample when asked. */
export class FileDataset implements Dataset {
  readonly format: string;
  readonly classNames: readonly string[];
  readonly ignoreIndex: number;
  readonly palette?: Palette;
  readonly backgroundClass?: number;
  readonly length: number;
  private readonly encoding: MaskEncoding;

  constructor(
    private readonly samples: readonly SampleFiles[],
    info: FileDatasetInfo,
    readonly skipped: readonly SkippedSample[] = [],
  ) {
    this.format = info.format;
    this.classNames = info.classNames;
    this.ignoreIndex = info.ignoreIndex;
    if (info.palette) this.palette = info.palette;
    if (info.backgroundClass !== undefined) this.backgroundClass = info.backgroundClass;
    this.encoding = { ...info.encoding, ignoreIndex: info.ignoreIndex };
    this.length = samples.length;
  }

  private at(i: number): SampleFiles {
    const s = this.samples[i];
    if (!s) throw new RangeError(`sample ${i} out of range 0..${this.length - 1}`);
    return s;
  }

  id(i: number): string {
    return this.at(i).id;
  }

  files(i: number): readonly string[] {
    const s = this.at(i);
    return s.valid ? [s.image, s.mask, s.valid] : [s.image, s.mask];
  }

  /**
   * Sample i; with `size`, resized to it while decoding (`readImage`'s one-pipeline resize; the masks by nearest
   * neighbour before their values are mapped), the sizes still checked against the files' own.
   */
  async get(i: number, size?: { width: number; height: number }): Promise<Sample> {
    const s = this.at(i);
    if (!size) {
      const [image, raw] = await Promise.all([readImage(s.image), this.readRawMasks(s)]);
      return { id: s.id, image, mask: this.classMask(s, image, raw) };
    }
    const [{ originalSize, ...image }, raw] = await Promise.all([readImage(s.image, size), this.readRawMasks(s)]);
    return { id: s.id, image, mask: this.classMask(s, originalSize, raw, size) };
  }

  /** Only the mask of sample i (the image's size read from its header), for evaluation. */
  async getMask(i: number): Promise<Mask> {
    const s = this.at(i);
    const [size, raw] = await Promise.all([readImageSize(s.image), this.readRawMasks(s)]);
    return this.classMask(s, size, raw);
  }

  private async readRawMasks(s: SampleFiles): Promise<{ mask: RawMask; valid: RawMask | undefined }> {
    const [mask, valid] = await Promise.all([readRawMask(s.mask), s.valid ? readRawMask(s.valid) : undefined]);
    return { mask, valid };
  }

  /**
   * The class-index mask (at `size` when given) with the valid region applied, after checking both files' sizes
   * against the image's (`imageSize`: before any resize).
   */
  private classMask(
    s: SampleFiles,
    imageSize: { width: number; height: number },
    raw: { mask: RawMask; valid: RawMask | undefined },
    size?: { width: number; height: number },
  ): Mask {
    this.checkSize(s, imageSize, raw.mask, raw.valid);
    const mask = applyEncoding(raw.mask, this.encoding, s.mask, size);
    if (raw.valid && s.valid)
      applyValidRegion(mask, applyEncoding(raw.valid, { threshold: 1 }, s.valid, size), this.ignoreIndex);
    return mask;
  }

  private checkSize(s: SampleFiles, image: { width: number; height: number }, mask: RawMask, valid?: RawMask): void {
    for (const [other, path] of [
      [mask, s.mask],
      [valid, s.valid],
    ] as const) {
      if (other && (other.width !== image.width || other.height !== image.height)) {
        throw new SegkitError(
          `size ${other.width}x${other.height} differs from its image ${s.image} (${image.width}x${image.height})`,
          { file: path },
        );
      }
    }
  }
}
