import { readFile } from "node:fs/promises";
import sharp from "sharp";
import { SegkitError } from "../core/errors.js";
import { createImage, type RgbImage } from "../core/image.js";
import { resizeImage } from "./resize.js";

/** An image given as a path (used in messages) or as encoded bytes. */
export type ImageSource = string | Uint8Array;

// libvips' operation cache keeps recent results in case the same operation runs again; segkit decodes each image
// once per use, so the cache only costs time (about 15% of a small JPEG's decode) and memory (50 MB). Call
// `sharp.cache(...)` after importing segkit to turn it back on.
sharp.cache(false);

/** Pixel count above which sharp refuses to decode (guards against decompression bombs): 16k x 16k. */
export const MAX_INPUT_PIXELS = 16384 * 16384;

export function sourceName(src: ImageSource): string {
  return typeof src === "string" ? src : "<buffer>";
}

export async function readBytes(src: ImageSource): Promise<Uint8Array> {
  if (typeof src !== "string") return src;
  let bytes: Uint8Array;
  try {
    bytes = await readFile(src);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === "ENOENT" ? "file not found" : code === "EISDIR" ? "is a directory" : `cannot read (${code})`;
    throw new SegkitError(what, { file: src, cause: err });
  }
  if (bytes.length === 0) throw new SegkitError("empty file", { file: src });
  return bytes;
}

/** Wraps a sharp/libvips failure into one line naming the file. */
export function decodeError(src: ImageSource, err: unknown): SegkitError {
  const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
  const unsupported = /unsupported image format/i.test(msg ?? "");
  return new SegkitError(unsupported ? "not a supported image (JPEG, PNG, WebP, TIFF, GIF)" : `cannot decode: ${msg}`, {
    file: sourceName(src),
    cause: err,
  });
}

/** A size to resize to while decoding (`readImage`): bilinear, antialiased, stretched to exactly width x height. */
export interface DecodeSize {
  width: number;
  height: number;
}

/**
 * Reads an image file into RGB uint8 HWC.
 * The format is detected from the content (a GIF named `.jpg` reads as a GIF); EXIF orientation is applied;
 * alpha is dropped (not composited); grayscale, palette, CMYK and 16-bit inputs are converted to 8-bit RGB.
 * An embedded ICC profile is NOT applied: the pixel values are the file's own, as Pillow, OpenCV, torchvision and
 * tf.image decode them (so a model sees what it would see in those, and SAM gets the reference's input); converting
 * a profile also costs about as much as the decode itself. Animated GIF/WebP: the first frame.
 *
 * With `resize`, the image comes out at that size, resized in the same libvips pipeline as the decode (one call,
 * no full-size copy): the same pixels as `resizeImage(await readImage(src), width, height)` (bilinear), except
 * that a JPEG shrunk by 4x or more on both axes is decoded at 1/2, 1/4 or 1/8 scale by libjpeg first, leaving at
 * least 2x to the bilinear step (shrink-on-load: on such images a mean difference of about a level from the
 * two-step result, more on single pixels of sharp edges).
 * `originalSize` is the size after EXIF orientation, before the resize.
 */
export async function readImage(src: ImageSource): Promise<RgbImage>;
export async function readImage(src: ImageSource, resize: DecodeSize): Promise<RgbImage & { originalSize: Size }>;
export async function readImage(src: ImageSource, resize?: DecodeSize): Promise<RgbImage & { originalSize?: Size }> {
  const bytes = await readBytes(src);
  try {
    if (!resize) return await decode(bytes);
    // The header only (no pixel decode): an 8-bit JPEG's in a few lines of JavaScript (a sharp call costs more
    // than a millisecond of CPU), anything else through sharp; `autoOrient` makes those the oriented size.
    const m =
      jpegHeader(bytes) ?? (await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS, autoOrient: true }).metadata());
    const originalSize = "autoOrient" in m ? m.autoOrient : { width: m.width, height: m.height };
    // In one pipeline libvips would resize these premultiplied, at 16 bits, or before turning them upright (slightly
    // different pixels): decode, then resize, as without `resize`.
    const twoStep = m.hasAlpha || m.depth !== "uchar" || (m.orientation ?? 1) > 1;
    const image = twoStep
      ? await resizeImage(await decode(bytes), resize.width, resize.height)
      : await decode(bytes, resize);
    return { ...image, originalSize };
  } catch (err) {
    throw decodeError(src, err);
  }
}

