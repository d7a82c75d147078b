/**
 * Segment Anything latency at the real model sizes, random weights (speed does not depend on weight values):
 * SAM's ViT-B image encoder and the ~4M-parameter prompt encoder + mask decoder, defined in PyTorch by the peer
 * bench/peers/torch_sam.py (segment-anything's modules written out), exported there with `torch.onnx.export`
 * (opset 17, the decoder with the official export's I/O) into a temp directory in the `split` layout, then:
 * - segkit (`loadSamModel` via `createSamPredictor`, onnxruntime-node, --threads 2): the encoder on a
 *   [1,3,1024,1024] tensor (`model.encode`) and `setImage` on a --width x --height image (preprocessing
 *   included, a new image each run); per click, the predictor path (`predict`: low-res decode + upscaling of the
 *   returned masks only) and the official full-size path (`model.decode` with `fullSize`: the graph's `masks`
 *   output, all 4 channels upscaled in graph);
 * - PyTorch (same run, torch.set_num_threads(--threads)): the encoder forward on [1,3,1024,1024], the full
 *   `SamOnnxModel` forward per click and its low-res part.
 * Medians of --encoder-runs / --decoder-runs runs after warm-up. Targets (issue 6): per-click under 50 ms, encoder
 * faster than PyTorch. Writes bench/results/sam.json.
 *
 *   npm run bench:sam -- [--threads 2] [--encoder-runs 3] [--decoder-runs 10] [--width 640] [--height 480]
 *                        [--model DIR (skip the export, reuse a split directory)] [--keep]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { SamDecodePrompt, SamTensor } from "../src/sam/model.js";
import { createSamPredictor } from "../src/sam/predictor.js";
import { machine, runPythonPeer, writeResults } from "./common.js";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    "encoder-runs": { type: "string", default: "3" },
    "decoder-runs": { type: "string", default: "10" },
    "torch-encoder-runs": { type: "string" },
    "torch-encoder-warmup": { type: "string", default: "1" },
    width: { type: "string", default: "640" },
    height: { type: "string", default: "480" },
    model: { type: "string" },
    keep: { type: "boolean", default: false },
    out: { type: "string", default: join(here, "results", "sam.json") },
  },
});
const THREADS = Number(args.threads);
const ENCODER_RUNS = Number(args["encoder-runs"]);
const DECODER_RUNS = Number(args["decoder-runs"]);
const WIDTH = Number(args.width);
const HEIGHT = Number(args.height);
const TARGET_CLICK_MS = 50;

interface Peer {
  versions: { python: string; torch: string };
  threads: number;
  params: { encoder: number; decoder: number };
  imageSize: [number, number];
  outputs: { masks: number[]; lowResMasks: number[] };
  encoderMs: number;
  encoderRuns: number[];
  decoderFullMs: number;
  decoderFullRuns: number[];
  decoderLowResMs: number;
  decoderLowResRuns: number[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

/** Median milliseconds of `fn` over `runs` calls after `warmup` calls; `fn(k)` gets the call's index. */
async function time(fn: (k: number) => Promise<unknown>, runs: number, warmup: number) {
  for (let k = 0; k < warmup; k++) await fn(k);
  const all: number[] = [];
  for (let k = 0; k < runs; k++) {
    const t = performance.now();
    await fn(warmup + k);
    all.push(performance.now() - t);
  }
  return { ms: median(all), runs: all };
}

/** Deterministic pseudo-random fill (xorshift), different per seed. */
function noise(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296) * scale;
  }
  return out;
}

// The peer exports the graphs (unless --model is given) and times PyTorch, before segkit runs: never both at once.
const dir = args.model ?? (await mkdtemp(join(tmpdir(), "segkit-bench-sam-")));
console.log(
  args.model ? `using ${dir}` : `exporting ViT-B encoder + decoder to ${dir} and timing PyTorch (a few minutes)...`,
);
const peer = runPythonPeer<Peer>(
  join(here, "peers", "torch_sam.py"),
  [
    ...(args.model ? [] : ["--export", dir]),
    "--threads",
    String(THREADS),
    "--encoder-runs",
    args["torch-encoder-runs"] ?? String(ENCODER_RUNS),
    "--encoder-warmup",
    args["torch-encoder-warmup"],
    "--decoder-runs",
    String(DECODER_RUNS),
    "--width",
    String(WIDTH),
    "--height",
    String(HEIGHT),
  ],
  "apt-get install -y python3-torch",
);
if (!peer && !args.model) {
  await rm(dir, { recursive: true, force: true });
  throw new Error("the PyTorch peer did not run, so there are no graphs to load (pass --model DIR to reuse some)");
}

const predictor = await createSamPredictor(dir, { threads: THREADS, memoryCache: 1 });
const model = predictor.model;
console.log(`segkit: ${model.layout} layout, encoder input ${model.encoderInput}, ${THREADS} threads`);

// Encoder on a ready [1,3,1024,1024] tensor: what the PyTorch forward is timed on.
const S = model.preprocess.padSize;
const tensor: SamTensor = { data: noise(3 * S * S, 1, 2), dims: [1, 3, S, S] };
const encode = await time(() => model.encode(tensor), ENCODER_RUNS, 1);
console.log(`encoder (model.encode): ${encode.ms.toFixed(0)} ms`);

// setImage on a new image each run (no cache hit): preprocessing + encoder.
const image = (k: number) => ({
  data: Uint8Array.from(noise(HEIGHT * WIDTH * 3, 100 + k, 256), (v) => Math.floor(v)),
  width: WIDTH,
  height: HEIGHT,
});
const setImage = await time(
  async (k) => {
    const info = await predictor.setImage(image(k));
    if (info.source !== "encoder") throw new Error(`setImage hit the ${info.source} cache`);
  },
  ENCODER_RUNS,
  0,
);
console.log(`setImage (${WIDTH}x${HEIGHT}): ${setImage.ms.toFixed(0)} ms`);

