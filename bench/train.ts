/**
 * Training and inference throughput of segkit's `unet` (16-32-64-128, 3 classes) at 128x128 and 256x256 and
 * `encoder-decoder` at 128x128 (`--cases`), batch 8, Adam + cross-entropy, on segkit's default backend, against the same architectures in PyTorch
 * in the same run (bench/peers/torch_train.py, torch.set_num_threads(2)): Debian's python3-torch and, when present,
 * a newer torch (bench/side-by-side.ts `peerPythons`). Every side stays loaded and the timed passes alternate
 * between them (--passes, each --steps batches at 128x128, scaled by the pixels at other sizes, at least 2;
 * inference 2x that), after one warm-up pass each; reported: the median images/s and the range of the passes.
 * `ratios.trainVsPytorch[model][size]`: segkit's training images/s over the faster PyTorch peer's in that case. Inference is reported for tfjs (`model.predict`) and for
 * onnxruntime-node (the model exported with `exportOnnx`, `createOnnxPredictor`) each, with a ratio to each peer.
 * Also runs, in a child process after the interleaved passes, the "baseline": stock tfjs-backend-wasm (one thread,
 * its own kernels) with only the kernel it lacks for training added (Conv2DBackpropFilter), i.e. none of segkit's
 * speed work. GFLOP/s from `modelInfo`'s forward FLOPs (a training step counted as 3x forward).
 * Writes bench/results/train.json.
 *
 *   npm run bench:train -- [--steps 10] [--passes 5] [--cases unet@128,unet@256,encoder-decoder@128]
 *                          [--models unet --sizes 128,256 (instead of --cases)] [--backend auto] [--no-baseline]
 *                          [--before (also the training step before the fused Adam)] [--train-only (no inference sides)]
 *                          [--no-native (segkit's native kernels off: initBackend({ native: false }))]
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { nativeKernelsStatus } from "../src/backend/addon.js";
import { convGradKernels } from "../src/backend/conv-grads.js";
import { type BackendChoice, initBackend, wasmThreads } from "../src/backend/init.js";
import { createOnnxPredictor } from "../src/infer/predict.js";
import { createLoss } from "../src/losses/registry.js";
import { modelInfo } from "../src/models/info.js";
import { createModel, type ModelArch } from "../src/models/registry.js";
import { validateTrainConfig } from "../src/train/config.js";
import { createOptimizer } from "../src/train/optimizer.js";
import { machine, writeResults } from "./common.js";
import { formatSummary, interleave, type Side, type Summary, startPeers } from "./side-by-side.js";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    steps: { type: "string", default: "10" },
    passes: { type: "string", default: "5" },
    cases: { type: "string", default: "unet@128,unet@256,encoder-decoder@128" },
    models: { type: "string" },
    sizes: { type: "string" },
    backend: { type: "string", default: "auto" },
    threads: { type: "string", default: "2" },
    baseline: { type: "boolean", default: false },
    before: { type: "boolean", default: false },
    "no-native": { type: "boolean", default: false },
    "train-only": { type: "boolean", default: false },
    "no-baseline": { type: "boolean", default: false },
    out: { type: "string", default: join(here, "results", "train.json") },
  },
});
const STEPS = Number(args.steps);
const PASSES = Number(args.passes);
const BATCH = 8;
const CLASSES = 3;

interface Case {
  arch: ModelArch;
  size: number;
}
/** `--models` x `--sizes` when either is given (defaults unet, 128), else `--cases` (`arch@size,...`). */
const cases: Case[] =
  args.models || args.sizes
    ? (args.models ?? "unet")
        .split(",")
        .flatMap((arch) =>
          (args.sizes ?? "128").split(",").map((size) => ({ arch: arch as ModelArch, size: Number(size) })),
        )
    : args.cases.split(",").map((c) => {
        const [arch, size] = c.split("@");
        return { arch: arch as ModelArch, size: Number(size ?? 128) };
      });
for (const c of cases) {
  if (!Number.isInteger(c.size) || c.size < 32 || c.size % 16) throw new Error(`bad size in case ${c.arch}@${c.size}`);
}
/** Training batches per pass at `size`: --steps at 128x128, scaled by the pixels, at least 2. */
const stepsAt = (size: number) => Math.max(2, Math.round((STEPS * 128 * 128) / (size * size)));
const caseName = (c: Case) => `${c.arch}@${c.size}`;

