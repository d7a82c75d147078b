import { inflateSync } from "node:zlib";
import { decode as decodePng } from "fast-png";
import { decompressFrames, parseGIF } from "gifuct-js";
import sharp from "sharp";
import { SegkitError } from "../core/errors.js";
import { createMask, DEFAULT_IGNORE_INDEX, type Mask } from "../core/image.js";
import { decodeError, type ImageSource, MAX_INPUT_PIXELS, readBytes, sourceName } from "./image.js";
import { plainPng, pngSize, unfilterPng } from "./png-rows.js";
import { sampleNearest } from "./resize.js";

/**
 * How the stored values of a mask file become class indices.
 * - `values`: stored value -> class index; map a value to `ignoreIndex` to ignore it (e.g. CamVid `{11: 255}`).
 * - `threshold`: stored value >= threshold -> 1, else 0 (binary masks saved as 0/255, possibly with JPEG noise).
 * - neither: stored values are class indices already; `numClasses`, when given, bounds them.
 * A stored value outside the map (or >= numClasses) is an error naming the file and the values found.
 */
export interface MaskEncoding {
  values?: Readonly<Record<number, number>>;
  threshold?: number;
  numClasses?: number;
  ignoreIndex?: number;
}

/** The stored values of a single-channel mask file, before any value map: 8- or 16-bit, row-major HW. */
export interface RawMask {
  data: Uint8Array | Uint16Array;
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47];
const GIF_SIGNATURE = [0x47, 0x49, 0x46, 0x38];

function startsWith(bytes: Uint8Array, sig: number[]): boolean {
  return sig.every((b, i) => bytes[i] === b);
}

/**
 * Decodes the stored values of a mask file.
 * PNG and GIF are read without colour management so that the numbers in the file come out unchanged:
 * a palette image gives its palette indices, except when every palette colour is a gray (R = G = B; a transparent
 * entry no pixel uses does not count), where it gives the gray level (what a viewer shows: DRIVE's GIFs store 0/255
 * this way). The whole palette decides, not only the colours used: a VOC-palette mask that happens to use only
 * classes whose colours are gray (0, 7, 56, 63) still gives its indices.
 * Other formats (TIFF, WebP, ...) go through sharp, 16-bit ones keeping their 16-bit values.
 * Colour (non-gray) pixels are an error: a mask holds classes.
 */
export async function readRawMask(src: ImageSource): Promise<RawMask> {
  const bytes = await readBytes(src);
  const name = sourceName(src);
  if (startsWith(bytes, PNG_SIGNATURE)) {
    // fast-png 8 mis-decodes Adam7-interlaced images below 8 bits per sample (IHDR: depth at byte 24, interlace at 28).
    const depth = bytes[24] ?? 8;
    if (bytes[28] === 1 && depth < 8) {
      throw new SegkitError(`interlaced PNG with ${depth}-bit samples is not supported`, {
        file: name,
        hint: "save the mask without interlacing",
      });
    }
    // The size guard must run before fast-png allocates: IHDR width and height are bytes 16..23.
    const stated = pngSize(bytes);
    if (stated) checkPixels(stated.width, stated.height, name);
    let png: ReturnType<typeof decodePng>;
    try {
      const plain = decodePlainPng(bytes);
      if (plain) return plain;
      png = decodePng(bytes);
    } catch (err) {
      throw decodeError(src, err);
    }
    const samples = png.depth < 8 ? unpackBits(png.data as Uint8Array, png.width, png.height, png.depth) : png.data;
    if (png.palette) return paletteValues(samples, png.palette, png.width, png.height);
    const channels = png.channels;
    const colour = channels >= 3 ? 3 : 1; // gray(+alpha) or RGB(+alpha)
    return {
      data: grayOf(samples, channels, colour, png.width, png.height, name),
      width: png.width,
      height: png.height,
    };
  }
  if (startsWith(bytes, GIF_SIGNATURE)) return readGifMask(bytes, name);
  try {
    // 16-bit files (label TIFFs) keep their values: without this sharp would scale them to 8 bits (v >> 8).
    const meta = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS }).metadata();
    const wide = meta.depth === "ushort";
    let pipeline = sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS }).removeAlpha();
    if (wide)
      pipeline = pipeline.toColourspace((meta.channels ?? 1) - (meta.hasAlpha ? 1 : 0) >= 3 ? "rgb16" : "grey16");
    const { data, info } = await pipeline
      .raw({ depth: wide ? "ushort" : "uchar" })
      .toBuffer({ resolveWithObject: true });
    const samples = wide
      ? new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length))
      : new Uint8Array(data.buffer, data.byteOffset, data.length);
    return { data: grayOf(samples, info.channels, info.channels, info.width, info.height, name), ...size(info) };
  } catch (err) {
    if (err instanceof SegkitError) throw err;
    throw decodeError(src, err);
  }
}