type Size = { width: number; height: number };

/**
 * Width, height and EXIF orientation of an 8-bit JPEG from its markers (the SOF segment, EXIF IFD0 tag 0x0112), in
 * the shape of sharp's metadata; undefined when the bytes are not a JPEG or anything is unusual (sharp then reads it).
 */
export function jpegHeader(
  bytes: Uint8Array,
): { width: number; height: number; orientation: number; hasAlpha: false; depth: "uchar" } | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 || view.getUint16(0) !== 0xffd8) return undefined;
  let orientation = 1;
  for (let at = 2; at + 9 < bytes.length; ) {
    const marker = bytes[at + 1] as number;
    if (bytes[at] !== 0xff || marker === 0xff) return undefined;
    const length = view.getUint16(at + 2);
    if (marker === 0xe1 && length >= 16 && view.getUint32(at + 4) === 0x45786966) {
      orientation = exifOrientation(view, at + 10, at + 2 + length) ?? orientation; // "Exif\0\0", then TIFF
    } else if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (bytes[at + 4] !== 8) return undefined; // 12- or 16-bit samples
      const height = view.getUint16(at + 5);
      const width = view.getUint16(at + 7);
      if (!width || !height) return undefined;
      if (orientation < 1 || orientation > 8) return undefined;
      const upright = orientation >= 5 ? { width: height, height: width } : { width, height };
      return { ...upright, orientation, hasAlpha: false, depth: "uchar" };
    } else if (marker === 0xd9 || marker === 0xda) {
      return undefined;
    }
    at += 2 + length;
  }
  return undefined;
}

/** The orientation tag of the EXIF IFD0 of the TIFF structure at [tiff, end), if present and in bounds. */
function exifOrientation(view: DataView, tiff: number, end: number): number | undefined {
  if (tiff + 8 > end) return undefined;
  const little = view.getUint16(tiff) === 0x4949;
  const ifd = tiff + view.getUint32(tiff + 4, little);
  if (ifd + 2 > end) return undefined;
  const count = view.getUint16(ifd, little);
  for (let k = 0; k < count; k++) {
    const entry = ifd + 2 + 12 * k;
    if (entry + 12 > end) return undefined;
    if (view.getUint16(entry, little) === 0x0112) return view.getUint16(entry + 8, little);
  }
  return undefined;
}

/** sharp's decode (and, with `resize`, bilinear resize) to RGB uint8 HWC; throws sharp's own errors. */
async function decode(bytes: Uint8Array, resize?: DecodeSize): Promise<RgbImage> {
  const pipeline = sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS, autoOrient: true, ignoreIcc: true });
  if (resize) pipeline.resize(resize.width, resize.height, { fit: "fill", kernel: "linear", fastShrinkOnLoad: false });
  const { data, info } = await pipeline.removeAlpha().toColourspace("srgb").raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
  return createImage(info.width, info.height, new Uint8Array(data.buffer, data.byteOffset, data.length));
}

/** Width and height after EXIF orientation, read from the header only (no pixel decode). */
export async function readImageSize(src: ImageSource): Promise<{ width: number; height: number }> {
  const bytes = await readBytes(src);
  try {
    const m = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS }).metadata();
    const swap = (m.orientation ?? 1) >= 5;
    return swap ? { width: m.height, height: m.width } : { width: m.width, height: m.height };
  } catch (err) {
    throw decodeError(src, err);
  }
}