/** images/s of `steps` calls of `fn` (each call processes one batch). */
async function rate(fn: () => unknown, steps: number): Promise<number> {
  const start = performance.now();
  for (let k = 0; k < steps; k++) await fn();
  return (BATCH * steps) / ((performance.now() - start) / 1000);
}

/** segkit's sides for one model (training, tfjs inference and, with `onnx`, onnxruntime inference) and a cleanup. */
async function segkitSides({ arch, size }: Case, onnx: boolean, steps: number) {
  const model = createModel(arch, { numClasses: CLASSES, inputSize: [size, size] });
  const info = modelInfo(model);
  const x = tf.randomUniform([BATCH, size, size, 3], 0, 255);
  const y = tf.randomUniform([BATCH, size, size], 0, CLASSES, "int32");
  const loss = createLoss("ce");
  // fit's optimizer (fused Adam update) and, for the path before it and the baseline, tfjs's own Adam
  const fitOptimizer = createOptimizer(validateTrainConfig({ optimizer: { name: "adam", lr: 1e-3 } }).optimizer);
  const optimizer = tf.train.adam(1e-3);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const trainFit = async () => {
    return [
      await rate(() => {
        const cost = fitOptimizer.step(() => loss(y, model.apply(x, { training: true }) as tf.Tensor), vars);
        cost.dataSync();
        cost.dispose();
      }, steps),
    ];
  };
  const trainBefore = async () => {
    return [
      await rate(() => {
        const cost = optimizer.minimize(() => loss(y, model.apply(x, { training: true }) as tf.Tensor), true);
        cost?.dataSync();
        cost?.dispose();
      }, steps),
    ];
  };
  const sides: Side[] = [
    { name: "train", pass: args.baseline ? trainBefore : trainFit },
    // the step as before the fused Adam (--before), in the same run
    ...(args.before && !args.baseline ? [{ name: "trainBefore", pass: trainBefore }] : []),
  ];
  if (!args["train-only"]) {
    sides.push({
      name: "inferTfjs",
      pass: async () => [
        await rate(() => {
          const out = model.predict(x) as tf.Tensor;
          out.dataSync();
          out.dispose();
        }, 2 * steps),
      ],
    });
  }
  const predictor =
    onnx && !args["train-only"] ? await createOnnxPredictor(model, { threads: Number(args.threads) }) : null;
  if (predictor) {
    const pixels = x.dataSync() as Float32Array;
    sides.push({
      name: "inferOnnx",
      pass: async () => [await rate(() => predictor.predict(pixels, BATCH, size, size), 2 * steps)],
    });
  }
  const dispose = async () => {
    await predictor?.dispose();
    tf.dispose([x, y]);
    optimizer.dispose();
    fitOptimizer.dispose();
    model.dispose();
  };
  return { sides, dispose, flops: info.flops, params: info.trainableParams };
}

if (args.baseline) {
  // Child process: stock wasm backend, single-threaded, plus only the missing Conv2DBackpropFilter.
  const filterGrad = convGradKernels.find((k) => k.kernelName === tf.Conv2DBackpropFilter);
  if (filterGrad) tf.registerKernel(filterGrad);
  await tf.setBackend("wasm");
  const result: Record<string, Record<string, Summary>> = {};
  for (const c of cases) {
    const { sides, dispose } = await segkitSides(c, false, stepsAt(c.size));
    result[caseName(c)] = await interleave(sides, PASSES);
    await dispose();
  }
  console.log(JSON.stringify(result));
  process.exit(0);
}

const native = !args["no-native"];
const backend = await initBackend({ backend: args.backend as BackendChoice, threads: Number(args.threads), native });
const nativeOn = backend === "wasm" && native && nativeKernelsStatus().loaded;
console.log(
  `segkit backend: ${backend}${backend === "wasm" ? ` (${wasmThreads()} threads, native kernels ${nativeOn ? "on" : "off"})` : ""}`,
);
const peers = await startPeers(
  join(here, "peers", "torch_train.py"),
  ["--threads", args.threads, "--batch", String(BATCH)],
  "apt-get install -y python3-torch",
);

