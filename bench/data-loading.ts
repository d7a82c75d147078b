/**
 * Input-pipeline throughput on Oxford-IIIT Pet: segkit `batches()` (with and without augmentation) against
 * Pillow + NumPy doing the same decode and resize (bench/peers/pillow_data_loading.py): single process, and a Pool
 * of 2 workers (the headline: segkit uses both cores too). Neither side applies embedded ICC profiles. Passes are interleaved: each round runs one pass of every configuration in turn, after one warm-up
 * round, so that load from other processes falls on both sides alike. Reported per configuration: the median
 * images/s with min and max over the rounds; ratios are medians of the per-round ratios (segkit's pass / the
 * peer's pass of the same round). Also CPU milliseconds per image on each side. Prints a table and writes
 * bench/results/data.json.
 *
 *   npm run bench:data -- [--dataset DIR] [--sizes 128,256] [--repeats 5] [--train-rate 3]
 */
import { spawn } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { errorMessage } from "../src/core/errors.js";
import { openDataset } from "../src/data/formats.js";
import { minMedianMax } from "../src/data/inspect.js";
import { batches } from "../src/data/loader.js";
import { machine, PYTHON, writeResults } from "./common.js";

const here = dirname(fileURLToPath(import.meta.url));
const INSTALL = "apt-get install -y python3-pil python3-numpy";
const BATCH_SIZE = 8;

const { values: args } = parseArgs({
  options: {
    dataset: { type: "string", default: resolve(here, "../../shared/datasets/oxford-iiit-pet") },
    sizes: { type: "string", default: "128,256" },
    repeats: { type: "string", default: "5" },
    // Assumption, not measured here: the TF.js wasm U-Net training step rate at 128x128 measured for issue 4.
    "train-rate": { type: "string", default: "3" },
    out: { type: "string", default: join(here, "results", "data.json") },
  },
});
const sizes = args.sizes.split(",").map(Number);
const repeats = Number(args.repeats);
const trainRate = Number(args["train-rate"]);

/** Images/s over the timed rounds: median, min, max, every pass in round order. */
interface Spread {
  median: number;
  min: number;
  max: number;
  passes: number[];
}

function spread(passes: number[]): Spread {
  return { ...minMedianMax(passes), passes };
}

