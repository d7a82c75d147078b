import { SegkitError } from "../core/errors.js";
import { createMask, type Mask } from "../core/image.js";

/**
 * COCO run-length encoding of binary masks, byte-for-byte as pycocotools (`common/maskApi.c`) writes and reads it.
 *
 * Conventions, stated once:
 * - `size` is `[h, w]` (rows, columns), as COCO writes it.
 * - Runs are taken in column-major order (down the first column, then the next: pixel (x, y) is run position
 *   `x * h + y`), alternating 0, 1, 0, ... and always starting with a run of zeros, which is 0 long when pixel
 *   (0, 0) is foreground. The counts sum to `h * w`.
 * - `Rle` (counts as a number list) is the uncompressed form COCO JSON allows for `iscrowd: 1` and the form every
 *   function here works on; `CompressedRle` holds pycocotools' counts string (`rleToString` / `rleFromString`).
 * - The string: each count from index 3 on is stored as the difference from the count two before (indices 0..2 are
 *   stored as they are), then written as little-endian 5-bit groups of a two's-complement number, low group first;
 *   bit 0x20 of a character says another group follows, bit 0x10 of the last group is the sign, and each group is
 *   offset by 48 into printable ASCII (characters '0'..'o').
 * - Area, bbox, merge and IoU walk the runs and never build a full mask, as the reference does. Bboxes are
 *   `[x, y, w, h]` in pixels (COCO XYWH), `[0, 0, 0, 0]` for an empty mask.
 * - Masks in and out are `core` `Mask`s (row-major); a decoded RLE is a mask of 0 and 1.
 */
export interface Rle {
  readonly size: readonly [number, number];
  readonly counts: readonly number[];
}

export interface CompressedRle {
  readonly size: readonly [number, number];
  readonly counts: string;
}

/** Largest mask area accepted from untrusted input (`h * w`); equals io's `MAX_INPUT_PIXELS` (16384^2). */
export const MAX_RLE_PIXELS = 16384 * 16384;

/**
 * Run-length encodes one binary mask. Foreground is every non-zero pixel, or the pixels equal to `value` when it is
 * given (one class of a class-index mask).
 */
export function rleEncode(mask: Mask, value?: number): Rle {
  const { width: w, height: h, data } = mask;
  const counts: number[] = [];
  let prev = false;
  let run = 0;
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) {
      const v = data[y * w + x] as number;
      const on = value === undefined ? v !== 0 : v === value;
      if (on !== prev) {
        counts.push(run);
        run = 0;
        prev = on;
      }
      run++;
    }
  }
  counts.push(run);
  return { size: [h, w], counts };
}

/**
 * The RLE of each label 0..count-1 of a row-major label map (`labels[p]`; any other value is no label's), in one
 * column-major pass, without a bitmap per label. Equal to `rleEncode` of each label's 0/1 mask.
 */
export function rleEncodeLabels(labels: ArrayLike<number>, width: number, height: number, count: number): Rle[] {
  const runs: number[][] = Array.from({ length: count }, () => []);
  const next = new Float64Array(count); // column-major position after each label's last pixel
  let pos = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++, pos++) {
      const k = labels[y * width + x] as number;
      const r = runs[k];
      if (!r) continue;
      const gap = pos - (next[k] as number);
      if (gap > 0 || r.length === 0) r.push(gap, 1);
      else r[r.length - 1] = (r[r.length - 1] as number) + 1;
      next[k] = pos + 1;
    }
  }
  return runs.map((r, k) => {
    const tail = pos - (next[k] as number);
    return { size: [height, width], counts: r.length === 0 ? [pos] : tail > 0 ? [...r, tail] : r };
  });
}

/**
 * Counts built run by run in column-major order: `add(value, n)` appends `n` pixels of one value (runs of the same
 * value merge), `counts()` closes the last run. For RLEs written without a dense mask of the whole frame.
 */