/**
 * The common mask PNG (8-bit gray or palette, not interlaced) through Node's zlib (`plainPng`); undefined for any
 * other PNG (fast-png reads those). Gives what the fast-png path gives: gray levels, or palette indices (gray levels
 * when the whole palette is gray).
 */
function decodePlainPng(bytes: Uint8Array): RawMask | undefined {
  const png = plainPng(bytes, [0, 3], MAX_INPUT_PIXELS);
  if (!png) return undefined;
  const rows = unfilterPng(png, inflateSync(png.idat, { maxOutputLength: Math.max(64, png.inflatedBytes) }));
  const { width, height, palette, alpha } = png;
  const data = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const at = rows.offset + y * rows.stride;
    data.set(rows.data.subarray(at, at + width), y * width);
  }
  if (png.colourType === 0) return { data, width, height };
  if (!palette) throw new Error("palette PNG without a PLTE chunk");
  const rgba = Array.from({ length: Math.floor(palette.length / 3) }, (_, i) => [
    ...palette.subarray(3 * i, 3 * i + 3),
    alpha?.[i] ?? 255,
  ]);
  return paletteValues(data, rgba, width, height);
}

function size(info: { width: number; height: number }) {
  return { width: info.width, height: info.height };
}

function checkPixels(width: number, height: number, name: string): void {
  if (width * height > MAX_INPUT_PIXELS) {
    throw new SegkitError(`mask is ${width}x${height}, larger than the ${MAX_INPUT_PIXELS}-pixel limit`, {
      file: name,
    });
  }
}

/** Unpacks 1/2/4-bit samples (one per byte), rows padded to whole bytes as PNG stores them. */
function unpackBits(packed: Uint8Array, width: number, height: number, depth: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const rowBytes = Math.ceil((width * depth) / 8);
  const perByte = 8 / depth;
  const maxVal = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const byte = packed[y * rowBytes + Math.floor(x / perByte)] as number;
      const shift = 8 - depth * ((x % perByte) + 1);
      out[y * width + x] = (byte >> shift) & maxVal;
    }
  }
  return out;
}

/**
 * Palette indices, or gray levels when every palette colour is a gray. `transparent` (the GIF transparent index; PNG
 * entries with alpha 0 count too) is left out of the test when no pixel uses it: GIF writers reserve such an entry.
 */
function paletteValues(
  indices: ArrayLike<number>,
  palette: ArrayLike<ArrayLike<number>>,
  width: number,
  height: number,
  transparent?: number,
): RawMask {
  const used = new Uint8Array(256);
  for (let i = 0; i < indices.length; i++) used[indices[i] as number] = 1;
  const lut = new Uint8Array(256);
  let allGray = true;
  for (let v = 0; v < 256; v++) {
    const c = palette[v];
    if (!c) continue;
    if (!used[v] && (v === transparent || c[3] === 0)) continue;
    if (c[0] !== c[1] || c[1] !== c[2]) allGray = false;
    lut[v] = c[0] as number;
  }
  const data = new Uint8Array(width * height);
  for (let i = 0; i < data.length; i++)
    data[i] = allGray ? (lut[indices[i] as number] as number) : (indices[i] as number);
  return { data, width, height };
}

/** The first of `colour` channels, after checking that all `colour` channels agree (a gray pixel). */
function grayOf(
  samples: Uint8Array | Uint8ClampedArray | Uint16Array,
  channels: number,
  colour: number,
  width: number,
  height: number,
  name: string,
): Uint8Array | Uint16Array {
  const n = width * height;
  const out = samples instanceof Uint16Array ? new Uint16Array(n) : new Uint8Array(n);
  for (let i = 0, j = 0; i < n; i++, j += channels) {
    const v = samples[j] as number;
    for (let c = 1; c < colour; c++) {
      if (samples[j + c] !== v) {
        const x = i % width;
        const y = Math.floor(i / width);
        throw new SegkitError(`colour mask: pixel (${x}, ${y}) is not gray, and a mask must hold class values`, {
          file: name,
          hint: "save masks as gray or palette PNGs whose values are class indices",
        });
      }
    }
    out[i] = v;
  }
  return out;
}

function readGifMask(bytes: Uint8Array, name: string): RawMask {
  let gif: ReturnType<typeof parseGIF>;
  let frames: ReturnType<typeof decompressFrames>;
  try {
    const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    gif = parseGIF(buf);
    frames = decompressFrames(gif, false);
  } catch (err) {
    throw new SegkitError(`cannot decode GIF: ${err instanceof Error ? err.message : String(err)}`, { file: name });
  }
  const frame = frames[0];
  const { width, height } = gif.lsd;
  if (!frame || !width || !height) throw new SegkitError("GIF has no image", { file: name });
  checkPixels(width, height, name);
  // Place the first frame on the logical screen; uncovered pixels take the background index.
  const indices = new Uint8Array(width * height).fill(gif.lsd.backgroundColorIndex);
  const { left, top, width: fw, height: fh } = frame.dims;
  for (let y = 0; y < fh && y + top < height; y++) {
    for (let x = 0; x < fw && x + left < width; x++) {
      indices[(y + top) * width + x + left] = frame.pixels[y * fw + x] as number;
    }
  }
  return paletteValues(indices, frame.colorTable, width, height, frame.transparentIndex);
}

