/**
 * SAM 2 video tracking: segkit's `createVideoPredictor` (the 7-graph split on onnxruntime-node) against the official
 * `SAM2VideoPredictor` in PyTorch (bench/peers/sam2_video.py) on the same weights, same run.
 * Workload: a clip of --frames frames, one positive point on frame 0 (`init` + `addPrompt`), then `propagate`
 * forward. Per side: the prompt time (opening the clip + the prompt: the official `init_state` loads every frame and
 * encodes frame 0, segkit decodes frames lazily), the time of every propagated frame after the prompted one
 * (median over frames and passes, range of the pass medians) and the peak RSS of the process (VmHWM / ru_maxrss,
 * model loading included; the official predictor keeps every frame in RAM at 1024 x 1024 float32).
 * Every side runs in its own child process per pass (so peaks are per side), the order alternating per pass.
 * The first pass writes both sides' masks; their IoU per frame is printed (a warning below 0.99).
 * Models: --model tiny (the fixture src/sam/fixtures/models/sam2-ailia, on its 8-frame 64x48 clip; the peer rebuilds
 * the same weights as scripts/fixtures/make_sam2.py) or --model hiera-t (--dir, default /tmp/sam2-hiera-t, from
 * `make_sam2.py --hiera-t`, with its --checkpoint .pt) on generated --width x --height frames with moving shapes.
 * Writes bench/results/sam2.json.
 *
 * --long N: segkit alone on an N-frame clip (the shapes bounce, so the object stays in view) with the model in --dir
 * (default: the tiny fixture), to show that memory does not grow with
 * the clip's length (RSS recorded 20 times over the clip). No peer: the official `init_state` holds every frame as
 * float32 at the model's size (N x 3 x S x S x 4 bytes, printed). Writes bench/results/sam2-long.json.
 *
 *   npm run bench:sam2 -- [--model hiera-t|tiny] [--dir DIR] [--checkpoint PT] [--frames 8] [--passes 2]
 *                         [--threads 2] [--width 640] [--height 480] [--sam2 /tmp/sam2-src] [--python PATH]
 *   npm run bench:sam2 -- --long 2000 [--dir DIR] [--width 320 --height 240]
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { writeImagePng } from "../src/io/write.js";
import { findSam2Files, readSam2Constants } from "../src/sam/sam2.js";
import { createVideoPredictor } from "../src/sam/video.js";
import { machine, peakRssMB, writeResults } from "./common.js";
import { formatSummary, median, SECOND_PEER_PYTHON, type Summary, summarize } from "./side-by-side.js";

const here = dirname(fileURLToPath(import.meta.url));
const FIXTURES = join(here, "..", "src", "sam", "fixtures");
const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: "hiera-t" },
    dir: { type: "string" },
    checkpoint: { type: "string" },
    frames: { type: "string", default: "8" },
    passes: { type: "string", default: "2" },
    threads: { type: "string", default: "2" },
    width: { type: "string", default: "640" },
    height: { type: "string", default: "480" },
    sam2: { type: "string", default: "/tmp/sam2-src" },
    python: { type: "string", default: SECOND_PEER_PYTHON },
    long: { type: "string" },
    out: { type: "string" },
    // internal: one segkit run in this process
    worker: { type: "boolean", default: false },
    clip: { type: "string" },
    point: { type: "string" },
    masks: { type: "string" },
  },
});

/** One side's run: the same fields from both children. */
interface Run {
  initMs: number;
  promptMs: number;
  /** Per yielded frame in order; [0] is the prompted frame (already computed, only its memory encoded). */
  frameMs: number[];
  peakRssMB: number;
  rssAfterLoadMB: number;
  /** [propagated frames so far, RSS MB], 20 times over the clip. */
  rssTrace: [number, number][];
}

const rssMB = () => process.memoryUsage().rss / 2 ** 20;