export function rleCountsBuilder(): { add(value: boolean, n: number): void; counts(): number[] } {
  const counts: number[] = [];
  let on = false;
  let run = 0;
  return {
    add(value, n) {
      if (n === 0) return;
      if (value !== on) {
        counts.push(run);
        run = 0;
        on = value;
      }
      run += n;
    },
    counts: () => [...counts, run],
  };
}

/** The mask of an RLE: 1 on the foreground, 0 elsewhere (row-major `Mask`). */
export function rleDecode(rle: Rle): Mask {
  const [h, w] = checkRle(rle);
  return rlePaint(createMask(w, h), rle, 1);
}

/**
 * Sets the foreground pixels of `rle` (column-major runs) to `value` in the row-major `mask` (or label map) of the
 * same size, in place; returns `mask`. The row and column are found once per run, then stepped.
 */
export function rlePaint<M extends { width: number; height: number; data: Uint8Array | Uint16Array | Uint32Array }>(
  mask: M,
  rle: Rle,
  value: number,
): M {
  const [h, w] = rle.size;
  if (mask.height !== h || mask.width !== w) {
    throw new SegkitError(`an RLE of size [${h}, ${w}] cannot paint a ${mask.width}x${mask.height} mask`);
  }
  let pos = 0;
  for (const [i, n] of rle.counts.entries()) {
    if (i % 2 === 1) {
      let y = pos % h;
      let x = (pos - y) / h;
      for (let k = 0; k < n; k++) {
        mask.data[y * w + x] = value;
        if (++y === h) {
          y = 0;
          x++;
        }
      }
    }
    pos += n;
  }
  return mask;
}

/** pycocotools' compressed counts string of an RLE (`rleToString`). */
export function rleToString(rle: Rle): CompressedRle {
  const c = rle.counts;
  let s = "";
  for (let i = 0; i < c.length; i++) {
    let x = (c[i] as number) - (i > 2 ? (c[i - 2] as number) : 0);
    let more = true;
    while (more) {
      // arithmetic shift by 5 on numbers beyond 32 bits: floor division keeps the sign as C's `>>` on a long does
      let g = ((x % 32) + 32) % 32;
      x = Math.floor(x / 32);
      more = g & 0x10 ? x !== -1 : x !== 0;
      if (more) g |= 0x20;
      s += String.fromCharCode(g + 48);
    }
  }
  return { size: [rle.size[0], rle.size[1]], counts: s };
}

/**
 * The RLE of pycocotools' compressed counts string (`rleFrString`). The input is checked (`file` names it in the
 * error): characters in '0'..'o', no unfinished number, counts non-negative and summing to `h * w`.
 */
export function rleFromString(compressed: CompressedRle, file?: string): Rle {
  const [h, w] = checkSize(compressed.size, file);
  const s = compressed.counts;
  if (typeof s !== "string") throw new SegkitError("RLE counts must be a string or a list of numbers", { file });
  // a count needs at most 7 groups (35 bits), and there are at most h * w + 1 counts
  if (s.length > 7 * (h * w + 1)) throw new SegkitError(`RLE counts string too long for size [${h}, ${w}]`, { file });
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new SegkitError("RLE counts string ends inside a number", { file });
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 63 || k >= 7) {
        throw new SegkitError(`RLE counts string has a bad character at ${p}: ${JSON.stringify(s[p])}`, { file });
      }
      x += (c & 0x1f) * 32 ** k;
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x -= 32 ** k; // the sign bit of the last group: two's complement on 5k bits
    }
    const m = counts.length;
    if (m > 2) x += counts[m - 2] as number;
    counts.push(x);
  }
  const rle: Rle = { size: [h, w], counts };
  checkRle(rle, file);
  return rle;
}

/**
 * Checks an RLE from untrusted input (uncompressed COCO JSON or a decoded string): `size` two non-negative integers
 * with `h * w <= MAX_RLE_PIXELS`, counts non-negative integers summing to `h * w`. Returns `[h, w]`.
 */
