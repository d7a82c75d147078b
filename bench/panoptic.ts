/**
 * Panoptic quality: segkit's `pqCompute` against panopticapi's `pq_compute` (bench/peers/panopticapi_pq.py, its own
 * pool of one process per core) on the same COCO panoptic files in the same run, passes interleaved. The set is
 * synthetic and deterministic: `--images` (200) ground-truth / prediction pairs at 320x240, stuff bands with wavy
 * borders, 4-12 elliptic things (some crowd) with void rings, predictions jittered, some dropped, relabelled or
 * invented. Both sides' results are compared number by number. Prints a table, writes bench/results/panoptic.json.
 *
 *   npm run bench:panoptic -- --panopticapi DIR [--images 200] [--passes 5] [--keep]
 *
 * --keep leaves the generated files in place (their directory is printed).
 * DIR: a checkout of github.com/cocodataset/panopticapi (or PANOPTICAPI_DIR); without it the bench runs segkit alone.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { createRng, permutation, type Rng } from "../src/core/random.js";
import { type PanopticQuality, pqCompute } from "../src/eval/panoptic.js";
import { machine, PYTHON, writeResults } from "./common.js";
import { formatSummary, interleave, median, PeerServer, type Side } from "./side-by-side.js";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    panopticapi: { type: "string", default: process.env.PANOPTICAPI_DIR ?? "" },
    images: { type: "string", default: "200" },
    passes: { type: "string", default: "5" },
    keep: { type: "boolean", default: false },
    out: { type: "string", default: join(here, "results", "panoptic.json") },
  },
});
const N = Number(args.images);
const W = 320;
const H = 240;
const THINGS = [1, 2, 3, 4, 5, 6, 7, 8];
const STUFF = [101, 102, 103, 104, 105, 106];
const CATEGORIES = [
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

/** Writes gt.json + gt/ and pred.json + pred/ under `dir`. */
async function writeSet(dir: string): Promise<{ gt: string; pred: string }> {
  const docs = { gt: [] as unknown[], pred: [] as unknown[] };
  for (const side of ["gt", "pred"] as const) await mkdir(join(dir, side));
  const images = [];
  for (let k = 0; k < N; k++) {
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
      JSON.stringify({ images, annotations: docs[side], categories: CATEGORIES }),
    );
  }
  return { gt: join(dir, "gt.json"), pred: join(dir, "pred.json") };
}

/** The largest absolute difference between two results' numbers (NaN when their keys differ). */
function maxDifference(a: PanopticQuality, b: PanopticQuality): number {
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

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "segkit-bench-pq-"));
  try {
    console.log(`writing ${N} synthetic ground-truth / prediction pairs at ${W}x${H} to ${dir}`);
    const files = await writeSet(dir);
    const api = args.panopticapi;
    let peer: PeerServer | null = null;
    if (!api || !existsSync(join(api, "panopticapi", "evaluation.py"))) {
      console.log(
        `panopticapi not found${api ? ` at ${api}` : ""}: segkit runs alone. Pass --panopticapi DIR (or ` +
          "PANOPTICAPI_DIR), a checkout of github.com/cocodataset/panopticapi",
      );
    } else {
      peer = await PeerServer.start(
        { id: "debian", python: PYTHON },
        join(here, "peers", "panopticapi_pq.py"),
        [api],
        "apt-get install -y python3-numpy python3-pil",
      );
    }
    let ours: PanopticQuality | undefined;
    let theirs: PanopticQuality | undefined;
    const sides: Side[] = [
      {
        name: "segkit",
        pass: async () => {
          const start = performance.now();
          ours = await pqCompute(files.gt, files.pred);
          return [(performance.now() - start) / 1000];
        },
      },
    ];
    if (peer) {
      const server = peer;
      sides.push({
        name: "panopticapi",
        pass: async () => {
          const r = await server.call<{ seconds: number; results: PanopticQuality }>({ op: "pq", ...files });
          theirs = r.results;
          return [r.seconds];
        },
      });
    }
    const passes = Number(args.passes);
    const summaries = await interleave(sides, passes);
    await peer?.close();
    const s = summaries.segkit;
    const p = summaries.panopticapi;
    const ips = (x: number) => N / x;
    console.log(`\nPQ on ${N} images ${W}x${H} (seconds per pass, median (range of passes)):`);
    console.log(`  segkit pqCompute        ${formatSummary(s, 3)}  ${ips(s?.median ?? 0).toFixed(0)} images/s`);
    if (p) console.log(`  panopticapi pq_compute  ${formatSummary(p, 3)}  ${ips(p.median).toFixed(0)} images/s`);
    // panopticapi's time over segkit's in each pass (same load on both), median and range
    const perPass = s && p ? s.passMedians.map((t, i) => (p.passMedians[i] as number) / t) : [];
    const ratio = perPass.length
      ? { median: median(perPass), low: Math.min(...perPass), high: Math.max(...perPass) }
      : null;
    const difference = ours && theirs ? maxDifference(ours, theirs) : null;
    if (ratio) {
      const [m, lo, hi] = [ratio.median, ratio.low, ratio.high].map((x) => x.toFixed(2));
      console.log(
        `  segkit speed / panopticapi's: ${m}x (passes ${lo}-${hi}; panopticapi's time over segkit's per pass)`,
      );
    }
    if (difference !== null) console.log(`  largest difference between the results: ${difference}`);
    if (difference !== null && !(difference <= 1e-6)) console.log("  WARNING: segkit and panopticapi disagree");
    if (ours)
      console.log(
        `  PQ ${ours.All.pq.toFixed(4)} (things ${ours.Things.pq.toFixed(4)}, stuff ${ours.Stuff.pq.toFixed(4)})`,
      );
    await writeResults(args.out, {
      date: new Date().toISOString(),
      machine: machine(),
      set: { images: N, width: W, height: H, categories: CATEGORIES.length },
      passes,
      peer: peer ? { python: PYTHON, ...peer.ready } : null,
      seconds: summaries,
      speedVsPanopticapi: ratio,
      maxDifference: difference,
      results: ours,
    });
  } finally {
    if (!args.keep) await rm(dir, { recursive: true, force: true });
  }
}

await main();
