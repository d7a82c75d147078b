import { SegkitError } from "../core/errors.js";
import type { Mask } from "../core/image.js";
import { connectedComponents } from "./components.js";
import { checkRle, type Rle, rleDecode, rleFromString, rleInvert, rleMerge } from "./rle.js";

/**
 * Polygons from masks and back, in COCO's convention.
 *
 * Coordinates: a polygon is a flat list `[x0, y0, x1, y1, ...]` in pixels of the mask, with pixel corners on the
 * integers: pixel (col x, row y) is the square [x, x+1) x [y, y+1), its centre at (x + 0.5, y + 0.5). That is the
 * convention pycocotools rasterises with (`frPyObjects` -> `rleFrPoly`): a pixel is in the polygon when its centre
 * is (tested on a grid of 1/5 pixel, the reference's upsampling), so the bbox polygon (0, 0)-(2, 2) is exactly
 * pixels 0..1 x 0..1.
 *
 * Tracing (`maskToPolygons`): the foreground is split into 4-connected components; each component's boundary is
 * followed along pixel edges (crack following), clockwise on screen (y down) for the outer ring and
 * counter-clockwise for holes; where two diagonal pixels of the component touch at a corner the ring turns to stay
 * on the same pixel. Unsimplified (`tolerance: 0`) the rings rasterise back to the mask exactly; with a tolerance
 * they are simplified with Douglas-Peucker (closed ring, split at the vertex farthest from the first), and a ring
 * that would fall below 3 vertices keeps its unsimplified shape.
 *
 * COCO polygons cannot carry holes: pycocotools unions every polygon of an annotation (`polygonsToRle`), so a
 * mask with holes should be written as RLE, or rasterised with `contoursToRle` (outer rings minus holes).
 */
export type Polygon = number[];

/** One 4-connected component: its outer ring and the rings of its holes. */
export interface Contour {
  outer: Polygon;
  holes: Polygon[];
}

export interface PolygonOptions {
  /** Douglas-Peucker tolerance in pixels; 0 keeps every corner of the pixel boundary. */
  tolerance?: number;
  /** Foreground is the pixels equal to `value`; every non-zero pixel when it is not given. */
  value?: number;
}

export const DEFAULT_POLYGON_OPTIONS: Readonly<{ tolerance: number }> = { tolerance: 1 };

// directions E, S, W, N in a y-down frame; the right turn of d is (d + 1) % 4
const DX = [1, 0, -1, 0];
const DY = [0, 1, 0, -1];

/** Outer rings and holes of the mask's foreground, one `Contour` per 4-connected component, in raster order. */
export function maskToPolygons(mask: Mask, options: PolygonOptions = {}): Contour[] {
  const tolerance = options.tolerance ?? DEFAULT_POLYGON_OPTIONS.tolerance;
  if (!(tolerance >= 0)) throw new SegkitError(`polygon tolerance must be >= 0 pixels, got ${tolerance}`);
  const { width: w, height: h } = mask;
  const { labels } = connectedComponents(mask, { connectivity: 4, value: options.value });
  const at = (x: number, y: number) => (x < 0 || y < 0 || x >= w || y >= h ? 0 : (labels[y * w + x] as number));
  // out[(vy * (w + 1) + vx) * 4 + d]: label of the boundary edge leaving corner (vx, vy) in direction d, or 0
  const out = new Int32Array((w + 1) * (h + 1) * 4);
  const W1 = w + 1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const l = at(x, y);
      if (l === 0) continue;
      if (at(x, y - 1) !== l) out[(y * W1 + x) * 4 + 0] = l; // top edge, eastward
      if (at(x + 1, y) !== l) out[(y * W1 + x + 1) * 4 + 1] = l; // right edge, southward
      if (at(x, y + 1) !== l) out[((y + 1) * W1 + x + 1) * 4 + 2] = l; // bottom edge, westward
      if (at(x - 1, y) !== l) out[((y + 1) * W1 + x) * 4 + 3] = l; // left edge, northward
    }
  }
  const used = new Uint8Array(out.length);
  const contours = new Map<number, Contour>();
  const holes = new Map<number, Polygon[]>();
  for (let v = 0; v < (w + 1) * (h + 1); v++) {
    for (let d0 = 0; d0 < 4; d0++) {
      const l = out[v * 4 + d0] as number;
      if (l === 0 || used[v * 4 + d0]) continue;
      // follow the ring from edge (v, d0): the next edge is a right turn if there is one, then straight on, then a
      // left turn; the ring is closed when that edge is the first one again
      const ring: number[] = [];
      let vv = v;
      let d = d0;
      while (!used[vv * 4 + d]) {
        used[vv * 4 + d] = 1;
        ring.push(vv % W1, Math.floor(vv / W1));
        vv += (DX[d] as number) + (DY[d] as number) * W1;
        const next = [(d + 1) % 4, d, (d + 3) % 4].find((nd) => out[vv * 4 + nd] === l);
        if (next === undefined) throw new Error("maskToPolygons: open boundary (a bug)");
        d = next;
      }
      const poly = simplifyPolygon(dropCollinear(ring), tolerance);
      if (signedArea(ring) > 0) contours.set(l, { outer: poly, holes: holes.get(l) ?? [] });
      else {
        const list = contours.get(l)?.holes ?? holes.get(l) ?? [];
        list.push(poly);
        holes.set(l, list);
      }
    }
  }
  return [...contours.values()];
}