export function checkRle(rle: Rle, file?: string): [number, number] {
  const [h, w] = checkSize(rle.size, file);
  if (!Array.isArray(rle.counts)) throw new SegkitError("RLE counts must be a string or a list of numbers", { file });
  if (rle.counts.length > h * w + 1)
    throw new SegkitError(`RLE has more counts than size [${h}, ${w}] allows`, { file });
  let sum = 0;
  for (const n of rle.counts) {
    if (!Number.isInteger(n) || n < 0) throw new SegkitError(`RLE count ${JSON.stringify(n)} is not a count`, { file });
    sum += n;
  }
  if (sum !== h * w) {
    throw new SegkitError(`RLE counts sum to ${sum}, but size [${h}, ${w}] has ${h * w} pixels`, { file });
  }
  return [h, w];
}

function checkSize(size: unknown, file: string | undefined): [number, number] {
  if (!Array.isArray(size) || size.length !== 2 || !size.every((v) => Number.isInteger(v) && v >= 0)) {
    throw new SegkitError(`RLE size must be [height, width] in pixels, got ${JSON.stringify(size)}`, { file });
  }
  const [h, w] = size as [number, number];
  if (h * w > MAX_RLE_PIXELS) {
    throw new SegkitError(`RLE size [${h}, ${w}] exceeds ${MAX_RLE_PIXELS} pixels`, { file });
  }
  return [h, w];
}

/** Foreground pixel count: the sum of the odd-indexed runs (`rleArea`). */
export function rleArea(rle: Rle): number {
  let a = 0;
  for (let j = 1; j < rle.counts.length; j += 2) a += rle.counts[j] as number;
  return a;
}

/**
 * The foreground's bounding box `[x, y, w, h]` (`rleToBbox`), from the run ends alone. As in the reference, a
 * foreground run that crosses into a later column widens the box to the full height.
 */
export function rleToBbox(rle: Rle): [number, number, number, number] {
  const [h, w] = rle.size;
  const m = Math.floor(rle.counts.length / 2) * 2;
  if (m === 0 || h === 0) return [0, 0, 0, 0];
  let xs = w;
  let ys = h;
  let xe = 0;
  let ye = 0;
  let cc = 0;
  let xp = 0;
  for (let j = 0; j < m; j++) {
    cc += rle.counts[j] as number;
    const t = cc - (j % 2);
    const y = t % h;
    const x = (t - y) / h;
    if (j % 2 === 0) xp = x;
    else if (xp < x) {
      ys = 0;
      ye = h - 1;
    }
    xs = Math.min(xs, x);
    xe = Math.max(xe, x);
    ys = Math.min(ys, y);
    ye = Math.max(ye, y);
  }
  return [xs, ys, xe - xs + 1, ye - ys + 1];
}

function sameSize(a: Rle, b: Rle): void {
  if (a.size[0] !== b.size[0] || a.size[1] !== b.size[1]) {
    throw new SegkitError(`RLE sizes differ: [${a.size.join(", ")}] and [${b.size.join(", ")}]`);
  }
}

/**
 * Union (or, with `intersect`, intersection) of RLEs of one size, run by run (`rleMerge`). Throws on differing
 * sizes (the reference returns an empty RLE) and on an empty list.
 */
export function rleMerge(rles: readonly Rle[], intersect = false): Rle {
  const first = rles[0];
  if (first === undefined) throw new SegkitError("rleMerge needs at least one RLE");
  let counts = [...first.counts];
  for (const B of rles.slice(1)) {
    sameSize(first, B);
    // a run ends where the merged value changes, zero-length steps included (as pycocotools writes them)
    const out: number[] = [];
    let on = false;
    let run = 0;
    walkRuns(counts, B.counts, (n, a, b) => {
      const v = intersect ? a && b : a || b;
      if (v !== on) {
        out.push(run);
        run = 0;
        on = v;
      }
      run += n;
    });
    out.push(run);
    counts = out;
  }
  return { size: [first.size[0], first.size[1]], counts };
}

