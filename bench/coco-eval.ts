/**
 * COCOeval and panoptic quality against their references, in one run with the passes interleaved:
 * - COCOeval: segkit's `evaluateCocoFiles` against pycocotools (COCO + loadRes + COCOeval evaluate, accumulate,
 *   summarize; bench/peers/pycocotools_eval.py) on one synthetic instance set, segm and bbox. Each side times its
 *   own work from reading the two JSON files to the twelve numbers; the stats must agree to 1e-6.
 * - PQ: segkit's `pqCompute` against panopticapi's `pq_compute` (bench/peers/panopticapi_pq.py, its own pool of one
 *   process per core) on one synthetic COCO panoptic set (bench/panoptic-set.ts); every PQ, SQ, RQ and N compared.
 * All sides (segkit segm, pycocotools segm, segkit bbox, pycocotools bbox, segkit PQ, panopticapi PQ) run once per
 * pass, the order rotating, after one warm-up pass. Prints the tables and writes bench/results/coco-eval.json.
 *
 *   npm run bench:coco-eval -- [--parts coco,pq] [--images 500] [--classes 20] [--pq-images 200] [--passes 5]
 *     [--python /tmp/venv-cocoeval/bin/python] [--panopticapi /tmp/panopticapi] [--keep]
 *
 * The instance set (deterministic, written to a temp dir): images 320-640 x 240-480, 3-12 objects each in 20 classes
 * (polygons with their polygon area as COCO's files have it, some compressed RLE, 1 in 30 a crowd region as
 * uncompressed RLE), detections as `segkit instances` writes them (compressed RLE + bbox + score): most objects found
 * with a jittered mask, some twice, 0-10 false positives per image, scores on a 0.01 grid (ties).
 * --panopticapi (or PANOPTICAPI_DIR): a checkout of github.com/cocodataset/panopticapi, run on Debian's Python
 * (NumPy + Pillow). A missing peer is reported and segkit's side timed alone. --keep leaves the generated files.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createRng, type Rng } from "../src/core/random.js";
import { evaluateCocoFiles } from "../src/eval/coco-eval.js";
import { type PanopticQuality, pqCompute } from "../src/eval/panoptic.js";
import { type Rle, rleCountsBuilder, rleToBbox, rleToString } from "../src/masks/rle.js";
import { machine, PYTHON, writeResults } from "./common.js";
import { maxPqDifference, PQ_CATEGORIES, PQ_HEIGHT, PQ_WIDTH, writePanopticSet } from "./panoptic-set.js";
import { formatSummary, interleave, median, PeerServer, type Side, type Summary } from "./side-by-side.js";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    images: { type: "string", default: "500" },
    classes: { type: "string", default: "20" },
    parts: { type: "string", default: "coco,pq" },
    "pq-images": { type: "string", default: "200" },
    passes: { type: "string", default: "5" },
    panopticapi: { type: "string", default: process.env.PANOPTICAPI_DIR ?? "/tmp/panopticapi" },
    keep: { type: "boolean", default: false },
    python: { type: "string", default: process.env.SEGKIT_COCOEVAL_PYTHON ?? "/tmp/venv-cocoeval/bin/python" },
    out: { type: "string", default: join(here, "results", "coco-eval.json") },
  },
});
const IMAGES = Number(args.images);
const CLASSES = Number(args.classes);
const PQ_IMAGES = Number(args["pq-images"]);
const PASSES = Number(args.passes);
const PARTS = args.parts.split(",");
for (const p of PARTS) if (p !== "coco" && p !== "pq") throw new Error(`--parts: unknown part ${p} (coco, pq)`);
const INSTALL =
  "/usr/bin/python3 -m venv /tmp/venv-cocoeval --system-site-packages && /tmp/venv-cocoeval/bin/pip install pycocotools";

/** An ellipse's mask as RLE, built column by column (no dense mask). */
function ellipseRle(w: number, h: number, cx: number, cy: number, rx: number, ry: number): Rle {
  const b = rleCountsBuilder();
  for (let x = 0; x < w; x++) {
    const u = (x + 0.5 - cx) / rx;
    const half = u * u < 1 ? ry * Math.sqrt(1 - u * u) : -1;
    const y0 = Math.max(0, Math.min(h, Math.round(cy - half)));
    const y1 = half < 0 ? y0 : Math.max(y0, Math.min(h, Math.round(cy + half)));
    b.add(false, y0);
    b.add(true, y1 - y0);
    b.add(false, h - y1);
  }
  return { size: [h, w], counts: b.counts() };
}

