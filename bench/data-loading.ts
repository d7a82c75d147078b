/**
 * Input-pipeline throughput on Oxford-IIIT Pet: segkit `batches()` (with and without augmentation) against
 * Pillow + NumPy doing the same decode and resize (bench/peers/pillow_data_loading.py), single process and
 * with 2 worker processes. Per configuration: one warm-up pass, then `--repeats` timed passes over every pair;
 * images/s counts the images actually yielded. Prints a table and writes bench/results/data.json.
 *
 *   npm run bench:data -- [--dataset DIR] [--sizes 128,256] [--repeats 3] [--train-rate 3]
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { errorMessage } from "../src/core/errors.js";
import { openDataset } from "../src/data/formats.js";
import { batches } from "../src/data/loader.js";
import { machine, measure, runPythonPeer, type Stats, writeResults } from "./common.js";

const here = dirname(fileURLToPath(import.meta.url));
const INSTALL = "apt-get install -y python3-pil python3-numpy";
const BATCH_SIZE = 8;

const { values: args } = parseArgs({
  options: {
    dataset: { type: "string", default: resolve(here, "../../shared/datasets/oxford-iiit-pet") },
    sizes: { type: "string", default: "128,256" },
    repeats: { type: "string", default: "3" },
    // Assumption, not measured here: the TF.js wasm U-Net training step rate at 128x128 measured for issue 4.
    "train-rate": { type: "string", default: "3" },
    out: { type: "string", default: join(here, "results", "data.json") },
  },
});
const sizes = args.sizes.split(",").map(Number);
const repeats = Number(args.repeats);
const trainRate = Number(args["train-rate"]);

type PerSize<T> = Record<string, T>;
interface Peer {
  versions: { python: string; pillow: string; numpy: string };
  pairs: number;
  pillow: PerSize<Stats>;
  pillow2: PerSize<Stats>;
}

/** The Pillow peer's results, or null (with the reason printed) when Python, Pillow or NumPy is missing. */
function runPeer(): Peer | null {
  const script = join(here, "peers", "pillow_data_loading.py");
  return runPythonPeer<Peer>(script, [args.dataset, "--sizes", args.sizes, "--repeats", args.repeats], INSTALL);
}

const began = performance.now();
const ds = await openDataset(args.dataset, { format: "oxford-pet" }).catch((err: unknown) => {
  console.error(`${errorMessage(err)} (pass --dataset DIR: the Oxford-IIIT Pet root with images/ and annotations/)`);
  process.exit(1);
});
console.log(
  `Oxford-IIIT Pet at ${args.dataset}: ${ds.length} pairs (${ds.skipped.length} files skipped by the lister)`,
);

const segkit: PerSize<{ plain: Stats; augment: Stats }> = {};
for (const size of sizes) {
  const loader = (augment: boolean) => async (epoch: number) => {
    let n = 0;
    for await (const b of batches(ds, { size, batchSize: BATCH_SIZE, augment, epoch })) n += b.size;
    return n;
  };
  segkit[size] = { plain: await measure(loader(false), repeats), augment: await measure(loader(true), repeats) };
}
const peer = runPeer();

const ratio = (rates: PerSize<Stats> | undefined) =>
  Object.fromEntries(
    sizes.map((s) => {
      const mine = segkit[s]?.plain.best;
      const theirs = rates?.[s]?.best;
      return [s, mine && theirs ? mine / theirs : null];
    }),
  );

const rows: [string, number, Stats | undefined][] = sizes.flatMap((s) => [
  ["segkit batches()", s, segkit[s]?.plain],
  ["segkit batches() + augment", s, segkit[s]?.augment],
  ["Pillow+NumPy, 1 process", s, peer?.pillow[s]],
  ["Pillow+NumPy, Pool(2)", s, peer?.pillow2[s]],
]);
const fmt = (x: number | undefined, digits = 0) => (x === undefined ? "n/a" : x.toFixed(digits));
const cell = (mine: Stats | undefined, theirs: Stats | undefined) =>
  mine && theirs ? `${(mine.best / theirs.best).toFixed(2)}x` : "n/a";
const table = [
  ["config", "size", "images", "images/s best", "median", "vs Pillow 1 proc", "vs Pillow Pool(2)"],
  ...rows.map(([name, s, st]) => [
    name,
    `${s}x${s}`,
    fmt(st?.images),
    fmt(st?.best),
    fmt(st?.median),
    cell(st, peer?.pillow[s]),
    cell(st, peer?.pillow2[s]),
  ]),
];
const widths = table[0]?.map((_, c) => Math.max(...table.map((r) => r[c]?.length ?? 0))) ?? [];
for (const r of table)
  console.log(r.map((v, c) => (c === 0 ? v.padEnd(widths[c] ?? 0) : v.padStart(widths[c] ?? 0))).join("  "));

const fed = segkit[128]?.augment.best;
console.log(
  fed === undefined
    ? "Training feed: not assessed (128x128 was not measured)."
    : `Training feed: segkit with augmentation yields ${fed.toFixed(0)} images/s at 128x128; training is ASSUMED to ` +
        `consume ${trainRate} images/s (TF.js wasm U-Net step rate measured for issue 4, not measured here; ` +
        `--train-rate to change) -> the pipeline ${fed >= trainRate ? "can" : "CANNOT"} feed training ` +
        `(${(fed / trainRate).toFixed(0)}x, i.e. about ${((100 * trainRate) / fed).toFixed(1)}% of its throughput).`,
);

const seconds = (performance.now() - began) / 1000;
const report = {
  date: new Date().toISOString(),
  durationSeconds: Math.round(seconds),
  machine: {
    ...machine(),
    sharp: sharp.versions.sharp,
    libvips: sharp.versions.vips,
    python: peer?.versions.python ?? null,
    pillow: peer?.versions.pillow ?? null,
    numpy: peer?.versions.numpy ?? null,
  },
  dataset: { path: resolve(args.dataset), pairs: ds.length, skippedFiles: ds.skipped.length },
  method: {
    batchSize: BATCH_SIZE,
    warmupPasses: 1,
    timedPasses: repeats,
    statistic: "best pass (images/s); median and all passes kept",
    segkit: "batches(): decode image + trimap, value map, resize (image bilinear, mask nearest), default prefetch",
    pillow: "convert('RGB').resize(BILINEAR) + trimap resize(NEAREST) - 1, np.stack batches; Pool(2) = 2 workers",
  },
  results: { segkit, pillow: peer?.pillow ?? null, pillow2: peer?.pillow2 ?? null },
  ratios: { vsPillow: ratio(peer?.pillow), vsPillow2: ratio(peer?.pillow2) },
  training: { assumedImagesPerSecond: trainRate, size: 128, canFeed: fed === undefined ? null : fed >= trainRate },
};
await writeResults(args.out, report);
console.log(`(bench took ${seconds.toFixed(0)} s)`);