/**
 * Walks two RLEs of one size together step for step as pycocotools' `rleMerge` and `rleIou` do: `visit(n, a, b)` for
 * each step of `n` pixels (possibly 0, at a zero-length run) that is foreground in the first (`a`) or not and in the
 * second (`b`) or not, until both have no pixels left after a step (which, as there, ends early at two zero-length
 * runs in step).
 */
function walkRuns(
  A: readonly number[],
  B: readonly number[],
  visit: (n: number, a: boolean, b: boolean) => void,
): void {
  let [ca, cb] = [A[0] ?? 0, B[0] ?? 0];
  let [ia, ib] = [1, 1];
  let [va, vb] = [false, false];
  for (let left = 1; left > 0; left = ca + cb) {
    const n = Math.min(ca, cb);
    visit(n, va, vb);
    ca -= n;
    if (!ca && ia < A.length) {
      ca = A[ia++] as number;
      va = !va;
    }
    cb -= n;
    if (!cb && ib < B.length) {
      cb = B[ib++] as number;
      vb = !vb;
    }
  }
}

/** The complement of an RLE (foreground and background swapped), by adding or removing the leading zero run. */
export function rleInvert(rle: Rle): Rle {
  const c = rle.counts;
  return { size: [rle.size[0], rle.size[1]], counts: c[0] === 0 && c.length > 1 ? c.slice(1) : [0, ...c] };
}

/**
 * IoU of boxes `[x, y, w, h]` (`bbIou`): `iou[d][g]` for detections `dt` and ground truths `gt`. For a crowd ground
 * truth (`iscrowd[g]`) the union is the detection's area alone, COCO's rule for crowd regions.
 */
export function bboxIou(
  dt: readonly (readonly number[])[],
  gt: readonly (readonly number[])[],
  iscrowd: readonly boolean[] = [],
): number[][] {
  return dt.map((D) =>
    gt.map((G, g) => {
      const [dx, dy, dw, dh] = D as [number, number, number, number];
      const [gx, gy, gw, gh] = G as [number, number, number, number];
      const w = Math.min(dx + dw, gx + gw) - Math.max(dx, gx);
      if (w <= 0) return 0;
      const h = Math.min(dy + dh, gy + gh) - Math.max(dy, gy);
      if (h <= 0) return 0;
      const i = w * h;
      return i / (iscrowd[g] ? dw * dh : dw * dh + gw * gh - i);
    }),
  );
}

/**
 * Mask IoU of RLEs (`rleIou`): `iou[d][g]` for detections `dt` and ground truths `gt`, as pycocotools' `iou(dt,
 * gt, iscrowd)` returns it. Pairs whose boxes do not overlap are 0 without walking the runs; disjoint masks are 0.
 * For a crowd ground truth (`iscrowd[g]`) the union is the detection's area: the fraction of the detection
 * inside the crowd region. Throws when a pair's sizes differ (the reference writes -1).
 */
export function rleIou(dt: readonly Rle[], gt: readonly Rle[], iscrowd: readonly boolean[] = []): number[][] {
  const bbIous = bboxIou(dt.map(rleToBbox), gt.map(rleToBbox), iscrowd);
  return dt.map((D, d) =>
    gt.map((G, g) => {
      if (!((bbIous[d]?.[g] as number) > 0)) return 0;
      sameSize(D, G);
      let i = 0;
      let u = 0;
      walkRuns(D.counts, G.counts, (n, a, b) => {
        if (a || b) u += n;
        if (a && b) i += n;
      });
      if (i === 0) u = 1;
      else if (iscrowd[g]) u = rleArea(D);
      return i / u;
    }),
  );
}