// Clicks at different places, one predict per click, as an interactive session makes them.
const click = (k: number) => ({
  x: Math.round(((0.2 + 0.6 * ((k * 0.37) % 1)) * WIDTH) % WIDTH),
  y: Math.round(((0.2 + 0.6 * ((k * 0.61) % 1)) * HEIGHT) % HEIGHT),
  label: 1 as const,
});
const decodeMs: number[] = [];
const upscaleMs: number[] = [];
const perClick = await time(
  async (k) => {
    const p = await predictor.predict({ points: [click(k)] });
    if (k >= 2) {
      decodeMs.push(p.timings.decodeMs);
      upscaleMs.push(p.timings.upscaleMs);
    }
  },
  DECODER_RUNS,
  2,
);
const perClickSingle = await time((k) => predictor.predict({ points: [click(k)], multimask: false }), DECODER_RUNS, 2);
console.log(
  `per click (predict, 3 masks): ${perClick.ms.toFixed(1)} ms (decode ${median(decodeMs).toFixed(1)}, upscale ` +
    `${median(upscaleMs).toFixed(1)}); single mask ${perClickSingle.ms.toFixed(1)} ms`,
);

// The official full-size path: the decoder's `masks` output (4 channels upscaled to the image in graph).
const embeddings = await model.encode(tensor);
const scale = model.preprocess.longestSide / Math.max(WIDTH, HEIGHT);
const prompt = (k: number): SamDecodePrompt => {
  const c = click(k);
  return {
    points: Float32Array.of(c.x * scale, c.y * scale, 0, 0),
    labels: Float32Array.of(1, -1),
    origSize: [HEIGHT, WIDTH],
  };
};
let fullDims: number[] = [];
const full = await time(
  async (k) => {
    const d = await model.decode(embeddings, prompt(k), { fullSize: true });
    fullDims = d.masks?.dims ?? [];
  },
  DECODER_RUNS,
  2,
);
const lowOnly = await time((k) => model.decode(embeddings, prompt(k)), DECODER_RUNS, 2);
console.log(
  `decoder full-size (masks ${fullDims.join("x")}): ${full.ms.toFixed(1)} ms; low-res only ${lowOnly.ms.toFixed(1)} ms`,
);
await predictor.dispose();
if (!args.model && !args.keep) await rm(dir, { recursive: true, force: true });

const ratio = (a: number | undefined, b: number) => (a ? a / b : null);
const f = (v: number | null | undefined, d = 1) => (v === null || v === undefined ? "n/a" : v.toFixed(d));
const ratios = {
  /** > 1: segkit faster. */
  encoderSpeedupVsPytorch: ratio(peer?.encoderMs, encode.ms),
  perClickSpeedupVsPytorchFull: ratio(peer?.decoderFullMs, perClick.ms),
  perClickSpeedupVsPytorchLowRes: ratio(peer?.decoderLowResMs, perClick.ms),
  fullSizeSpeedupVsPytorchFull: ratio(peer?.decoderFullMs, full.ms),
  lowResSpeedupVsPytorchLowRes: ratio(peer?.decoderLowResMs, lowOnly.ms),
};
const targets = {
  perClickUnder50ms: perClick.ms < TARGET_CLICK_MS,
  encoderFasterThanPytorch: peer ? encode.ms < peer.encoderMs : null,
};

console.log("\n                                   segkit ms  PyTorch ms  speedup (PyTorch / segkit)");
const row = (name: string, s: number, p: number | undefined) =>
  console.log(`${name.padEnd(34)} ${f(s).padStart(9)} ${f(p).padStart(11)}  ${f(ratio(p, s), 2).padStart(8)}`);
row("encoder [1,3,1024,1024]", encode.ms, peer?.encoderMs);
row(`per click, predictor (${WIDTH}x${HEIGHT})`, perClick.ms, peer?.decoderFullMs);
row("per click, official full-size", full.ms, peer?.decoderFullMs);
row("per click, low-res decode only", lowOnly.ms, peer?.decoderLowResMs);
console.log(
  `targets: per click < ${TARGET_CLICK_MS} ms: ${targets.perClickUnder50ms ? "met" : "NOT met"}; ` +
    `encoder faster than PyTorch: ${targets.encoderFasterThanPytorch === null ? "n/a" : targets.encoderFasterThanPytorch ? "met" : "NOT met"}`,
);

await writeResults(args.out, {
  machine: machine(),
  config: {
    threads: THREADS,
    encoderRuns: ENCODER_RUNS,
    torchEncoderRuns: Number(args["torch-encoder-runs"] ?? ENCODER_RUNS),
    torchEncoderWarmup: Number(args["torch-encoder-warmup"]),
    decoderRuns: DECODER_RUNS,
    image: [HEIGHT, WIDTH],
  },
  model: {
    source: "bench/peers/torch_sam.py (segment-anything ViT-B + prompt encoder/mask decoder, random weights)",
    params: peer?.params ?? null,
    layout: "split",
  },
  segkit: {
    engine: "onnxruntime-node",
    encoderMs: encode.ms,
    encoderRuns: encode.runs,
    setImageMs: setImage.ms,
    setImageRuns: setImage.runs,
    perClickMs: perClick.ms,
    perClickRuns: perClick.runs,
    perClickDecodeMs: median(decodeMs),
    perClickUpscaleMs: median(upscaleMs),
    perClickSingleMaskMs: perClickSingle.ms,
    fullSizeDecodeMs: full.ms,
    fullSizeDecodeRuns: full.runs,
    lowResDecodeMs: lowOnly.ms,
  },
  pytorch: peer,
  ratios,
  targets,
});
