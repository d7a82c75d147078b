import { deflateSync } from "node:zlib";
import { pngChunk } from "../io/png-rows.js";

export { pngChunk };

/**
 * An 8-bit, non-interlaced PNG written by hand the way an encoder may write it, for the decoders' tests: row y stored
 * with PNG filter `filters[y]` (default y % 5: every filter), the compressed data split over `idatParts` IDAT
 * chunks. `data` is row-major, `channels` bytes a pixel (colour type 0 gray, 2 RGB, 3 palette, 6 RGBA).
 */
export function filteredPng(o: {
  width: number;
  height: number;
  colourType: 0 | 2 | 3 | 6;
  data: ArrayLike<number>;
  filters?: readonly number[];
  palette?: readonly (readonly number[])[];
  idatParts?: number;
}): Buffer {
  const channels = { 0: 1, 2: 3, 3: 1, 6: 4 }[o.colourType];
  const row = o.width * channels;
  const rows = new Uint8Array((row + 1) * o.height);
  const at = (x: number, y: number) => (x < 0 || y < 0 ? 0 : (o.data[y * row + x] as number));
  for (let y = 0; y < o.height; y++) {
    const filter = o.filters?.[y] ?? y % 5;
    rows[y * (row + 1)] = filter;
    for (let x = 0; x < row; x++) {
      const [a, b, c] = [at(x - channels, y), at(x, y - 1), at(x - channels, y - 1)];
      const p = a + b - c;
      const paeth =
        Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c)
          ? a
          : Math.abs(p - b) <= Math.abs(p - c)
            ? b
            : c;
      const predict = [0, a, b, (a + b) >> 1, paeth][filter] as number;
      rows[y * (row + 1) + 1 + x] = (at(x, y) - predict) & 255;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(o.width, 0);
  ihdr.writeUInt32BE(o.height, 4);
  ihdr.set([8, o.colourType, 0, 0, 0], 8);
  const z = deflateSync(rows);
  const parts = o.idatParts ?? 1;
  const step = Math.ceil(z.length / parts);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    ...(o.palette ? [pngChunk("PLTE", Uint8Array.from(o.palette.flat()))] : []),
    ...Array.from({ length: parts }, (_, i) => pngChunk("IDAT", z.subarray(i * step, (i + 1) * step))),
    pngChunk("IEND", new Uint8Array(0)),
  ]);
}