interface ModelResult {
  size: number;
  steps: number;
  params: number;
  flopsPerImage: number;
  /** images/s: median and range over the passes, per side (`segkit.train`, `debian.inferTfjs`...). */
  segkit: Record<string, Summary>;
  peers: Record<string, { train: Summary; infer: Summary }>;
  gflops: { train: number; inferTfjs: number; inferOnnx: number };
}
/** By model, then by size (`results.unet["256"]`). */
const results: Record<string, Record<string, ModelResult>> = {};
const resultOf = (c: Case) => results[c.arch]?.[c.size] as ModelResult;
for (const c of cases) {
  const { arch, size } = c;
  const steps = stepsAt(size);
  console.log(
    `\n${arch} ${size}x${size}: ${PASSES} interleaved passes of ${steps} training / ${2 * steps} inference batches`,
  );
  const mine = await segkitSides(c, true, steps);
  for (const peer of peers) await peer.call({ op: "setup", model: arch, size });
  const peerSides = peers.flatMap((peer): Side[] =>
    (args["train-only"] ? (["train"] as const) : (["train", "infer"] as const)).map((op) => ({
      name: `${peer.peer.id}.${op}`,
      pass: async () => [
        (await peer.call<{ imagesPerSecond: number }>({ op, steps: op === "train" ? steps : 2 * steps }))
          .imagesPerSecond,
      ],
    })),
  );
  const measured = await interleave(
    [...mine.sides.map((s) => ({ ...s, name: `segkit.${s.name}` })), ...peerSides],
    PASSES,
  );
  await mine.dispose();
  // printed as soon as measured: a long run interrupted later still leaves this model's figures
  for (const [side, summary] of Object.entries(measured)) console.log(`  ${side}: ${formatSummary(summary)} images/s`);
  const pick = (prefix: string) =>
    Object.fromEntries(
      Object.entries(measured)
        .filter(([k]) => k.startsWith(`${prefix}.`))
        .map(([k, v]) => [k.slice(prefix.length + 1), v]),
    );
  const segkit = pick("segkit");
  const rateOf = (k: string) => segkit[k]?.median ?? 0;
  results[arch] ??= {};
  (results[arch] as Record<string, ModelResult>)[size] = {
    size,
    steps,
    params: mine.params,
    flopsPerImage: mine.flops,
    segkit,
    peers: Object.fromEntries(peers.map((p) => [p.peer.id, pick(p.peer.id) as { train: Summary; infer: Summary }])),
    gflops: {
      train: (3 * mine.flops * rateOf("train")) / 1e9,
      inferTfjs: (mine.flops * rateOf("inferTfjs")) / 1e9,
      inferOnnx: (mine.flops * rateOf("inferOnnx")) / 1e9,
    },
  };
}
await Promise.all(peers.map((p) => p.close()));

let baseline: Record<string, Record<string, Summary>> | null = null;
if (!args["no-baseline"]) {
  console.log("\nbaseline (stock wasm, 1 thread) in a child process...");
  const child = spawnSync(
    process.execPath,
    [
      ...process.execArgv,
      fileURLToPath(import.meta.url),
      "--baseline",
      ...[
        "--steps",
        String(Math.max(2, Math.ceil(STEPS / 2))),
        "--passes",
        "2",
        "--cases",
        cases.map(caseName).join(","),
      ],
    ],
    { encoding: "utf8" },
  );
  if (child.status === 0) baseline = JSON.parse(child.stdout.trim().split("\n").at(-1) ?? "null");
  else console.log(`baseline run failed: ${child.stderr.trim().split("\n").at(-1)}`);
}

/** segkit / peer, medians of images/s; > 1: segkit faster. */
const ratio = (a: Summary | undefined, b: Summary | undefined) => (a && b ? a.median / b.median : null);
/** Ratios by model, then by size: `byCase(...).unet["256"]`. */
type ByCase = Record<string, Record<string, number | null>>;
const byCase = (f: (c: Case, r: ModelResult) => number | null): ByCase => {
  const out: ByCase = {};
  for (const c of cases) out[c.arch] = { ...out[c.arch], [c.size]: f(c, resultOf(c)) };
  return out;
};
const ratios: Record<string, ByCase | Record<string, ByCase>> = {};
for (const peer of peers) {
  const id = peer.peer.id;
  ratios[id] = {
    train: byCase((_, r) => ratio(r.segkit.train, r.peers[id]?.train)),
    inferTfjs: byCase((_, r) => ratio(r.segkit.inferTfjs, r.peers[id]?.infer)),
    inferOnnx: byCase((_, r) => ratio(r.segkit.inferOnnx, r.peers[id]?.infer)),
  };
}
ratios.baseline = {
  train: byCase((c, r) => ratio(r.segkit.train, baseline?.[caseName(c)]?.train)),
  inferTfjs: byCase((c, r) => ratio(r.segkit.inferTfjs, baseline?.[caseName(c)]?.inferTfjs)),
};
/** The headline: segkit's training against the faster PyTorch peer of that case (the lower ratio). */
const trainVsPytorch = byCase((_, r) => {
  const own = peers.map((p) => ratio(r.segkit.train, r.peers[p.peer.id]?.train)).filter((v) => v !== null);
  return own.length ? Math.min(...own) : null;
});
ratios.trainVsPytorch = trainVsPytorch;