/** Lookups already built, by the encoding's content (a dataset reads every mask with the same one); a few kept. */
const luts = new Map<string, Int16Array>();

/**
 * A 65536-entry lookup: stored value -> class index, or -1 when the value is not allowed. Built once per encoding:
 * 128 KB per mask would otherwise be most of what the garbage collector sees while loading.
 */
function encodingLut(enc: MaskEncoding): Int16Array {
  const key = JSON.stringify([enc.values, enc.threshold, enc.numClasses, enc.ignoreIndex]);
  let lut = luts.get(key);
  if (!lut) {
    if (luts.size >= 8) luts.clear();
    lut = buildLut(enc);
    luts.set(key, lut);
  }
  return lut;
}

function buildLut(enc: MaskEncoding): Int16Array {
  const ignore = enc.ignoreIndex ?? DEFAULT_IGNORE_INDEX;
  const lut = new Int16Array(65536).fill(-1);
  if (enc.values) {
    for (const [k, v] of Object.entries(enc.values)) lut[Number(k)] = v;
  } else if (enc.threshold !== undefined) {
    for (let v = 0; v < 65536; v++) lut[v] = v >= enc.threshold ? 1 : 0;
  } else {
    const n = enc.numClasses ?? 256;
    for (let v = 0; v < Math.min(n, 256); v++) lut[v] = v;
    lut[ignore] = ignore;
  }
  return lut;
}

export function describeEncoding(enc: MaskEncoding): string {
  if (enc.values) {
    return `{${Object.entries(enc.values)
      .map(([k, v]) => `${k}: ${v}`)
      .join(", ")}}`;
  }
  if (enc.threshold !== undefined) return `threshold ${enc.threshold}`;
  return enc.numClasses === undefined ? "class indices" : `class indices 0..${enc.numClasses - 1}`;
}

/** out[i] = lut[data[i]]; true when some value maps to -1 (not allowed). */
function mapValues<T extends Uint8Array | Uint16Array>(data: T, lut: Int16Array, out: Uint8Array): boolean {
  let bad = 0;
  for (let i = 0; i < data.length; i++) {
    const v = lut[data[i] as number] as number;
    bad |= v;
    out[i] = v;
  }
  return bad < 0;
}

/**
 * Applies a value map to stored values; throws naming the file and every stored value the map does not cover.
 * With `size`, the result is resized to it by nearest neighbour (`resizeMask`'s sampling) while every stored value
 * is still checked: the same mask as `resizeMask(applyEncoding(raw, enc), width, height)`, mapping only the pixels
 * kept.
 */
export function applyEncoding(
  raw: RawMask,
  enc: MaskEncoding,
  name = "<mask>",
  size?: { width: number; height: number },
): Mask {
  const lut = encodingLut(enc);
  const resized = size && (size.width !== raw.width || size.height !== raw.height);
  const kept = resized ? { data: sampleNearest(raw, size.width, size.height), ...size } : raw;
  const out = new Uint8Array(kept.data.length);
  // One loop per array type keeps each loop monomorphic (several times faster than one over the union).
  let bad = kept.data instanceof Uint8Array ? mapValues(kept.data, lut, out) : mapValues(kept.data, lut, out);
  if (resized && !bad) bad = raw.data instanceof Uint8Array ? anyBad(raw.data, lut) : anyBad(raw.data, lut);
  if (bad) {
    const found = [...new Set(raw.data)].sort((a, b) => a - b);
    const outside = found.filter((v) => (lut[v] as number) < 0);
    throw new SegkitError(
      `mask value${outside.length > 1 ? "s" : ""} ${outside.join(", ")} not in the value map ${describeEncoding(enc)} (values found: ${found.join(", ")})`,
      { file: name, hint: "add them to the value map, or map them to the ignore index" },
    );
  }
  return createMask(kept.width, kept.height, out);
}

/** Whether some stored value maps to -1 (not allowed). */
function anyBad<T extends Uint8Array | Uint16Array>(data: T, lut: Int16Array): boolean {
  let bad = 0;
  for (let i = 0; i < data.length; i++) bad |= lut[data[i] as number] as number;
  return bad < 0;
}

/** Reads a mask file into class indices (H x W uint8) through a value map. */
export async function readMask(src: ImageSource, enc: MaskEncoding = {}): Promise<Mask> {
  return applyEncoding(await readRawMask(src), enc, sourceName(src));
}