function ellipsePolygon(rng: Rng, cx: number, cy: number, rx: number, ry: number): number[] {
  const n = rng.int(12, 28);
  const p: number[] = [];
  for (let k = 0; k < n; k++) {
    const a = (2 * Math.PI * k) / n;
    const q = rng.uniform(0.85, 1);
    p.push(Math.round((cx + q * rx * Math.cos(a)) * 100) / 100, Math.round((cy + q * ry * Math.sin(a)) * 100) / 100);
  }
  return p;
}

function shoelace(p: readonly number[]): number {
  let s = 0;
  const n = p.length / 2;
  for (let k = 0; k < n; k++) {
    const j = (k + 1) % n;
    s += (p[2 * k] as number) * (p[2 * j + 1] as number) - (p[2 * j] as number) * (p[2 * k + 1] as number);
  }
  return Math.abs(s) / 2;
}

function makeSet(seed: number) {
  const rng = createRng(seed);
  const images: { id: number; file_name: string; width: number; height: number }[] = [];
  const annotations: Record<string, unknown>[] = [];
  const results: Record<string, unknown>[] = [];
  const detect = (id: number, cat: number, rle: Rle) =>
    results.push({
      image_id: id,
      category_id: cat,
      segmentation: rleToString(rle),
      bbox: rleToBbox(rle),
      score: Math.round(rng.next() * 100) / 100,
    });
  for (let id = 1; id <= IMAGES; id++) {
    const width = rng.int(320, 641);
    const height = rng.int(240, 481);
    images.push({ id, file_name: `${String(id).padStart(6, "0")}.jpg`, width, height });
    for (let n = rng.int(3, 13); n > 0; n--) {
      const cat = rng.int(1, CLASSES + 1);
      const r = [8, 20, 50, 110][rng.int(0, 4)] as number;
      const rx = r * rng.uniform(0.6, 1.2);
      const ry = r * rng.uniform(0.6, 1.2);
      const cx = rng.uniform(0, width);
      const cy = rng.uniform(0, height);
      const rle = ellipseRle(width, height, cx, cy, rx, ry);
      const crowd = rng.next() < 1 / 30;
      const kind = crowd ? "crowd" : rng.next() < 0.1 ? "rle" : "polygon";
      const polygon = ellipsePolygon(rng, cx, cy, rx, ry);
      const ann = { id: annotations.length + 1, image_id: id, category_id: cat, iscrowd: crowd ? 1 : 0 };
      if (kind === "polygon") {
        annotations.push({ ...ann, segmentation: [polygon], area: shoelace(polygon), bbox: rleToBbox(rle) });
      } else {
        const segmentation = crowd ? { size: rle.size, counts: rle.counts } : rleToString(rle);
        annotations.push({
          ...ann,
          segmentation,
          area: rle.counts.reduce((s, c, k) => s + (k % 2 ? c : 0), 0),
          bbox: rleToBbox(rle),
        });
      }
      for (let d = rng.next() < 0.85 ? (rng.next() < 0.15 ? 2 : 1) : 0; d > 0; d--) {
        const j = () => rng.uniform(-0.15, 0.15) * r;
        const dcat = rng.next() < 0.9 ? cat : rng.int(1, CLASSES + 1);
        detect(id, dcat, ellipseRle(width, height, cx + j(), cy + j(), rx + j(), ry + j()));
      }
    }
    for (let n = rng.int(0, 11); n > 0; n--) {
      const r = [6, 15, 40][rng.int(0, 3)] as number;
      detect(
        id,
        rng.int(1, CLASSES + 1),
        ellipseRle(width, height, rng.uniform(0, width), rng.uniform(0, height), r, r),
      );
    }
  }
  const categories = Array.from({ length: CLASSES }, (_, k) => ({ id: k + 1, name: `class${k + 1}` }));
  return { gt: { images, categories, annotations }, results };
}

interface PeerAnswer {
  seconds: number;
  cpuSeconds: number;
  stats: number[];
}

/** One part of the bench: its sides, the peers to close, and its report once the passes are done. */
interface Part {
  sides: Side[];
  peers: PeerServer[];
  report(summaries: Record<string, Summary>): Record<string, unknown>;
}

