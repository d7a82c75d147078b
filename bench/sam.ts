/**
 * Segment Anything latency at the real model sizes, random weights (speed does not depend on weight values):
 * SAM's ViT-B image encoder and the ~4M-parameter prompt encoder + mask decoder, defined in PyTorch by the peer
 * bench/peers/torch_sam.py (segment-anything's modules written out), exported there with `torch.onnx.export`
 * (opset 17, the decoder with the official export's I/O; Debian's torch) into a temp directory in the `split`
 * layout. segkit (`createSamPredictor`, onnxruntime-node, --threads) and the PyTorch peers (Debian's python3-torch
 * and, when present, a newer torch; torch.set_num_threads(--threads)) stay loaded and their runs alternate:
 * - encoder: a [1,3,1024,1024] tensor (`model.encode` / the module's forward), one run per side per pass;
 * - per click, three like-for-like pairs (--decoder-runs clicks per side per pass):
 *   low-res decode: `model.decode` vs the peer's prompt encoding + `predict_masks` (4 channels, 256 x 256);
 *   predictor: `predict` (low-res decode, the 3 multimask channels upscaled straight to the image size, thresholded
 *   and their stability scores counted in the same pass: the native addon's kernel where it built, else JavaScript
 *   with about half the rows on a worker thread) vs
 *   `SamPredictor.predict`'s work (low-res part, `postprocess_masks` on the 3 channels, threshold);
 *   full-size graph: `model.decode` with `fullSize` (the graph's `masks`: 4 channels upscaled in graph) vs the
 *   `SamOnnxModel` forward it was exported from.
 * Also `setImage` on a new image (preprocessing + encoder, segkit only), the single-mask `predict`, and `predict` with
 * the JavaScript upscaling (`nativeUpscale: false`: calling thread + worker, a second predictor on the same model).
 * Medians and the range of the pass medians; the predictor's ratio to each peer per pass too; the load average before
 * and after the passes (the machine may be shared). Targets: per click (`segkit.perClickMs`, the predictor's median)
 * <= 20 ms (issue 16), encoder faster than PyTorch (issue 6). Writes bench/results/sam.json.
 *
 *   npm run bench:sam -- [--threads 2] [--encoder-runs 3 (0: clicks only)] [--passes 5] [--decoder-runs 10] [--width 640]
 *                        [--height 480] [--model DIR (skip the export, reuse a split directory)] [--keep]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { nativeKernelsStatus } from "../src/backend/addon.js";
import type { SamDecodePrompt, SamTensor } from "../src/sam/model.js";
import { type ClickUpscaler, nativeUpscaler } from "../src/sam/native-upscale.js";
import { upscaleAndThreshold } from "../src/sam/postprocess.js";
import { createSamPredictor, encoderInput } from "../src/sam/predictor.js";
import { machine, writeResults } from "./common.js";
import { formatSummary, interleave, median, PeerServer, peerPythons, type Side, type Summary } from "./side-by-side.js";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    "encoder-runs": { type: "string", default: "3" },
    "decoder-runs": { type: "string", default: "10" },
    passes: { type: "string", default: "5" },
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
const PASSES = Number(args.passes);
const TARGET_CLICK_MS = 20;

/** Milliseconds of `runs` calls of `fn`; `fn(k)` gets a running call index (a new click or image each call). */
let calls = 0;
async function times(fn: (k: number) => Promise<unknown>, runs: number): Promise<number[]> {
  const all: number[] = [];
  for (let k = 0; k < runs; k++) {
    const t = performance.now();
    await fn(calls++);
    all.push(performance.now() - t);
  }
  return all;
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

// The first peer exports the graphs (unless --model is given) before segkit loads them.
const dir = args.model ?? (await mkdtemp(join(tmpdir(), "segkit-bench-sam-")));
console.log(args.model ? `using ${dir}` : `exporting ViT-B encoder + decoder to ${dir} (a few minutes)...`);
const peers: PeerServer[] = [];
for (const python of peerPythons()) {
  const exporting = !args.model && peers.length === 0;
  const peer = await PeerServer.start(
    python,
    join(here, "peers", "torch_sam.py"),
    [
      ...(exporting ? ["--export", dir] : []),
      ...["--threads", String(THREADS), "--width", String(WIDTH), "--height", String(HEIGHT)],
    ],
    "apt-get install -y python3-torch libopenblas0-pthread",
  );
  if (peer) peers.push(peer);
  if (peer) console.log(`peer: ${peer.label}${exporting ? " (exported the graphs)" : ""}`);
}
if (peers.length === 0 && !args.model) {
  await rm(dir, { recursive: true, force: true });
  throw new Error("no PyTorch peer ran, so there are no graphs to load (pass --model DIR to reuse some)");
}
type PeerReady = PeerServer["ready"] & { params: { encoder: number; decoder: number } };

const predictor = await createSamPredictor(dir, { threads: THREADS, memoryCache: 1 });
const model = predictor.model;
console.log(`segkit: ${model.layout} layout, encoder input ${model.encoderInput}, ${THREADS} threads`);

// Encoder on a ready [1,3,1024,1024] tensor: what the PyTorch forward is timed on.
const S = model.preprocess.padSize;
const tensor: SamTensor = { data: noise(3 * S * S, 1, 2), dims: [1, 3, S, S] };
const peerSides = (request: Record<string, unknown>, name: string): Side[] =>
  peers.map((p) => ({
    name: `${p.peer.id}.${name}`,
    pass: async () => (await p.call<{ ms: number[] }>(request)).ms,
  }));
// --encoder-runs 0: clicks only (setImage still runs once: predict needs an image)
console.log(`encoder: 1 warm-up + ${ENCODER_RUNS} passes, one run per side each`);
const encoder =
  ENCODER_RUNS === 0
    ? {}
    : await interleave(
        [
          { name: "segkit.encoder", pass: () => times(() => model.encode(tensor), 1) },
          ...peerSides({ op: "encoder", runs: 1 }, "encoder"),
        ],
        ENCODER_RUNS,
      );

// setImage on a new image each run (no cache hit): preprocessing + encoder.
const image = (k: number) => ({
  data: Uint8Array.from(noise(HEIGHT * WIDTH * 3, 100 + k, 256), (v) => Math.floor(v)),
  width: WIDTH,
  height: HEIGHT,
});
let current = image(0);
const setImage = await times(
  async (k) => {
    current = image(k);
    const info = await predictor.setImage(current);
    if (info.source !== "encoder") throw new Error(`setImage hit the ${info.source} cache`);
  },
  Math.max(1, ENCODER_RUNS),
);
console.log(`setImage (${WIDTH}x${HEIGHT}): ${median(setImage).toFixed(0)} ms`);
// the same clicks on the same image with the JavaScript upscaling (calling thread + worker): the native kernel's
// share
const jsUpscale = await createSamPredictor(model, { memoryCache: 1, nativeUpscale: false });
await jsUpscale.setImage(current);

// Clicks at different places, one per call, as an interactive session makes them.
const click = (k: number) => ({
  x: Math.round(((0.2 + 0.6 * ((k * 0.37) % 1)) * WIDTH) % WIDTH),
  y: Math.round(((0.2 + 0.6 * ((k * 0.61) % 1)) * HEIGHT) % HEIGHT),
  label: 1 as const,
});
// the predictors' image's embeddings (the same bytes as theirs): the decoder's once-per-image part (split.ts) is not
// run again whenever the sides alternate, as it would be for another image's
const embeddings = await model.encode(encoderInput(model, current));
const scale = model.preprocess.longestSide / Math.max(WIDTH, HEIGHT);
const prompt = (k: number): SamDecodePrompt => {
  const c = click(k);
  return {
    points: Float32Array.of(c.x * scale, c.y * scale, 0, 0),
    labels: Float32Array.of(1, -1),
    origSize: [HEIGHT, WIDTH],
  };
};
const decodeMs: number[] = [];
const upscaleMs: number[] = [];
const jsUpscaleMs: number[] = [];
let fullDims: number[] = [];
const R = DECODER_RUNS;
const load = { before: loadavg(), after: [] as number[] };
console.log(`per click: 1 warm-up + ${PASSES} passes of ${R} clicks per side and path`);
console.log(`load average before the passes: ${load.before.map((x) => x.toFixed(2)).join(" ")}`);
const clicks = await interleave(
  [
    {
      name: "segkit.predictor",
      pass: () =>
        times(async (k) => {
          const p = await predictor.predict({ points: [click(k)] });
          decodeMs.push(p.timings.decodeMs);
          upscaleMs.push(p.timings.upscaleMs);
        }, R),
    },
    {
      name: "segkit.predictorJsUpscale",
      pass: () =>
        times(async (k) => {
          jsUpscaleMs.push((await jsUpscale.predict({ points: [click(k)] })).timings.upscaleMs);
        }, R),
    },
    {
      name: "segkit.predictorSingle",
      pass: () => times((k) => predictor.predict({ points: [click(k)], multimask: false }), R),
    },
    { name: "segkit.lowres", pass: () => times((k) => model.decode(embeddings, prompt(k)), R) },
    {
      name: "segkit.full",
      pass: () =>
        times(async (k) => {
          const d = await model.decode(embeddings, prompt(k), { fullSize: true });
          fullDims = d.masks?.dims ?? [];
        }, R),
    },
    ...(["predictor", "lowres", "full"] as const).flatMap((mode) => peerSides({ op: "decoder", mode, runs: R }, mode)),
  ],
  PASSES,
);
load.after = loadavg();
console.log(`load average after the passes: ${load.after.map((x) => x.toFixed(2)).join(" ")}`);

// The random-weight decoder's logits stay near the threshold everywhere, so every pixel of its masks is in doubt and
// the upscaling takes its full pass; a trained SAM's logits are far from the threshold except near a mask's edge,
// where `upscaleAndThreshold` interpolates only. The same call on mask-like logits (a disc per plane, tanh edge,
// +-15) and on this decoder's own, alternating.
const last = await predictor.predict({ points: [click(0)] });
const own = last.lowResLogits.data;
const maskLike = Float32Array.from(own, (_, i) => {
  const [c, y, x] = [Math.floor(i / 65536), Math.floor(i / 256) % 256, i % 256];
  return 15 * Math.tanh((20 + 15 * c - Math.hypot(x - 90 - 20 * c, y - 80)) / 6) - 2;
});
// JavaScript on the calling thread alone, and the native kernel where it built.
const native = nativeUpscaler();
const upscaleOn = (logits: Float32Array, up: ClickUpscaler) => () =>
  times(async () => up(logits, last.maskFrame, { height: HEIGHT, width: WIDTH }), R);
const js: ClickUpscaler = (l, frame, size) => upscaleAndThreshold(l, frame, size);
const upscaling = await interleave(
  [
    { name: "decoder", pass: upscaleOn(own, js) },
    { name: "maskLike", pass: upscaleOn(maskLike, js) },
    ...(native
      ? [
          { name: "nativeDecoder", pass: upscaleOn(own, native) },
          { name: "nativeMaskLike", pass: upscaleOn(maskLike, native) },
        ]
      : []),
  ],
  PASSES,
);
const ms = (s: Summary | undefined) => s?.median.toFixed(2) ?? "n/a";
console.log(
  `upscaling of 3 masks, JavaScript on one thread / native: this decoder's logits ${ms(upscaling.decoder)} / ` +
    `${ms(upscaling.nativeDecoder)} ms, mask-like logits ${ms(upscaling.maskLike)} / ${ms(upscaling.nativeMaskLike)} ms`,
);
await jsUpscale.dispose();
await predictor.dispose();
await Promise.all(peers.map((p) => p.close()));
if (!args.model && !args.keep) await rm(dir, { recursive: true, force: true });

const all = { ...encoder, ...clicks };
const get = (side: string, name: string) => all[`${side}.${name}`];
/** PyTorch ms / segkit ms (> 1: segkit faster), medians. */
const ratio = (p: Summary | undefined, s: Summary | undefined) => (p && s ? p.median / s.median : null);
const PAIRS = [
  ["encoder", "encoder", "encoder [1,3,1024,1024]"],
  ["lowres", "lowres", "per click, low-res decode (4 masks at 256x256)"],
  ["predictor", "predictor", `per click, predictor (3 masks at ${WIDTH}x${HEIGHT})`],
  ["full", "full", `per click, full-size graph (4 masks at ${WIDTH}x${HEIGHT})`],
] as const;
const ratios: Record<string, Record<string, number | null>> = {};
for (const p of peers)
  ratios[p.peer.id] = Object.fromEntries(PAIRS.map(([s, q]) => [q, ratio(get(p.peer.id, q), get("segkit", s))]));
const segkitClick = get("segkit", "predictor") as Summary;
const segkitEncoder = get("segkit", "encoder");
/** The predictor's ratio in each pass (PyTorch pass median / segkit's: the same load on both). */
const predictorPassRatios = Object.fromEntries(
  peers.map((p) => {
    const q = get(p.peer.id, "predictor");
    return [p.peer.id, q ? q.passMedians.map((m, i) => m / (segkitClick.passMedians[i] as number)) : []];
  }),
);
const targets = {
  perClickAtMost20ms: segkitClick.median <= TARGET_CLICK_MS,
  encoderFasterThanPytorch:
    peers[0] && segkitEncoder ? segkitEncoder.median < (get(peers[0].peer.id, "encoder") as Summary).median : null,
};

const f = (v: number | null | undefined, d = 2) => (v === null || v === undefined ? "n/a" : v.toFixed(d));
console.log(`\nms: median (range of the pass medians); speedup = PyTorch / segkit (> 1: segkit faster)`);
for (const [s, q, title] of PAIRS) {
  console.log(`${title}\n  segkit ${formatSummary(get("segkit", s))}`);
  for (const p of peers)
    console.log(`  ${p.label} ${formatSummary(get(p.peer.id, q))}  speedup ${f(ratios[p.peer.id]?.[q])}`);
}
for (const p of peers) {
  const r = predictorPassRatios[p.peer.id] ?? [];
  console.log(`predictor speedup per pass, ${p.label}: ${r.map((x) => x.toFixed(2)).join(" ")}`);
}
console.log(
  `segkit predictor: decode ${median(decodeMs).toFixed(1)} + upscale ${median(upscaleMs).toFixed(1)} ms; single mask ` +
    `${formatSummary(get("segkit", "predictorSingle"))} ms; full-size masks ${fullDims.join("x")}`,
);
console.log(
  `segkit predictor with the JavaScript upscaling: ${formatSummary(get("segkit", "predictorJsUpscale"))} ms ` +
    `(upscale ${median(jsUpscaleMs).toFixed(1)} ms)`,
);
console.log(
  `targets: per click <= ${TARGET_CLICK_MS} ms (${segkitClick.median.toFixed(1)}): ${targets.perClickAtMost20ms ? "met" : "NOT met"}; ` +
    `encoder faster than PyTorch: ${targets.encoderFasterThanPytorch === null ? "n/a" : targets.encoderFasterThanPytorch ? "met" : "NOT met"}`,
);

await writeResults(args.out, {
  date: new Date().toISOString(),
  machine: { ...machine(), loadAverage: load },
  config: { threads: THREADS, encoderPasses: ENCODER_RUNS, passes: PASSES, clicksPerPass: R, image: [HEIGHT, WIDTH] },
  model: {
    source: "bench/peers/torch_sam.py (segment-anything ViT-B + prompt encoder/mask decoder, random weights)",
    params: (peers[0]?.ready as PeerReady | undefined)?.params ?? null,
    layout: "split",
  },
  method: {
    interleaving:
      "every side stays loaded; 1 warm-up pass, then passes in which every side runs once (encoder: 1 run; clicks: --decoder-runs clicks), the order rotating; median of all runs and the range of the pass medians",
    lowres:
      "segkit model.decode (the decoder pruned to low_res_masks and iou_predictions) vs PyTorch prompt encoding + predict_masks",
    predictor:
      "segkit predict (low-res decode, 3 multimask channels upscaled (bilinear to 1024, crop, bilinear to the image composed into one separable kernel per axis), thresholded and stability counted in the same pass: the native addon's upscaleThreshold where it built, else upscaleAndThreshold in JavaScript, about half the rows on a worker thread) vs PyTorch SamPredictor.predict's work (low-res part, postprocess_masks on the 3 channels, > 0; no stability scores)",
    full: "segkit model.decode with fullSize (the exported graph: 4 channels upscaled in graph, onnxruntime) vs the SamOnnxModel forward it was exported from",
  },
  segkit: {
    engine: "onnxruntime-node",
    perClickMs: segkitClick.median,
    encoder: segkitEncoder,
    setImageMs: setImage,
    predictor: segkitClick,
    predictorDecodeMs: median(decodeMs),
    predictorUpscaleMs: median(upscaleMs),
    /** Whether `predictor` upscaled natively. */
    nativeUpscale: nativeKernelsStatus().loaded,
    /** The same clicks with `nativeUpscale: false` (JavaScript, calling thread + worker). */
    predictorJsUpscale: get("segkit", "predictorJsUpscale"),
    predictorJsUpscaleMs: median(jsUpscaleMs),
    /** The upscaling alone on this decoder's logits and on mask-like ones (see above), JavaScript and native. */
    upscaleMs: {
      decoder: upscaling.decoder,
      maskLike: upscaling.maskLike,
      nativeDecoder: upscaling.nativeDecoder ?? null,
      nativeMaskLike: upscaling.nativeMaskLike ?? null,
    },
    predictorSingleMask: get("segkit", "predictorSingle"),
    lowres: get("segkit", "lowres"),
    full: get("segkit", "full"),
  },
  peers: Object.fromEntries(
    peers.map((p) => [
      p.peer.id,
      {
        python: p.peer.python,
        ...p.ready,
        encoder: get(p.peer.id, "encoder"),
        lowres: get(p.peer.id, "lowres"),
        predictor: get(p.peer.id, "predictor"),
        full: get(p.peer.id, "full"),
      },
    ]),
  ),
  ratios,
  predictorPassRatios,
  targets,
});
