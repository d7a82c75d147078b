import { readFile } from "node:fs/promises";
import sharp from "sharp";
import { SegkitError } from "../core/errors.js";
import { createImage, type RgbImage } from "../core/image.js";

/** An image given as a path (used in messages) or as encoded bytes. */
export type ImageSource = string | Uint8Array;

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

/**
 * Reads an image file into RGB uint8 HWC.
 * The format is detected from the content (a GIF named `.jpg` reads as a GIF); EXIF orientation is applied;
 * alpha is dropped (not composited); grayscale, palette, CMYK and 16-bit inputs are converted to 8-bit sRGB.
 * Animated GIF/WebP: the first frame.
 */
export async function readImage(src: ImageSource): Promise<RgbImage> {
  const bytes = await readBytes(src);
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS })
      .rotate()
      .removeAlpha()
      .toColourspace("srgb")
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return createImage(info.width, info.height, new Uint8Array(data.buffer, data.byteOffset, data.length));
  } catch (err) {
    throw decodeError(src, err);
  }
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