/** COCOeval, segm and bbox: segkit against pycocotools on the instance set written to `dir`. */
async function cocoPart(dir: string): Promise<Part> {
  const { gt, results } = makeSet(14);
  const gtFile = join(dir, "gt.json");
  const dtFile = join(dir, "dt.json");
  writeFileSync(gtFile, JSON.stringify(gt));
  writeFileSync(dtFile, JSON.stringify(results));
  console.log(
    `COCOeval set: ${IMAGES} images, ${CLASSES} classes, ${gt.annotations.length} ground truths, ${results.length} detections`,
  );
  const peer = existsSync(args.python)
    ? await PeerServer.start(
        { id: "second", python: args.python },
        join(here, "peers", "pycocotools_eval.py"),
        [],
        INSTALL,
      )
    : null;
  if (!peer) console.log(`peer pycocotools missing (no ${args.python}); install with: ${INSTALL}`);
  const versions = peer?.ready.versions;
  if (versions)
    console.log(`peer: pycocotools ${versions.pycocotools}, numpy ${versions.numpy}, Python ${versions.python}`);
  const stats: Record<string, number[]> = {};
  // CPU seconds of each pass (segkit: its whole process, GC threads included; the peer: its process): moves less
  // than wall time when other processes load the machine
  const cpu: Record<string, number[]> = {};
  const addCpu = (name: string, s: number) => {
    cpu[name] = [...(cpu[name] ?? []), s];
  };
  const sides: Side[] = [];
  for (const iouType of ["segm", "bbox"] as const) {
    sides.push({
      name: `segkit ${iouType}`,
      pass: async () => {
        const start = performance.now();
        const used = process.cpuUsage();
        const [r] = await evaluateCocoFiles(dtFile, gtFile, [iouType]);
        const { user, system } = process.cpuUsage(used);
        addCpu(`segkit ${iouType}`, (user + system) / 1e6);
        stats[`segkit ${iouType}`] = [...(r?.stats ?? [])];
        return [(performance.now() - start) / 1000];
      },
    });
    if (peer) {
      sides.push({
        name: `pycocotools ${iouType}`,
        pass: async () => {
          const a = await peer.call<PeerAnswer>({ op: "eval", gt: gtFile, dt: dtFile, iouType });
          stats[`pycocotools ${iouType}`] = a.stats;
          addCpu(`pycocotools ${iouType}`, a.cpuSeconds);
          return [a.seconds];
        },
      });
    }
  }
  const report = (summaries: Record<string, Summary>) => {
    console.log(
      "\nCOCOeval\n| iouType | segkit s median (range) | pycocotools s | speed-up (pycocotools / segkit) | CPU s segkit / pycocotools (ratio) | max |stats diff| |",
    );
    console.log("|---|---|---|---|---|---|");
    const ratios: Record<string, unknown> = {};
    for (const iouType of ["segm", "bbox"]) {
      const ours = summaries[`segkit ${iouType}`];
      const theirs = summaries[`pycocotools ${iouType}`];
      let ratio = "n/a";
      let diff = "n/a";
      const cpuOurs = median(cpu[`segkit ${iouType}`] ?? []);
      const cpuTheirs = median(cpu[`pycocotools ${iouType}`] ?? []);
      const cpuCell = `${cpuOurs.toFixed(3)} / ${cpuTheirs.toFixed(3)} (${(cpuTheirs / cpuOurs).toFixed(2)}x)`;
      if (ours && theirs) {
        const r = passRatios(theirs, ours);
        ratios[iouType] = r;
        ratio = formatRatio(r);
        const a = stats[`segkit ${iouType}`] ?? [];
        const b = stats[`pycocotools ${iouType}`] ?? [];
        const d = Math.max(...a.map((v, i) => Math.abs(v - (b[i] as number))));
        ratios[`${iouType}StatsMaxDiff`] = d;
        diff = d.toExponential(1);
        if (!(d <= 1e-6)) console.log(`WARNING: ${iouType} stats differ from pycocotools by ${d}`);
      }
      console.log(
        `| ${iouType} | ${formatSummary(ours, 3)} | ${formatSummary(theirs, 3)} | ${ratio} | ${cpuCell} | ${diff} |`,
      );
    }
    console.log(`segkit segm stats: ${(stats["segkit segm"] ?? []).map((v) => v.toFixed(3)).join(" ")}`);
    return {
      set: { images: IMAGES, classes: CLASSES, groundTruths: gt.annotations.length, detections: results.length },
      peer: versions ?? null,
      ratios,
      cpuSeconds: cpu,
      stats,
    };
  };
  return { sides, peers: peer ? [peer] : [], report };
}

