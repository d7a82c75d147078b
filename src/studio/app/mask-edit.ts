/**
 * Instance masks as the app holds them: a row-major 0/1 `Uint8Array` at image resolution (the `Mask` layout of
 * core), turned into COCO compressed RLE for the API and back, and edited in place by the brush, the eraser and the
 * polygon tool. Coordinates are image pixels with pixel corners on the integers (pixel (x, y) is centred at
 * (x + 0.5, y + 0.5)), as in masks/polygon.ts.
 */
import { createMask } from "../../core/image.js";
import { polygonToRle } from "../../masks/polygon.js";
import { type CompressedRle, rleDecode, rleEncode, rleFromString, rleToString } from "../../masks/rle.js";

export function maskToRle(data: Uint8Array, width: number, height: number): CompressedRle {
  return rleToString(rleEncode(createMask(width, height, data)));
}

/** The 0/1 mask of a compressed RLE, checked against the image size the app expects. */
export function rleToMask(rle: CompressedRle, width: number, height: number): Uint8Array {
  const [h, w] = rle.size;
  if (h !== height || w !== width) throw new Error(`mask of size [${h}, ${w}] on an image of ${width}x${height}`);
  return rleDecode(rleFromString(rle)).data;
}

export function countPixels(data: Uint8Array): number {
  let n = 0;
  for (const v of data) if (v !== 0) n++;
  return n;
}

/**
 * Sets `value` on every pixel whose centre lies within `diameter / 2` of (cx, cy), and on the pixel holding the
 * point itself (so a 1 px brush always paints). Returns how many pixels changed.
 */
export function stampDisc(
  data: Uint8Array,
  width: number,
  height: number,
  cx: number,
  cy: number,
  diameter: number,
  value: 0 | 1,
): number {
  const r = diameter / 2;
  let changed = 0;
  const set = (x: number, y: number) => {
    const i = y * width + x;
    if (data[i] !== value) {
      data[i] = value;
      changed++;
    }
  };
  const y0 = Math.max(0, Math.floor(cy - r));
  const y1 = Math.min(height - 1, Math.ceil(cy + r));
  const x0 = Math.max(0, Math.floor(cx - r));
  const x1 = Math.min(width - 1, Math.ceil(cx + r));
  for (let y = y0; y <= y1; y++) {
    const dy = y + 0.5 - cy;
    for (let x = x0; x <= x1; x++) {
      const dx = x + 0.5 - cx;
      if (dx * dx + dy * dy <= r * r) set(x, y);
    }
  }
  const px = Math.floor(cx);
  const py = Math.floor(cy);
  if (px >= 0 && py >= 0 && px < width && py < height) set(px, py);
  return changed;
}

/** Discs along the segment from `a` to `b`, spaced at most a quarter of the diameter (at least every pixel). */
export function strokeSegment(
  data: Uint8Array,
  width: number,
  height: number,
  a: { x: number; y: number },
  b: { x: number; y: number },
  diameter: number,
  value: 0 | 1,
): number {
  const step = Math.max(0.5, Math.min(1, diameter / 4));
  const n = Math.max(1, Math.ceil(Math.hypot(b.x - a.x, b.y - a.y) / step));
  let changed = 0;
  for (let i = 0; i <= n; i++) {
    const t = i / n;
    changed += stampDisc(data, width, height, a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t, diameter, value);
  }
  return changed;
}

/** The 0/1 mask of a closed polygon (vertices in image pixels), filled as pycocotools fills COCO polygons. */
export function polygonMask(points: readonly { x: number; y: number }[], width: number, height: number): Uint8Array {
  const clamp = (v: number, hi: number) => Math.min(hi, Math.max(0, v));
  const flat = points.flatMap((p) => [clamp(p.x, width), clamp(p.y, height)]);
  return rleDecode(polygonToRle(flat, height, width)).data;
}

/** `a | b` into a new mask. */
export function union(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] || b[i] ? 1 : 0;
  return out;
}

/** `a & !b`; `a` itself when they do not overlap. */
export function subtract(a: Uint8Array, b: Uint8Array): Uint8Array {
  let out: Uint8Array | null = null;
  for (let i = 0; i < a.length; i++) {
    if (a[i] && b[i]) {
      out ??= a.slice();
      out[i] = 0;
    }
  }
  return out ?? a;
}

/**
 * Semantic mode: each pixel has at most one class, each class one mask. Painting `mask` with `classId` merges the
 * class's masks with it (kept in the place of the first, or appended through `create`) and takes its pixels away
 * from every other class; erasing takes them from the class only. Returns the new list (unchanged items reused).
 */
export function paintClass<T extends { readonly classId: number; readonly mask: Uint8Array }>(
  list: readonly T[],
  classId: number,
  mask: Uint8Array,
  erase: boolean,
  create: (mask: Uint8Array) => T,
): T[] {
  const mine = list.filter((i) => i.classId === classId);
  const merged = mine.slice(1).reduce((m, i) => union(m, i.mask), mine[0]?.mask ?? new Uint8Array(mask.length));
  const target = erase ? subtract(merged, mask) : union(merged, mask);
  const out: T[] = [];
  for (const item of list) {
    if (item.classId !== classId) {
      const rest = erase ? item.mask : subtract(item.mask, mask);
      out.push(rest === item.mask ? item : { ...item, mask: rest });
    } else if (item === mine[0]) out.push({ ...item, mask: target });
  }
  if (!mine[0] && !erase) out.push(create(target));
  return out;
}
