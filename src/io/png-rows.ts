/**
 * The plain PNGs segmentation data is made of (8-bit gray, palette, RGB or RGBA, not interlaced) decoded with Node's
 * native zlib, several times faster than fast-png's JavaScript inflate, and sharp's fixed cost per call is most of
 * the decode of a small PNG. `plainPng` reads the chunks; the caller inflates `idat` (sync or on libuv's threads,
 * bounded by `inflatedBytes`) and `unfilterPng` undoes the row filters in place. Other PNGs: undefined (the callers
 * fall back to fast-png or sharp). `encodePalettePng` writes the 8-bit palette PNGs of masks, again with Node's zlib
 * (about 25 times faster than fast-png's encoder on a 480x360 mask), `encodeGrayPng` 8-bit grayscale ones.
 */
import { deflateSync } from "node:zlib";
import { SegkitError } from "../core/errors.js";

/** A plain PNG's header and chunks. */
export interface PlainPng {
  width: number;
  height: number;
  /** 0 gray, 2 RGB, 3 palette, 6 RGBA. */
  colourType: 0 | 2 | 3 | 6;
  /** Bytes per pixel. */
  channels: 1 | 3 | 4;
  /** The compressed image data (IDAT chunks joined). */
  idat: Uint8Array;
  /** The exact size of the inflated data: `(width * channels + 1) * height`. */
  inflatedBytes: number;
  /** PLTE: RGB triples. */
  palette?: Uint8Array;
  /** tRNS: alpha per palette entry. */
  alpha?: Uint8Array;
}