/** Twice the shoelace area of a flat ring; positive for clockwise on screen (y down). */
function signedArea(p: readonly number[]): number {
  let a = 0;
  for (let i = 0; i < p.length; i += 2) {
    const j = (i + 2) % p.length;
    a += (p[i] as number) * (p[j + 1] as number) - (p[j] as number) * (p[i + 1] as number);
  }
  return a;
}

/** The ring without vertices that lie on the straight line through their neighbours. */
function dropCollinear(p: readonly number[]): Polygon {
  const n = p.length / 2;
  const out: Polygon = [];
  for (let i = 0; i < n; i++) {
    const a = (i + n - 1) % n;
    const b = (i + 1) % n;
    const cross =
      ((p[2 * i] as number) - (p[2 * a] as number)) * ((p[2 * b + 1] as number) - (p[2 * i + 1] as number)) -
      ((p[2 * i + 1] as number) - (p[2 * a + 1] as number)) * ((p[2 * b] as number) - (p[2 * i] as number));
    if (cross !== 0) out.push(p[2 * i] as number, p[2 * i + 1] as number);
  }
  return out;
}

/**
 * Douglas-Peucker on a closed ring (flat `[x, y, ...]`): split at the vertex farthest from the first, simplify both
 * halves (a vertex stays when it is farther than `tolerance` from the segment of its span). Keeps the ring as it is
 * when the result would have fewer than 3 vertices.
 */
export function simplifyPolygon(ring: readonly number[], tolerance: number): Polygon {
  const n = ring.length / 2;
  if (tolerance <= 0 || n <= 3) return [...ring];
  const px = (i: number) => ring[2 * (i % n)] as number;
  const py = (i: number) => ring[2 * (i % n) + 1] as number;
  let far = 0;
  let best = -1;
  for (let i = 1; i < n; i++) {
    const d = (px(i) - px(0)) ** 2 + (py(i) - py(0)) ** 2;
    if (d > best) [best, far] = [d, i];
  }
  const keep = new Uint8Array(n + 1);
  keep[0] = keep[far] = keep[n] = 1;
  const spans: [number, number][] = [
    [0, far],
    [far, n],
  ];
  while (spans.length > 0) {
    const [a, b] = spans.pop() as [number, number];
    let worst = -1;
    let at = -1;
    for (let i = a + 1; i < b; i++) {
      const d = segmentDistance(px(i), py(i), px(a), py(a), px(b), py(b));
      if (d > worst) [worst, at] = [d, i];
    }
    if (worst > tolerance) {
      keep[at] = 1;
      spans.push([a, at], [at, b]);
    }
  }
  const out: Polygon = [];
  for (let i = 0; i < n; i++) if (keep[i]) out.push(px(i), py(i));
  return out.length >= 6 ? out : [...ring];
}

function segmentDistance(x: number, y: number, ax: number, ay: number, bx: number, by: number): number {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / len2));
  return Math.hypot(x - ax - t * dx, y - ay - t * dy);
}

/**
 * The RLE of one polygon, exactly as pycocotools' `rleFrPoly` computes it: vertices upsampled x5 and rounded
 * (`(int)(5 * v + 0.5)`, truncating toward zero as C does), edges walked one upsampled step at a time along their
 * major axis, the crossings of pixel-centre columns (x + 0.5) kept as column boundaries, downsampled, and the sorted
 * boundary positions turned into runs (so crossings toggle: self-intersections fill by the even-odd rule).
 */