async function worker(): Promise<void> {
  const [x, y] = (args.point as string).split(",").map(Number) as [number, number];
  const video = await createVideoPredictor(args.dir as string, { threads: Number(args.threads) });
  const rssAfterLoadMB = rssMB();
  let t = performance.now();
  await video.init(args.clip as string);
  const initMs = performance.now() - t;
  t = performance.now();
  await video.addPrompt({ frame: 0, object: 1, points: [{ x, y, label: 1 }] });
  const promptMs = performance.now() - t;
  const frameMs: number[] = [];
  const rssTrace: [number, number][] = [];
  const every = Math.max(1, Math.round(Number(args.frames) / 20));
  if (args.masks) await mkdir(args.masks, { recursive: true });
  t = performance.now();
  for await (const r of video.propagate()) {
    frameMs.push(performance.now() - t);
    if (frameMs.length % every === 0) rssTrace.push([frameMs.length, Math.round(rssMB())]);
    const m = r.objects[0]?.mask;
    if (args.masks && m)
      await writeFile(
        join(args.masks, `${r.frame}.bin`),
        m.data.map((v) => (v > 0 ? 1 : 0)),
      );
    t = performance.now();
  }
  await video.dispose();
  const run: Run = { initMs, promptMs, frameMs, peakRssMB: peakRssMB(), rssAfterLoadMB, rssTrace };
  console.log(JSON.stringify(run));
}

/** Runs a child and parses the JSON object on its last stdout line. */
function child(cmd: string, cmdArgs: string[], what: string): Run {
  const r = spawnSync(cmd, cmdArgs, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.error || r.status !== 0) {
    throw new Error(`${what} failed: ${r.error?.message ?? ""}\n${r.stderr.trim().split("\n").slice(-15).join("\n")}`);
  }
  return JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "null") as Run;
}

/** A clip with moving shapes: a gradient background, a disc moving right, a square moving down-left. */
async function makeClip(dir: string, n: number, width: number, height: number): Promise<[number, number]> {
  const disc = (k: number) => [width * (0.25 + 0.05 * k), height * 0.45] as const;
  for (let f = 0; f < n; f++) {
    const k = Math.min(f % 20, 20 - (f % 20)); // 0..10..0: the shapes bounce and stay in view on long clips
    const data = new Uint8Array(width * height * 3);
    const [cx, cy] = disc(k);
    const r = height * 0.12;
    const sx = width * (0.7 - 0.03 * k);
    const sy = height * (0.15 + 0.04 * k);
    const s = height * 0.2;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 3;
        let c = [40 + (x * 80) / width, 60 + (y * 60) / height, 90];
        if ((x - cx) ** 2 + (y - cy) ** 2 < r * r) c = [220, 60, 40];
        else if (x >= sx && x < sx + s && y >= sy && y < sy + s) c = [50, 200, 80];
        data.set(c, i);
      }
    }
    await writeImagePng(join(dir, `${String(f).padStart(5, "0")}.png`), { data, width, height });
  }
  const [x, y] = disc(0);
  return [Math.round(x), Math.round(y)];
}

/** One segkit run in a child process (the worker above). */
function segkitChild(dir: string, clip: string, frames: number, point: readonly number[], masks?: string): Run {
  return child(
    process.execPath,
    [
      ...["--import", "tsx", fileURLToPath(import.meta.url), "--worker", "--dir", dir, "--clip", clip],
      ...["--point", point.join(","), "--threads", args.threads as string, "--frames", String(frames)],
      ...(masks ? ["--masks", masks] : []),
    ],
    "segkit",
  );
}

