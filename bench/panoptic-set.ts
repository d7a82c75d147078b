/**
 * The panoptic part of `npm run bench:coco-eval` (bench/coco-eval.ts): a synthetic, deterministic COCO panoptic set
 * of ground-truth / prediction pairs at 320x240: stuff bands with wavy borders, 4-12 elliptic things (5% crowd) with
 * void rings, a void blob in half the images; predictions jittered, some dropped, relabelled or invented. And the
 * largest difference between two PQ results, to compare segkit's with panopticapi's number by number.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import sharp from "sharp";
import { createRng, permutation, type Rng } from "../src/core/random.js";
import type { PanopticQuality } from "../src/eval/panoptic.js";

export const PQ_WIDTH = 320;
export const PQ_HEIGHT = 240;
const W = PQ_WIDTH;
const H = PQ_HEIGHT;

const THINGS = [1, 2, 3, 4, 5, 6, 7, 8];
const STUFF = [101, 102, 103, 104, 105, 106];
export const PQ_CATEGORIES = [
  ...THINGS.map((id) => ({ id, name: `thing${id}`, isthing: 1 })),
  ...STUFF.map((id) => ({ id, name: `stuff${id}`, isthing: 0 })),
];

interface Ellipse {
  cx: number;
  cy: number;
  rx: number;
  ry: number;
}

/** One image's segment ids, painted band by band and object by object, and the categories of its segments. */
class Canvas {
  readonly ids = new Uint32Array(W * H);
  readonly info = new Map<number, { category_id: number; iscrowd: number }>();
  private readonly used = new Set<number>([0]);

  constructor(private readonly rng: Rng) {}

  newId(category: number, iscrowd = 0): number {
    let id = 0;
    while (this.used.has(id)) id = this.rng.int(1, 1 << 24);
    this.used.add(id);
    this.info.set(id, { category_id: category, iscrowd });
    return id;
  }

  /** Horizontal bands with sinusoidal borders: `tops[k]` the mean top row of band k. */
  bands(tops: number[], ids: number[], phase: number): void {
    for (let x = 0; x < W; x++) {
      const wave = 6 * Math.sin(x / 23 + phase);
      for (let y = 0; y < H; y++) {
        let k = 0;
        while (k + 1 < tops.length && y >= (tops[k + 1] as number) + wave) k++;
        this.ids[y * W + x] = ids[k] as number;
      }
    }
  }

  /** Fills the ellipse with `id`; with `ring`, the band between its border and `ring` times its radii with `ringId`. */
  ellipse(e: Ellipse, id: number, ring = 1, ringId = 0): void {
    const x0 = Math.max(0, Math.floor(e.cx - e.rx * ring));
    const x1 = Math.min(W - 1, Math.ceil(e.cx + e.rx * ring));
    const y0 = Math.max(0, Math.floor(e.cy - e.ry * ring));
    const y1 = Math.min(H - 1, Math.ceil(e.cy + e.ry * ring));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const d = ((x - e.cx) / e.rx) ** 2 + ((y - e.cy) / e.ry) ** 2;
        if (d <= 1) this.ids[y * W + x] = id;
        else if (d <= ring * ring) this.ids[y * W + x] = ringId;
      }
    }
  }

  /** segments_info of the segments left in the image (area and bbox from the pixels). */
  segments(): Record<string, number | number[]>[] {
    const box = new Map<number, [number, number, number, number, number]>(); // area, x0, y0, x1, y1
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const id = this.ids[y * W + x] as number;
        if (id === 0) continue;
        const b = box.get(id);
        if (!b) box.set(id, [1, x, y, x, y]);
        else {
          b[0]++;
          b[1] = Math.min(b[1], x);
          b[2] = Math.min(b[2], y);
          b[3] = Math.max(b[3], x);
          b[4] = Math.max(b[4], y);
        }
      }
    }
    return [...box].map(([id, [area, x0, y0, x1, y1]]) => ({
      id,
      ...(this.info.get(id) as { category_id: number; iscrowd: number }),
      area,
      bbox: [x0, y0, x1 - x0 + 1, y1 - y0 + 1],
    }));
  }

  png(): Promise<Buffer> {
    const rgb = Buffer.alloc(W * H * 3);
    for (let i = 0; i < this.ids.length; i++) {
      const id = this.ids[i] as number;
      rgb[3 * i] = id & 255;
      rgb[3 * i + 1] = (id >> 8) & 255;
      rgb[3 * i + 2] = id >> 16;
    }
    return sharp(rgb, { raw: { width: W, height: H, channels: 3 } })
      .png()
      .toBuffer();
  }
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(0, xs.length)] as T;