/** The Pillow peer as a child process that runs one pass per request, or null when Python, Pillow or NumPy is missing. */
async function startPeer() {
  const script = join(here, "peers", "pillow_data_loading.py");
  const child = spawn(PYTHON, [script, args.dataset], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown> | null> => {
    const line = await lines.next();
    return line.done ? null : (JSON.parse(line.value) as Record<string, unknown>);
  };
  const hello = await next().catch(() => null);
  if (!hello || "error" in hello) {
    console.log(`peer ${script} not run: ${String(hello?.error ?? "no answer")}`);
    console.log(`Install what it needs for ${PYTHON} with: ${INSTALL}`);
    child.kill();
    return null;
  }
  return {
    versions: hello.versions as { python: string; pillow: string; numpy: string },
    pairs: hello.pairs as number,
    /** One pass; images/s. */
    async pass(size: number, mode: string): Promise<Pass> {
      child.stdin.write(`${size} ${mode}\n`);
      const r = await next();
      if (!r) throw new Error("the Pillow peer exited");
      const images = r.images as number;
      return { images, rate: images / (r.seconds as number), cpuMs: (1000 * (r.cpuSeconds as number)) / images };
    },
    stop: () => child.stdin.end(),
  };
}

const began = performance.now();
const ds = await openDataset(args.dataset, { format: "oxford-pet" }).catch((err: unknown) => {
  console.error(`${errorMessage(err)} (pass --dataset DIR: the Oxford-IIIT Pet root with images/ and annotations/)`);
  process.exit(1);
});
console.log(
  `Oxford-IIIT Pet at ${args.dataset}: ${ds.length} pairs (${ds.skipped.length} files skipped by the lister)`,
);
const peer = await startPeer();

const CONFIGS = [
  { key: "segkit", name: "segkit batches()" },
  { key: "segkitAugment", name: "segkit batches() + augment" },
  { key: "pillow", name: "Pillow+NumPy, 1 process", mode: "single" },
  { key: "pillow2", name: "Pillow+NumPy, Pool(2)", mode: "pool2" },
] as const;
type Key = (typeof CONFIGS)[number]["key"];

/** One pass: images yielded, images/s, and CPU milliseconds per image (all threads of the process(es) doing it). */
interface Pass {
  images: number;
  rate: number;
  cpuMs: number;
}

async function pass(key: Key, size: number): Promise<Pass | undefined> {
  const config = CONFIGS.find((c) => c.key === key);
  if (config && "mode" in config) return peer?.pass(size, config.mode);
  const start = performance.now();
  const cpu = process.cpuUsage();
  let images = 0;
  for await (const b of batches(ds, { size, batchSize: BATCH_SIZE, augment: key === "segkitAugment" })) {
    images += b.size;
  }
  const { user, system } = process.cpuUsage(cpu);
  return { images, rate: images / ((performance.now() - start) / 1000), cpuMs: (user + system) / 1000 / images };
}

const results: Record<string, Partial<Record<Key, Spread & { images: number; cpuMsPerImage: Spread }>>> = {};
const ratios: Record<string, Record<string, (Spread & { perRound: number[] }) | null>> = {};
for (const size of sizes) {
  const rates = new Map<Key, number[]>();
  const cpuMs = new Map<Key, number[]>();
  const images = new Map<Key, number>();
  for (let round = 0; round <= repeats; round++) {
    for (const { key } of CONFIGS) {
      const r = await pass(key, size);
      if (!r || round === 0) continue; // round 0 warms up
      rates.set(key, [...(rates.get(key) ?? []), r.rate]);
      cpuMs.set(key, [...(cpuMs.get(key) ?? []), r.cpuMs]);
      images.set(key, r.images);
    }
    if (round > 0) console.log(`${size}x${size} round ${round}/${repeats} done`);
  }
  results[size] = Object.fromEntries(
    [...rates].map(([key, passes]) => [
      key,
      { ...spread(passes), images: images.get(key) ?? 0, cpuMsPerImage: spread(cpuMs.get(key) ?? []) },
    ]),
  );
  const mine = rates.get("segkit");
  ratios[size] = Object.fromEntries(
    (["pillow", "pillow2"] as const).map((key) => {
      const theirs = rates.get(key);
      const perRound = mine && theirs ? mine.map((m, k) => m / (theirs[k] ?? Number.NaN)) : undefined;
      return [key, perRound ? { ...spread(perRound), perRound } : null];
    }),
  );
}
peer?.stop();

const fmt = (x: number | undefined, digits = 0) => (x === undefined ? "n/a" : x.toFixed(digits));
const ratioCell = (r: Spread | null | undefined) =>
  r ? `${r.median.toFixed(2)}x (${r.min.toFixed(2)}-${r.max.toFixed(2)})` : "n/a";
const table = [
  [
    "config",
    "size",
    "images",
    "images/s median",
    "min-max",
    "CPU ms/image",
    "segkit vs it: median (min-max) of rounds",
  ],
  ...sizes.flatMap((s) =>
    CONFIGS.map(({ key, name }) => {
      const st = results[s]?.[key];
      const r = key.startsWith("pillow") ? ratioCell(ratios[s]?.[key]) : "";
      const range = st ? `${fmt(st.min)}-${fmt(st.max)}` : "n/a";
      return [name, `${s}x${s}`, fmt(st?.images), fmt(st?.median), range, fmt(st?.cpuMsPerImage.median, 2), r];
    }),
  ),
];
const widths = table[0]?.map((_, c) => Math.max(...table.map((r) => r[c]?.length ?? 0))) ?? [];
for (const r of table)
  console.log(r.map((v, c) => (c === 0 ? v.padEnd(widths[c] ?? 0) : v.padStart(widths[c] ?? 0))).join("  "));

const fed = results[128]?.segkitAugment?.median;
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
    warmupRounds: 1,
    timedRounds: repeats,
    interleaving: `each round runs one pass of every configuration in turn: ${CONFIGS.map((c) => c.key).join(", ")}`,
    statistic: "median images/s over the rounds with min and max; ratios: median (min, max) of per-round ratios",
    cpuMsPerImage:
      "CPU time per image of everything doing the work (segkit: its whole process, libuv and libvips threads " +
      "included; Pillow: the worker(s) plus, for the pools, the parent), median over the rounds: the cost " +
      "that decides throughput when both cores are busy, and less sensitive to other load than images/s",
    segkit: "batches(): decode image + trimap, value map, resize (image bilinear, mask nearest), default prefetch",
    pillow: "convert('RGB').resize(BILINEAR) + trimap resize(NEAREST) - 1, np.stack batches; Pool(2) = 2 workers",
    colour: "neither side applies an embedded ICC profile (segkit's readImage does not, as Pillow does not)",
    headline: "ratios.vsPillow2: segkit batches() / Pillow Pool(2), the same decode and resize on both cores",
  },
  results,
  ratios: {
    vsPillow: ratioMedians("pillow"),
    vsPillow2: ratioMedians("pillow2"),
    perSize: ratios,
  },
  training: { assumedImagesPerSecond: trainRate, size: 128, canFeed: fed === undefined ? null : fed >= trainRate },
};
await writeResults(args.out, report);
console.log(`(bench took ${seconds.toFixed(0)} s)`);

/** size -> median per-round ratio of segkit to the peer configuration `key` (null without the peer). */
function ratioMedians(key: string): Record<string, number | null> {
  return Object.fromEntries(sizes.map((s) => [s, ratios[s]?.[key]?.median ?? null]));
}
