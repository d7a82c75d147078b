import { decode as decodePngRaw } from "fast-png";
import sharp from "sharp";
import { SegkitError } from "../core/errors.js";
import { createImage, createMask, type Mask, type RgbImage } from "../core/image.js";
import { type Palette, VOC_PALETTE } from "../core/palette.js";
import { writeFileAtomic } from "./fs.js";
import { decodeError, type ImageSource, readBytes, sourceName } from "./image.js";
import { encodePalettePng } from "./png-rows.js";

/** PNG tEXt keyword under which segkit stores class names (a JSON array) in the masks it writes. */
export const CLASS_NAMES_KEY = "segkit:classes";

export interface MaskPngOptions {
  palette?: Palette;
  /** Stored in the PNG as a tEXt chunk (`segkit:classes`), readable with `readMaskClassNames`. */
  classNames?: readonly string[];
}

const GRAY: Palette = Array.from({ length: 256 }, (_, i) => [i, i, i] as const);

/** A 0/1 mask as the 0/255 black-and-white PNG a viewer shows (a gray palette: readers get 0 and 255). */
export function encodeBinaryMaskPng(mask: Mask): Uint8Array {
  return encodeMaskPng(
    createMask(
      mask.width,
      mask.height,
      mask.data.map((v) => (v ? 255 : 0)),
    ),
    { palette: GRAY },
  );
}

/**
 * Encodes a class-index mask as an 8-bit palette PNG: each pixel's palette index is its class index,
 * so any reader that takes indices (Pillow mode "P", segkit `readMask`) gets the classes back exactly,
 * and a viewer shows the palette colours.
 */
export function encodeMaskPng(mask: Mask, options: MaskPngOptions = {}): Uint8Array {
  const palette = options.palette ?? VOC_PALETTE;
  return encodePalettePng(
    mask.width,
    mask.height,
    mask.data,
    Array.from({ length: 256 }, (_, i) => palette[i] ?? [0, 0, 0]),
    options.classNames ? { [CLASS_NAMES_KEY]: asciiJson(options.classNames) } : {},
  );
}

/** JSON with every non-ASCII character escaped (`\uXXXX`): a tEXt chunk holds Latin-1 only. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** The class names stored by `encodeMaskPng` (tEXt `segkit:classes`), or undefined when the PNG has none. */
export async function readMaskClassNames(src: ImageSource): Promise<string[] | undefined> {
  const bytes = await readBytes(src);
  let text: Record<string, string>;
  try {
    text = decodePngRaw(bytes).text;
  } catch (err) {
    throw decodeError(src, err);
  }
  const json = text[CLASS_NAMES_KEY];
  if (json === undefined) return undefined;
  let names: unknown;
  try {
    names = JSON.parse(json);
  } catch {
    names = undefined;
  }
  if (!Array.isArray(names) || !names.every((n) => typeof n === "string")) {
    throw new SegkitError(`the ${CLASS_NAMES_KEY} text is not a JSON array of strings`, { file: sourceName(src) });
  }
  return names;
}

export async function writeMaskPng(path: string, mask: Mask, options: MaskPngOptions = {}): Promise<void> {
  await writeFileAtomic(path, encodeMaskPng(mask, options));
}

/** Encodes an RGB image as PNG. */
export async function encodePng(img: RgbImage): Promise<Uint8Array> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .png()
    .toBuffer();
}

export async function writeImagePng(path: string, img: RgbImage): Promise<void> {
  await writeFileAtomic(path, await encodePng(img));
}

/** The mask painted in palette colours (ignore pixels show in the palette's colour for their index). */
export function colorizeMask(mask: Mask, palette: Palette = VOC_PALETTE): RgbImage {
  const out = new Uint8Array(mask.width * mask.height * 3);
  for (let i = 0; i < mask.data.length; i++) {
    const c = palette[mask.data[i] as number] ?? [0, 0, 0];
    out[i * 3] = c[0];
    out[i * 3 + 1] = c[1];
    out[i * 3 + 2] = c[2];
  }
  return createImage(mask.width, mask.height, out);
}