export function polygonToRle(polygon: readonly number[], height: number, width: number, file?: string): Rle {
  checkPolygon(polygon, height, width, file);
  const scale = 5;
  const k = polygon.length / 2;
  const x: number[] = [];
  const y: number[] = [];
  for (let j = 0; j < k; j++) {
    x.push(Math.trunc(scale * (polygon[2 * j] as number) + 0.5));
    y.push(Math.trunc(scale * (polygon[2 * j + 1] as number) + 0.5));
  }
  x.push(x[0] as number);
  y.push(y[0] as number);
  // dense points along the boundary
  const u: number[] = [];
  const v: number[] = [];
  for (let j = 0; j < k; j++) {
    let xs = x[j] as number;
    let xe = x[j + 1] as number;
    let ys = y[j] as number;
    let ye = y[j + 1] as number;
    const dx = Math.abs(xe - xs);
    const dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) [xs, xe, ys, ye] = [xe, xs, ye, ys];
    const s = dx >= dy ? (ye - ys) / dx : (xe - xs) / dy;
    if (dx >= dy) {
      for (let d = 0; d <= dx; d++) {
        const t = flip ? dx - d : d;
        u.push(t + xs);
        v.push(Math.trunc(ys + s * t + 0.5));
      }
    } else {
      for (let d = 0; d <= dy; d++) {
        const t = flip ? dy - d : d;
        v.push(t + ys);
        u.push(Math.trunc(xs + s * t + 0.5));
      }
    }
  }
  // points where the boundary crosses a column of pixel centres, downsampled
  const a: number[] = [];
  for (let j = 1; j < u.length; j++) {
    const uj = u[j] as number;
    const ui = u[j - 1] as number;
    if (uj === ui) continue;
    let xd = uj < ui ? uj : uj - 1;
    xd = (xd + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > width - 1) continue;
    const vj = v[j] as number;
    const vi = v[j - 1] as number;
    let yd = vj < vi ? vj : vi;
    yd = (yd + 0.5) / scale - 0.5;
    if (yd < 0) yd = 0;
    else if (yd > height) yd = height;
    a.push(xd * height + Math.ceil(yd));
  }
  // boundary positions (column-major) -> runs; a zero-length run merges its neighbours
  a.push(height * width);
  a.sort((p, q) => p - q);
  let prev = 0;
  for (let j = 0; j < a.length; j++) {
    const t = a[j] as number;
    a[j] = t - prev;
    prev = t;
  }
  const counts = [a[0] as number];
  for (let j = 1; j < a.length; ) {
    if ((a[j] as number) > 0) counts.push(a[j++] as number);
    else {
      j++;
      if (j < a.length) counts[counts.length - 1] = (counts[counts.length - 1] as number) + (a[j++] as number);
    }
  }
  return { size: [height, width], counts };
}

function checkPolygon(polygon: readonly number[], height: number, width: number, file: string | undefined): void {
  if (!Array.isArray(polygon) || polygon.length < 6 || polygon.length % 2 !== 0) {
    throw new SegkitError("a polygon must be a flat list [x0, y0, x1, y1, ...] of at least 3 points", { file });
  }
  // bounds the work (the reference walks every upsampled step of every edge): coordinates within 4 image sizes
  const limit = 4 * Math.max(height, width, 1);
  for (const c of polygon) {
    if (typeof c !== "number" || !Number.isFinite(c) || Math.abs(c) > limit) {
      throw new SegkitError(`polygon coordinate ${JSON.stringify(c)} is not a number within ±${limit}`, { file });
    }
  }
}

/** The union of an annotation's polygons, as pycocotools' `frPyObjects` followed by `merge` (COCO `annToRLE`). */
export function polygonsToRle(polygons: readonly Polygon[], height: number, width: number, file?: string): Rle {
  if (polygons.length === 0) return { size: [height, width], counts: [height * width] };
  return rleMerge(polygons.map((p) => polygonToRle(p, height, width, file)));
}

/** A COCO annotation's `segmentation` (polygons, compressed or uncompressed RLE) as an RLE of the image's size, checked. */
export function segmentationToRle(
  seg: readonly Polygon[] | { readonly size: readonly number[]; readonly counts: string | readonly number[] },
  height: number,
  width: number,
  file?: string,
): Rle {
  if (Array.isArray(seg)) return polygonsToRle(seg, height, width, file);
  const { size, counts } = seg as { readonly size: readonly number[]; readonly counts: string | readonly number[] };
  const sized = [size[0] ?? -1, size[1] ?? -1] as [number, number];
  const rle =
    typeof counts === "string" ? rleFromString({ size: sized, counts }, file) : { size: sized, counts: [...counts] };
  checkRle(rle, file);
  if (rle.size[0] !== height || rle.size[1] !== width) {
    throw new SegkitError(`RLE size [${rle.size.join(", ")}] is not the image's [${height}, ${width}]`, { file });
  }
  return rle;
}

/** `polygonsToRle` as a mask of 0 and 1. */
export function polygonsToMask(polygons: readonly Polygon[], height: number, width: number, file?: string): Mask {
  return rleDecode(polygonsToRle(polygons, height, width, file));
}

/** Traced contours back to an RLE: the union of the outer rings minus the union of the holes. */
export function contoursToRle(contours: readonly Contour[], height: number, width: number): Rle {
  const filled = polygonsToRle(
    contours.map((c) => c.outer),
    height,
    width,
  );
  const holes = contours.flatMap((c) => c.holes);
  if (holes.length === 0) return filled;
  return rleMerge([filled, rleInvert(polygonsToRle(holes, height, width))], true);
}