const f = (v: number | null | undefined, d = 2) => (v === null || v === undefined ? "n/a" : v.toFixed(d));
console.log("\nimages/s: median (range of the passes); ratio = segkit / peer (> 1: segkit faster)");
for (const c of cases) {
  const r = resultOf(c);
  const at = (q: ByCase | undefined) => q?.[c.arch]?.[c.size];
  console.log(`\n${c.arch} ${c.size}x${c.size} (${(r.flopsPerImage / 1e9).toFixed(2)} GFLOP per image forward)`);
  console.log(`  segkit train        ${formatSummary(r.segkit.train)}  (${r.gflops.train.toFixed(1)} GFLOP/s)`);
  if (r.segkit.trainBefore) console.log(`  segkit train, before ${formatSummary(r.segkit.trainBefore)}`);
  console.log(`  segkit infer tfjs   ${formatSummary(r.segkit.inferTfjs)}`);
  console.log(`  segkit infer onnx   ${formatSummary(r.segkit.inferOnnx)}`);
  for (const peer of peers) {
    const p = r.peers[peer.peer.id];
    const q = ratios[peer.peer.id] as Record<string, ByCase>;
    console.log(`  ${peer.label}`);
    console.log(`    train ${formatSummary(p?.train)}  ratio ${f(at(q.train))}`);
    console.log(
      `    infer ${formatSummary(p?.infer)}  ratio tfjs ${f(at(q.inferTfjs))}, onnxruntime ${f(at(q.inferOnnx))}`,
    );
  }
  console.log(`  training vs the faster PyTorch: ${f(at(trainVsPytorch))}`);
  const b = baseline?.[caseName(c)];
  const q = ratios.baseline as Record<string, ByCase>;
  console.log(
    `  baseline train ${formatSummary(b?.train)} (segkit ${f(at(q.train))}x), infer tfjs ` +
      `${formatSummary(b?.inferTfjs)} (segkit tfjs ${f(at(q.inferTfjs))}x)`,
  );
}

await writeResults(args.out, {
  date: new Date().toISOString(),
  machine: machine(),
  peers: Object.fromEntries(peers.map((p) => [p.peer.id, { python: p.peer.python, ...p.ready }])),
  method: {
    batch: BATCH,
    cases: cases.map(caseName),
    classes: CLASSES,
    passes: `1 warm-up pass, then ${PASSES} passes alternating over every side (the order rotating); a pass is ${STEPS} training batches at 128x128 (scaled by the pixels at other sizes, at least 2: results.<model>.<size>.steps) or twice that many inference batches; figures: median images/s and the range of the passes (baseline: 2 passes of half the batches)`,
    ratios:
      "ratios.<peer>.<train|inferTfjs|inferOnnx>.<model>.<size>: segkit / that peer (medians of images/s); ratios.trainVsPytorch.<model>.<size>: segkit's training / the faster peer's in that case",
    segkit: `backend ${backend}${backend === "wasm" ? `, ${wasmThreads()} threads, native kernels ${nativeOn ? "on" : "off"}` : ""}; Adam(1e-3) on cross-entropy; train: fit's step (createOptimizer(adam).step, fused Adam update, on model.apply(x, training)); trainBefore (--before): the step before, tf.train.adam(1e-3).minimize on model.apply(x, training); inference on tfjs (model.predict) and on onnxruntime-node (exportOnnx + createOnnxPredictor, ${args.threads} threads), each reported`,
    baseline:
      "stock tfjs-backend-wasm, 1 thread, its own kernels, plus segkit's Conv2DBackpropFilter only (training fails without it); inference on tfjs; run in a child process after the interleaved passes",
    pytorch: `torch.set_num_threads(${args.threads}); same architectures; Adam(1e-3); F.cross_entropy; inference in eval mode under no_grad; OMP_WAIT_POLICY=PASSIVE`,
    gflops: "forward FLOPs per image from modelInfo (2 x multiply-adds); a training step counted as 3x forward",
  },
  results,
  baseline,
  ratios,
});