export interface OverlayOptions {
  /** Opacity of the class colour over the image, 0..1. */
  alpha?: number;
  palette?: Palette;
  /** Classes left untinted (for example the background). The ignore index is never tinted. */
  skipClasses?: readonly number[];
  ignoreIndex?: number;
}

export const DEFAULT_OVERLAY_ALPHA = 0.5;

/** The image with each pixel's class colour blended in at `alpha`. Image and mask must be the same size. */
export function overlayMask(img: RgbImage, mask: Mask, options: OverlayOptions = {}): RgbImage {
  if (img.width !== mask.width || img.height !== mask.height) {
    throw new RangeError(`overlay: image ${img.width}x${img.height} and mask ${mask.width}x${mask.height} differ`);
  }
  const alpha = options.alpha ?? DEFAULT_OVERLAY_ALPHA;
  const palette = options.palette ?? VOC_PALETTE;
  const skip = new Uint8Array(256);
  for (const c of options.skipClasses ?? []) skip[c] = 1;
  skip[options.ignoreIndex ?? 255] = 1;
  const out = new Uint8Array(img.data);
  for (let i = 0; i < mask.data.length; i++) {
    const k = mask.data[i] as number;
    if (skip[k]) continue;
    const c = palette[k] ?? [0, 0, 0];
    for (let ch = 0; ch < 3; ch++) {
      const j = i * 3 + ch;
      out[j] = Math.round((out[j] as number) * (1 - alpha) + c[ch as 0 | 1 | 2] * alpha);
    }
  }
  return createImage(img.width, img.height, out);
}

export interface GridOptions {
  /** Gap between cells and around the grid, in pixels. */
  gap?: number;
  /** Gap colour. */
  background?: readonly [number, number, number];
}

/**
 * Tiles rows of images into one image (for example rows of image | truth | prediction). Each column is as wide
 * as its widest cell, each row as tall as its tallest; smaller cells sit top-left.
 */
export function makeGrid(rows: ReadonlyArray<ReadonlyArray<RgbImage>>, options: GridOptions = {}): RgbImage {
  const gap = options.gap ?? 4;
  const bg = options.background ?? [255, 255, 255];
  const ncol = Math.max(0, ...rows.map((r) => r.length));
  const colW = Array.from({ length: ncol }, (_, c) => Math.max(0, ...rows.map((r) => r[c]?.width ?? 0)));
  const rowH = rows.map((r) => Math.max(0, ...r.map((im) => im.height)));
  const width = gap + colW.reduce((a, w) => a + w + gap, 0);
  const height = gap + rowH.reduce((a, h) => a + h + gap, 0);
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) out.set(bg, i * 3);
  let y0 = gap;
  rows.forEach((row, r) => {
    let x0 = gap;
    row.forEach((im, c) => {
      for (let y = 0; y < im.height; y++) {
        out.set(im.data.subarray(y * im.width * 3, (y + 1) * im.width * 3), ((y0 + y) * width + x0) * 3);
      }
      x0 += (colW[c] as number) + gap;
    });
    y0 += (rowH[r] as number) + gap;
  });
  return createImage(width, height, out);
}

/** One row of a comparison grid: an image, its true mask and, when there is one, a predicted mask (same size). */
export interface ComparisonRow {
  image: RgbImage;
  truth: Mask;
  prediction?: Mask;
}

/**
 * Rows of image | truth | prediction, the masks overlaid on the image in the palette's colours (the look of
 * training sample grids). Rows without a prediction have two cells.
 */
export function comparisonGrid(rows: readonly ComparisonRow[], options: OverlayOptions & GridOptions = {}): RgbImage {
  return makeGrid(
    rows.map((r) => [
      r.image,
      overlayMask(r.image, r.truth, options),
      ...(r.prediction ? [overlayMask(r.image, r.prediction, options)] : []),
    ]),
    options,
  );
}