/** The unfiltered pixels: row y at `data[offset + y * stride]`, `width * channels` bytes. */
export interface PngRows {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  stride: number;
  offset: number;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const CHANNELS = { 0: 1, 2: 3, 3: 1, 6: 4 } as const;

/** The size a PNG's header states (read before anything allocates for it), or undefined when it is not a PNG. */
export function pngSize(bytes: Uint8Array): { width: number; height: number } | undefined {
  if (bytes.length < 24 || SIGNATURE.some((b, i) => bytes[i] !== b)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/**
 * The chunks of a plain PNG whose colour type is one of `colourTypes`, or undefined for any other PNG. A SegkitError
 * (no file: the caller names it) for more than `maxPixels` pixels or a chunk cut short.
 */
export function plainPng(
  bytes: Uint8Array,
  colourTypes: readonly PlainPng["colourType"][],
  maxPixels: number,
): PlainPng | undefined {
  const size = pngSize(bytes);
  if (!size || bytes.length < 33) return undefined;
  const { width, height } = size;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [depth, colourType, , , interlace] = bytes.subarray(24, 29);
  const type = colourType as PlainPng["colourType"];
  if (depth !== 8 || interlace !== 0 || !colourTypes.includes(type)) return undefined;
  if (width * height > maxPixels) {
    throw new SegkitError(`the PNG is ${width}x${height}, larger than the ${maxPixels}-pixel limit`);
  }
  const idat: Uint8Array[] = [];
  const png: Partial<PlainPng> = {};
  for (let at = 8; at + 12 <= bytes.length; ) {
    const length = view.getUint32(at);
    const chunk = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (at + 12 + length > bytes.length) throw new SegkitError(`PNG chunk ${chunk} is cut short`);
    const body = bytes.subarray(at + 8, at + 8 + length);
    if (chunk === "IDAT") idat.push(body);
    else if (chunk === "PLTE") png.palette = body;
    else if (chunk === "tRNS") png.alpha = body;
    else if (chunk === "IEND") break;
    at += 12 + length;
  }
  const channels = CHANNELS[type];
  return {
    ...png,
    width,
    height,
    colourType: type,
    channels,
    idat: idat.length === 1 ? (idat[0] as Uint8Array) : Buffer.concat(idat),
    inflatedBytes: (width * channels + 1) * height,
  };
}

/** Undoes the row filters of `png`'s inflated data in place. */
export function unfilterPng(png: PlainPng, inflated: Uint8Array): PngRows {
  const { width, height, channels } = png;
  const row = width * channels;
  if (inflated.length < (row + 1) * height) throw new SegkitError("PNG image data is cut short");
  for (let y = 0; y < height; y++) unfilterRow(inflated, y * (row + 1), row, channels, y > 0);
  return { data: inflated, width, height, channels, stride: row + 1, offset: 1 };
}

/**
 * Undoes the PNG filter of the row at `at` (its filter byte, then `row` bytes) in place, `bpp` bytes per pixel; the
 * row above, already unfiltered, ends just before it.
 */
function unfilterRow(d: Uint8Array, at: number, row: number, bpp: number, hasUp: boolean): void {
  const filter = d[at];
  const s = at + 1;
  const u = s - row - 1; // the row above
  if (filter === 0 || (filter === 2 && !hasUp)) return;
  if (filter === 1 || (filter === 4 && !hasUp)) {
    // Sub (Paeth with no row above predicts from the left too)
    for (let x = bpp; x < row; x++) d[s + x] = ((d[s + x] as number) + (d[s + x - bpp] as number)) & 255;
  } else if (filter === 2) {
    for (let x = 0; x < row; x++) d[s + x] = ((d[s + x] as number) + (d[u + x] as number)) & 255;
  } else if (filter === 3) {
    for (let x = 0; x < row; x++) {
      const left = x >= bpp ? (d[s + x - bpp] as number) : 0;
      const above = hasUp ? (d[u + x] as number) : 0;
      d[s + x] = ((d[s + x] as number) + ((left + above) >> 1)) & 255;
    }
  } else if (filter === 4) {
    for (let x = 0; x < bpp; x++) d[s + x] = ((d[s + x] as number) + (d[u + x] as number)) & 255; // left = upLeft = 0
    for (let x = bpp; x < row; x++) {
      const left = d[s + x - bpp] as number;
      const above = d[u + x] as number;
      const upLeft = d[u + x - bpp] as number;
      // |p - left|, |p - above|, |p - upLeft| for the Paeth estimate p = left + above - upLeft
      const pa = Math.abs(above - upLeft);
      const pb = Math.abs(left - upLeft);
      const pc = Math.abs(left + above - 2 * upLeft);
      d[s + x] = ((d[s + x] as number) + (pa <= pb && pa <= pc ? left : pb <= pc ? above : upLeft)) & 255;
    }
  } else throw new SegkitError(`PNG row filter ${filter} is not one of 0-4`);
}

/** CRC-32 (ISO 3309, as PNG chunks use), table-driven. */
const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 255] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One PNG chunk: length, type, body, CRC of type and body. */
export function pngChunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  view.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

/**
 * An 8-bit palette PNG (colour type 3, not interlaced, rows unfiltered, zlib level 3): pixel values are palette
 * indices. `palette`: RGB triples, at most 256; `text`: tEXt chunks (Latin-1 keyword and text). A RangeError names
 * what would make the file invalid (a size, a colour, a pixel past the palette, a keyword or text).
 */
export function encodePalettePng(
  width: number,
  height: number,
  data: Uint8Array,
  palette: readonly (readonly [number, number, number])[],
  text: Record<string, string> = {},
): Uint8Array {
  return encode8BitPng("encodePalettePng", width, height, data, palette, text);
}

/** An 8-bit grayscale PNG (colour type 0), otherwise as `encodePalettePng`. */
export function encodeGrayPng(width: number, height: number, data: Uint8Array): Uint8Array {
  return encode8BitPng("encodeGrayPng", width, height, data, undefined, {});
}

function encode8BitPng(
  caller: string,
  width: number,
  height: number,
  data: Uint8Array,
  palette: readonly (readonly [number, number, number])[] | undefined,
  text: Record<string, string>,
): Uint8Array {
  const fail = (problem: string) => {
    throw new RangeError(`${caller}: ${problem}`);
  };
  if (![width, height].every((n) => Number.isInteger(n) && n >= 1 && n < 2 ** 31)) {
    fail(`size ${width} x ${height} is not two positive integers`);
  }
  if (data.length !== width * height) fail(`${data.length} pixels, expected ${width} x ${height}`);
  const colours = palette ?? [];
  if (palette && (palette.length < 1 || palette.length > 256)) {
    fail(`a palette has 1 to 256 colours, got ${palette.length}`);
  }
  const bad = colours.findIndex((c) => c.length !== 3 || !c.every((v) => Number.isInteger(v) && v >= 0 && v <= 255));
  if (bad >= 0) fail(`palette colour ${bad} (${colours[bad]}) is not three integers 0..255`);
  if (palette && palette.length < 256) {
    const index = data.findIndex((v) => v >= palette.length);
    if (index >= 0) fail(`pixel ${index} is ${data[index]}, past the ${palette.length}-colour palette`);
  }
  // (PNG: a keyword is 1-79 Latin-1 characters without NUL; a tEXt value is Latin-1)
  const isLatin1 = (s: string, min: number) => [...s].every((c) => c.charCodeAt(0) >= min && c.charCodeAt(0) <= 255);
  for (const [key, value] of Object.entries(text)) {
    if (key.length < 1 || key.length > 79 || !isLatin1(key, 1) || !isLatin1(value, 0)) {
      fail(`text ${JSON.stringify(key)} is not a Latin-1 keyword (1-79 characters) with a Latin-1 value`);
    }
  }
  const header = new Uint8Array(13);
  new DataView(header.buffer).setUint32(0, width);
  new DataView(header.buffer).setUint32(4, height);
  header.set([8, palette ? 3 : 0, 0, 0, 0], 8);
  const rows = new Uint8Array((width + 1) * height);
  for (let y = 0; y < height; y++) rows.set(data.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
  return Buffer.concat([
    Uint8Array.from(SIGNATURE),
    pngChunk("IHDR", header),
    ...(palette ? [pngChunk("PLTE", Uint8Array.from(palette.flat()))] : []),
    ...Object.entries(text).map(([key, value]) => pngChunk("tEXt", latin1(`${key}\0${value}`))),
    pngChunk("IDAT", deflateSync(rows, { level: 3 })),
    pngChunk("IEND", new Uint8Array(0)),
  ]);
}
