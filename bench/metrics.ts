/**
 * Metrics throughput: confusion-matrix accumulation (megapixels/s) on 512x512 masks with 12 classes against NumPy
 * `bincount` on the same masks in the same run (bench/peers/numpy_confusion.py), and the time of boundary F1 and
 * boundary IoU on one 512x512 mask. Prints a table and writes bench/results/metrics.json.
 *
 *   npm run bench:metrics -- [--images 24] [--repeats 5]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createMask } from "../src/core/image.js";
import { createRng } from "../src/core/random.js";
import { BoundaryMetrics } from "../src/metrics/boundary.js";
import { ConfusionMatrix } from "../src/metrics/confusion.js";
import { machine, measure, runPythonPeer, type Stats, writeResults } from "./common.js";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    images: { type: "string", default: "24" },
    repeats: { type: "string", default: "5" },
    out: { type: "string", default: join(here, "results", "metrics.json") },
  },
});
const N = Number(args.images);
const repeats = Number(args.repeats);
const SIZE = 512;
const C = 12;
const IGNORE = 255;

/**
 * Scene-like masks: 12 classes in irregular 32-96 px regions; the prediction agrees on about 85% of the pixels
 * (regions shifted by a few pixels plus 5% speckle); 3% of the truth is ignored.
 */
function makeMasks(seed: number): { truth: Uint8Array; pred: Uint8Array } {
  const rng = createRng(seed);
  const truth = new Uint8Array(SIZE * SIZE);
  const pred = new Uint8Array(SIZE * SIZE);
  const cell = rng.int(32, 97);
  const labels = Array.from({ length: 400 }, () => rng.int(0, C));
  const shift = rng.int(1, 5);
  const label = (x: number, y: number) =>
    labels[
      (((Math.floor(y / cell) * 17 + Math.floor((x + Math.floor(y / 7)) / cell)) % labels.length) + labels.length) %
        labels.length
    ] as number;
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const i = y * SIZE + x;
      truth[i] = rng.next() < 0.03 ? IGNORE : label(x, y);
      pred[i] = rng.next() < 0.05 ? rng.int(0, C) : label(x + shift, y);
    }
  }
  return { truth, pred };
}

const masks = Array.from({ length: N }, (_, k) => makeMasks(k));

// segkit: ConfusionMatrix.update over all images per pass.
const segkitCm = new ConfusionMatrix(C, { ignoreIndex: IGNORE });
const segkit: Stats = await measure(() => {
  segkitCm.reset();
  for (const m of masks) segkitCm.update(m.truth, m.pred);
  return (N * SIZE * SIZE) / 1e6;
}, repeats);

// NumPy peer on the same bytes: all truths, then all predictions.
const dir = mkdtempSync(join(tmpdir(), "segkit-bench-"));
const file = join(dir, "masks.u8");
const buf = new Uint8Array(2 * N * SIZE * SIZE);
masks.forEach((m, k) => {
  buf.set(m.truth, k * SIZE * SIZE);
  buf.set(m.pred, (N + k) * SIZE * SIZE);
});
writeFileSync(file, buf);
interface Peer {
  versions: { python: string; numpy: string };
  megapixelsPerSecond: { best: number; median: number; passes: number[] };
  confusion: number[][];
}
const peer = runPythonPeer<Peer>(
  join(here, "peers", "numpy_confusion.py"),
  [file, N, SIZE, SIZE, C, IGNORE, repeats].map(String),
  "apt-get install -y python3-numpy",
);
rmSync(dir, { recursive: true, force: true });
const agree = peer ? JSON.stringify(peer.confusion) === JSON.stringify(segkitCm.toArray()) : null;
if (agree === false) throw new Error("segkit and NumPy confusion matrices differ: the benchmark compares unequal work");

// Boundary metrics on one 512x512 mask: best of `repeats` after a warm-up.
async function timeMs(fn: () => void): Promise<number> {
  const s = await measure(() => {
    fn();
    return 1;
  }, repeats);
  return 1000 / s.best;
}
const first = masks[0] as { truth: Uint8Array; pred: Uint8Array };
const t = createMask(SIZE, SIZE, first.truth);
const p = createMask(SIZE, SIZE, first.pred);
const boundaryMs = await timeMs(() => new BoundaryMetrics(C).update(t, p));
const f1Ms = await timeMs(() => new BoundaryMetrics(C, { only: "f1" }).update(t, p));

const ratio = peer ? segkit.best / peer.megapixelsPerSecond.best : null;
console.log(`confusion matrix, ${N} masks ${SIZE}x${SIZE}, ${C} classes, 3% ignored:`);
console.log(`  segkit ConfusionMatrix.update  ${segkit.best.toFixed(0).padStart(6)} MP/s`);
console.log(
  `  NumPy bincount                 ${peer ? peer.megapixelsPerSecond.best.toFixed(0).padStart(6) : "   n/a"} MP/s`,
);
console.log(
  `  ratio segkit / NumPy           ${ratio === null ? "n/a" : `${ratio.toFixed(2)}x`} (same counts: ${agree})`,
);
console.log(`boundary F1 on one ${SIZE}x${SIZE} mask, ${C} classes: ${f1Ms.toFixed(1)} ms (target < 50 ms)`);
console.log(`boundary F1 + boundary IoU on the same mask: ${boundaryMs.toFixed(1)} ms`);

await writeResults(args.out, {
  date: new Date().toISOString(),
  machine: { ...machine(), python: peer?.versions.python ?? null, numpy: peer?.versions.numpy ?? null },
  method: {
    masks: `${N} scene-like ${SIZE}x${SIZE} masks, ${C} classes, 3% ignore pixels`,
    passes: `1 warm-up + ${repeats} timed; best pass`,
    numpy: "per image: keep = t != 255; np.bincount(C * t[keep] + p[keep], minlength=C*C)",
  },
  results: {
    segkit: { megapixelsPerSecond: segkit },
    numpy: peer ? { megapixelsPerSecond: peer.megapixelsPerSecond } : null,
    boundaryF1Ms: f1Ms,
    boundaryF1AndIoUMs: boundaryMs,
    sameCounts: agree,
  },
  ratios: { vsNumpy: ratio },
});