/** Ground truth and prediction of image k. */
function scene(k: number): { gt: Canvas; pred: Canvas } {
  const rng = createRng(1000 + k);
  const gt = new Canvas(rng);
  const pred = new Canvas(rng);
  const nBands = rng.int(2, 5);
  const stuff = permutation(STUFF.length, rng)
    .slice(0, nBands)
    .map((i) => STUFF[i] as number);
  const tops = Array.from({ length: nBands }, (_, b) => Math.round((b * H) / nBands + (b ? rng.int(-10, 11) : 0)));
  const phase = rng.uniform(0, 6);
  gt.bands(
    tops,
    stuff.map((c) => gt.newId(c)),
    phase,
  );
  pred.bands(
    tops.map((t, b) => (b ? t + rng.int(-8, 9) : t)),
    stuff.map((c) => pred.newId(rng.next() < 0.1 ? pick(rng, STUFF) : c)),
    phase + rng.uniform(-0.3, 0.3),
  );
  const nThings = rng.int(4, 13);
  for (let t = 0; t < nThings; t++) {
    const e = { cx: rng.uniform(0, W), cy: rng.uniform(0, H), rx: rng.uniform(8, 50), ry: rng.uniform(8, 45) };
    const category = pick(rng, THINGS);
    gt.ellipse(e, gt.newId(category, rng.next() < 0.05 ? 1 : 0), 1.12, 0);
    if (rng.next() < 0.1) continue; // missed
    const jitter = (v: number, s: number) => v + rng.uniform(-s, s);
    const p = { cx: jitter(e.cx, 6), cy: jitter(e.cy, 6), rx: jitter(e.rx, e.rx / 4), ry: jitter(e.ry, e.ry / 4) };
    pred.ellipse(p, pred.newId(rng.next() < 0.1 ? pick(rng, THINGS) : category));
  }
  for (let f = rng.int(0, 4); f > 0; f--) {
    const e = { cx: rng.uniform(0, W), cy: rng.uniform(0, H), rx: rng.uniform(4, 20), ry: rng.uniform(4, 20) };
    pred.ellipse(e, pred.newId(pick(rng, THINGS)));
  }
  if (rng.next() < 0.5) {
    gt.ellipse({ cx: rng.uniform(0, W), cy: rng.uniform(0, H), rx: rng.uniform(5, 30), ry: rng.uniform(5, 30) }, 0);
  }
  return { gt, pred };
}

/** Writes `n` pairs as gt.json + gt/ and pred.json + pred/ under `dir`. */
export async function writePanopticSet(dir: string, n: number): Promise<{ gt: string; pred: string }> {
  const docs = { gt: [] as unknown[], pred: [] as unknown[] };
  for (const side of ["gt", "pred"] as const) await mkdir(join(dir, side), { recursive: true });
  const images = [];
  for (let k = 0; k < n; k++) {
    const file = `${String(k).padStart(6, "0")}.png`;
    const s = scene(k);
    images.push({ id: k, file_name: file.replace(".png", ".jpg"), width: W, height: H });
    for (const side of ["gt", "pred"] as const) {
      await writeFile(join(dir, side, file), await s[side].png());
      docs[side].push({ image_id: k, file_name: file, segments_info: s[side].segments() });
    }
  }
  for (const side of ["gt", "pred"] as const) {
    await writeFile(
      join(dir, `${side}.json`),
      JSON.stringify({ images, annotations: docs[side], categories: PQ_CATEGORIES }),
    );
  }
  return { gt: join(dir, "gt.json"), pred: join(dir, "pred.json") };
}

/** The largest absolute difference between two results' numbers (NaN when their keys differ). */
export function maxPqDifference(a: PanopticQuality, b: PanopticQuality): number {
  const flat = (r: PanopticQuality) =>
    new Map(
      Object.entries({ ...r, ...r.per_class }).flatMap(([k, v]) =>
        k === "per_class" ? [] : Object.entries(v).map(([m, x]) => [`${k}.${m}`, x as number] as const),
      ),
    );
  const fa = flat(a);
  const fb = flat(b);
  if (fa.size !== fb.size) return Number.NaN;
  return Math.max(...[...fa].map(([k, v]) => Math.abs(v - (fb.get(k) ?? Number.NaN))));
}