async function longRun(): Promise<void> {
  const frames = Number(args.long);
  const dir = args.dir ?? join(FIXTURES, "models", "sam2-ailia");
  const files = await findSam2Files(dir);
  if (!files || !(frames > 0)) throw new Error(`--long N needs N > 0 and a 7-graph SAM 2 directory (${dir})`);
  const s = (await readSam2Constants(files.constants)).image_size;
  const size = [Number(args.width), Number(args.height)] as const;
  const work = await mkdtemp(join(tmpdir(), "segkit-bench-sam2-"));
  try {
    const clip = join(work, "clip");
    await mkdir(clip);
    const point = await makeClip(clip, frames, size[0], size[1]);
    const loadStart = loadavg();
    console.log(
      `SAM 2 long clip: ${dir}, ${frames} frames ${size.join("x")}, model size ${s}; load ${loadStart.map((v) => v.toFixed(2)).join(" ")}`,
    );
    const run = segkitChild(dir, clip, frames, point);
    const loadEnd = loadavg();
    const officialFramesGB = (frames * 3 * s * s * 4) / 2 ** 30;
    console.log("| propagated frames | RSS, MB |\n|---|---|");
    for (const [f, mb] of run.rssTrace) console.log(`| ${f} | ${mb} |`);
    console.log(
      `peak ${run.peakRssMB.toFixed(0)} MB (after loading the model ${run.rssAfterLoadMB.toFixed(0)} MB); ` +
        `median ${median(run.frameMs.slice(1)).toFixed(0)} ms per frame; the official init_state would hold ` +
        `${officialFramesGB.toFixed(1)} GB of frames (${frames} x 3 x ${s} x ${s} float32); load at the end ` +
        loadEnd.map((v) => v.toFixed(2)).join(" "),
    );
    await writeResults(args.out ?? join(here, "results", "sam2-long.json"), {
      date: new Date().toISOString(),
      machine: machine(),
      loadavg: { start: loadStart, end: loadEnd },
      config: { dir, frames, size, point, threads: args.threads, imageSize: s },
      method:
        "one segkit child (createVideoPredictor, default memoryFrames), a point on frame 0, propagate forward; RSS 20 times over the clip; peak: VmHWM",
      segkit: { ...run, frameMs: undefined, perFrameMs: median(run.frameMs.slice(1)) },
      officialFramesGB,
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function iou(a: Uint8Array, b: Uint8Array): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    inter += (a[i] as number) & (b[i] as number);
    union += (a[i] as number) | (b[i] as number);
  }
  return union === 0 ? 1 : inter / union;
}

async function main(): Promise<void> {
  const tiny = args.model === "tiny";
  if (!tiny && args.model !== "hiera-t") throw new Error(`--model ${args.model}: tiny or hiera-t`);
  const dir = args.dir ?? (tiny ? join(FIXTURES, "models", "sam2-ailia") : "/tmp/sam2-hiera-t");
  const checkpoint = args.checkpoint ?? join(dir, "sam2.1_hiera_t_random.pt");
  const passes = Number(args.passes);
  const threads = args.threads as string;
  const work = await mkdtemp(join(tmpdir(), "segkit-bench-sam2-"));
  const loadStart = loadavg();
  try {
    let clip = join(FIXTURES, "sam2", "clip");
    let point: [number, number] = [12, 16];
    let size = [64, 48];
    let frames = 8;
    if (!tiny) {
      clip = join(work, "clip");
      await mkdir(clip);
      frames = Number(args.frames);
      size = [Number(args.width), Number(args.height)];
      point = await makeClip(clip, frames, size[0] as number, size[1] as number);
    }
    console.log(
      `SAM 2 ${args.model} (${dir}), ${frames} frames ${size.join("x")}, point ${point.join(",")} on frame 0, ` +
        `${threads} threads, ${passes} passes; load average ${loadStart.map((v) => v.toFixed(2)).join(" ")}`,
    );
    const sides = {
      segkit: (masks?: string) => segkitChild(dir, clip, frames, point, masks),
      pytorch: (masks?: string) =>
        child(
          args.python as string,
          [
            ...[join(here, "peers", "sam2_video.py"), "--sam2", args.sam2 as string, "--frames", clip],
            ...(tiny ? ["--model", "tiny"] : ["--checkpoint", checkpoint]),
            ...["--point", point.join(","), "--threads", threads, ...(masks ? ["--masks", masks] : [])],
          ],
          "PyTorch peer",
        ),
    };
    const runs: Record<keyof typeof sides, Run[]> = { segkit: [], pytorch: [] };
    for (let p = 0; p < passes; p++) {
      const order = (p % 2 === 0 ? ["segkit", "pytorch"] : ["pytorch", "segkit"]) as (keyof typeof sides)[];
      for (const side of order) {
        const run = sides[side](p === 0 ? join(work, side) : undefined);
        runs[side].push(run);
        console.log(
          `pass ${p + 1} ${side}: prompt ${(run.initMs + run.promptMs).toFixed(0)} ms, frames ` +
            `${run.frameMs.map((v) => v.toFixed(0)).join(" ")} ms, peak ${run.peakRssMB.toFixed(0)} MB`,
        );
      }
    }
    const loadEnd = loadavg();
    const ious = Array.from({ length: frames }, (_, f) =>
      iou(readFileSync(join(work, "segkit", `${f}.bin`)), readFileSync(join(work, "pytorch", `${f}.bin`))),
    );
    const stats = (rs: Run[]) => ({
      perFrame: summarize(rs.map((r) => r.frameMs.slice(1))),
      prompt: summarize(rs.map((r) => [r.initMs + r.promptMs])),
      peakMB: summarize(rs.map((r) => [r.peakRssMB])),
      afterLoadMB: summarize(rs.map((r) => [r.rssAfterLoadMB])),
    });
    const s = stats(runs.segkit);
    const t = stats(runs.pytorch);
    const ratio = (a: Summary, b: Summary) => a.median / b.median;
    // the same pass's medians: load from other processes moves whole passes
    const passRatios = t.perFrame.passMedians.map((v, p) => v / (s.perFrame.passMedians[p] as number));
    console.log("\nmedian (range of the pass medians); ratio = PyTorch / segkit (> 1: segkit faster or smaller)");
    console.log("| | segkit | PyTorch | ratio |\n|---|---|---|---|");
    const rows: [string, keyof ReturnType<typeof stats>, number][] = [
      ["ms per propagated frame", "perFrame", 0],
      ["prompt (open clip + point on frame 0), ms", "prompt", 0],
      ["peak RSS, MB", "peakMB", 0],
      ["RSS after loading the model, MB", "afterLoadMB", 0],
    ];
    for (const [title, k, d] of rows)
      console.log(
        `| ${title} | ${formatSummary(s[k], d)} | ${formatSummary(t[k], d)} | ${ratio(t[k], s[k]).toFixed(2)} |`,
      );
    console.log(`per-pass ratios, ms per frame: ${passRatios.map((v) => v.toFixed(2)).join(" ")}`);
    console.log(`mask IoU segkit vs PyTorch per frame: ${ious.map((v) => v.toFixed(4)).join(" ")}`);
    const low = ious.filter((v) => v < 0.99).length;
    if (low) console.log(`WARNING: ${low} of ${frames} frames differ (IoU < 0.99) between segkit and PyTorch`);
    console.log(`load average at the end ${loadEnd.map((v) => v.toFixed(2)).join(" ")}`);
    await writeResults(args.out ?? join(here, "results", "sam2.json"), {
      date: new Date().toISOString(),
      machine: machine(),
      loadavg: { start: loadStart, end: loadEnd },
      config: { model: args.model, dir, checkpoint: tiny ? null : checkpoint, frames, size, point, threads, passes },
      method:
        "each side a fresh child process per pass, order alternating; perFrame: every propagated frame after the prompted one; prompt: init (official init_state loads all frames and encodes frame 0; segkit opens the directory lazily) + the point on frame 0; peak: VmHWM (Node) / ru_maxrss (Python) of the child, model loading included",
      segkit: { engine: "onnxruntime-node", ...s, runs: runs.segkit },
      pytorch: { python: args.python, ...t, runs: runs.pytorch },
      ratios: {
        perFrame: ratio(t.perFrame, s.perFrame),
        prompt: ratio(t.prompt, s.prompt),
        peakMB: ratio(t.peakMB, s.peakMB),
        perFramePerPass: passRatios,
      },
      maskIou: ious,
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await (args.worker ? worker() : args.long ? longRun() : main());