/** Panoptic quality: segkit's `pqCompute` against panopticapi's `pq_compute` on the panoptic set written to `dir`. */
async function pqPart(dir: string): Promise<Part> {
  console.log(`PQ set: ${PQ_IMAGES} ground-truth / prediction pairs at ${PQ_WIDTH}x${PQ_HEIGHT}`);
  const files = await writePanopticSet(join(dir, "panoptic"), PQ_IMAGES);
  const api = args.panopticapi;
  let peer: PeerServer | null = null;
  if (!existsSync(join(api, "panopticapi", "evaluation.py"))) {
    console.log(
      `panopticapi not found at ${api}: segkit's PQ runs alone. Pass --panopticapi DIR (or PANOPTICAPI_DIR), a ` +
        "checkout of github.com/cocodataset/panopticapi",
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
      name: "segkit pq",
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
      name: "panopticapi pq",
      pass: async () => {
        const r = await server.call<{ seconds: number; results: PanopticQuality }>({ op: "pq", ...files });
        theirs = r.results;
        return [r.seconds];
      },
    });
  }
  const report = (summaries: Record<string, Summary>) => {
    const s = summaries["segkit pq"];
    const p = summaries["panopticapi pq"];
    const ips = (x: number) => (PQ_IMAGES / x).toFixed(0);
    console.log(`\nPQ on ${PQ_IMAGES} images ${PQ_WIDTH}x${PQ_HEIGHT} (seconds per pass, median (range of passes)):`);
    console.log(`  segkit pqCompute        ${formatSummary(s, 3)}  ${ips(s?.median ?? 0)} images/s`);
    if (p) console.log(`  panopticapi pq_compute  ${formatSummary(p, 3)}  ${ips(p.median)} images/s`);
    const ratio = s && p ? passRatios(p, s) : null;
    const difference = ours && theirs ? maxPqDifference(ours, theirs) : null;
    if (ratio)
      console.log(`  segkit speed / panopticapi's (panopticapi's time over segkit's per pass): ${formatRatio(ratio)}`);
    if (difference !== null) console.log(`  largest difference between the results: ${difference}`);
    if (difference !== null && !(difference <= 1e-6)) console.log("  WARNING: segkit and panopticapi disagree");
    if (ours) {
      console.log(
        `  PQ ${ours.All.pq.toFixed(4)} (things ${ours.Things.pq.toFixed(4)}, stuff ${ours.Stuff.pq.toFixed(4)})`,
      );
    }
    return {
      set: { images: PQ_IMAGES, width: PQ_WIDTH, height: PQ_HEIGHT, categories: PQ_CATEGORIES.length },
      peer: peer ? { python: PYTHON, ...peer.ready } : null,
      speedVsPanopticapi: ratio,
      maxDifference: difference,
      results: ours ?? null,
    };
  };
  return { sides, peers: peer ? [peer] : [], report };
}

/** The reference's time over segkit's in each pass (same load on both): median, range and every pass. */
function passRatios(reference: Summary, segkit: Summary) {
  const perPass = reference.passMedians.map((t, p) => t / (segkit.passMedians[p] as number));
  return { median: median(perPass), low: Math.min(...perPass), high: Math.max(...perPass), perPass };
}

const formatRatio = (r: ReturnType<typeof passRatios>) =>
  `${r.median.toFixed(2)}x (${r.low.toFixed(2)}-${r.high.toFixed(2)})`;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "segkit-bench-coco-eval-"));
  try {
    const parts: Record<string, Part> = {};
    if (PARTS.includes("coco")) parts.coco = await cocoPart(dir);
    if (PARTS.includes("pq")) parts.pq = await pqPart(dir);
    const load = { before: loadavg(), after: [] as number[] };
    console.log(`load average before the passes: ${load.before.map((x) => x.toFixed(2)).join(" ")}`);
    const summaries = await interleave(
      Object.values(parts).flatMap((p) => p.sides),
      PASSES,
    );
    load.after = loadavg();
    console.log(`load average after the passes: ${load.after.map((x) => x.toFixed(2)).join(" ")}`);
    for (const p of Object.values(parts)) for (const peer of p.peers) await peer.close();
    const report: Record<string, unknown> = {
      date: new Date().toISOString(),
      machine: machine(),
      loadAverage: load,
      passes: PASSES,
      seconds: summaries,
    };
    for (const [name, p] of Object.entries(parts)) report[name] = p.report(summaries);
    await writeResults(args.out, report);
  } finally {
    if (args.keep) console.log(`kept the generated files in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

await main();
