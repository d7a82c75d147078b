/**
 * Training and inference throughput of segkit's `unet` (16-32-64-128, 3 classes) and `encoder-decoder` at
 * 128x128, batch 8, Adam + cross-entropy, on segkit's default backend, against the same architectures in PyTorch
 * in the same run (bench/peers/torch_train.py, torch.set_num_threads(2)): Debian's python3-torch and, when present,
 * a newer torch (bench/side-by-side.ts `peerPythons`). Every side stays loaded and the timed passes alternate
 * between them (--passes, each --steps batches; inference 2x --steps), after one warm-up pass each; reported: the
 * median images/s and the range of the passes. Inference is reported for tfjs (`model.predict`) and for
 * onnxruntime-node (the model exported with `exportOnnx`, `createOnnxPredictor`) each, with a ratio to each peer.
 * Also runs, in a child process after the interleaved passes, the "baseline": stock tfjs-backend-wasm (one thread,
 * its own kernels) with only the kernel it lacks for training added (Conv2DBackpropFilter), i.e. none of segkit's
 * speed work. GFLOP/s from `modelInfo`'s forward FLOPs (a training step counted as 3x forward).
 * Writes bench/results/train.json.
 *
 *   npm run bench:train -- [--steps 10] [--passes 5] [--models unet,encoder-decoder] [--backend auto] [--no-baseline]
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { convGradKernels } from "../src/backend/conv-grads.js";
import { type BackendChoice, initBackend, wasmThreads } from "../src/backend/init.js";
import { createOnnxPredictor } from "../src/infer/predict.js";
import { createLoss } from "../src/losses/registry.js";
import { modelInfo } from "../src/models/info.js";
import { createModel, type ModelArch } from "../src/models/registry.js";
import { machine, writeResults } from "./common.js";
import { formatSummary, interleave, type Side, type Summary, startPeers } from "./side-by-side.js";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    steps: { type: "string", default: "10" },
    passes: { type: "string", default: "5" },
    models: { type: "string", default: "unet,encoder-decoder" },
    backend: { type: "string", default: "auto" },
    threads: { type: "string", default: "2" },
    baseline: { type: "boolean", default: false },
    "no-baseline": { type: "boolean", default: false },
    out: { type: "string", default: join(here, "results", "train.json") },
  },
});
const STEPS = Number(args.steps);
const PASSES = Number(args.passes);
const BATCH = 8;
const SIZE = 128;
const CLASSES = 3;
const models = args.models.split(",") as ModelArch[];

/** images/s of `steps` calls of `fn` (each call processes one batch). */
async function rate(fn: () => unknown, steps: number): Promise<number> {
  const start = performance.now();
  for (let k = 0; k < steps; k++) await fn();
  return (BATCH * steps) / ((performance.now() - start) / 1000);
}

/** segkit's sides for one model (training, tfjs inference and, with `onnx`, onnxruntime inference) and a cleanup. */
async function segkitSides(arch: ModelArch, onnx: boolean, steps: number) {
  const model = createModel(arch, { numClasses: CLASSES, inputSize: [SIZE, SIZE] });
  const info = modelInfo(model);
  const x = tf.randomUniform([BATCH, SIZE, SIZE, 3], 0, 255);
  const y = tf.randomUniform([BATCH, SIZE, SIZE], 0, CLASSES, "int32");
  const loss = createLoss("ce");
  const optimizer = tf.train.adam(1e-3);
  const sides: Side[] = [
    {
      name: "train",
      pass: async () => [
        await rate(() => {
          const cost = optimizer.minimize(() => loss(y, model.apply(x, { training: true }) as tf.Tensor), true);
          cost?.dataSync();
          cost?.dispose();
        }, steps),
      ],
    },
    {
      name: "inferTfjs",
      pass: async () => [
        await rate(() => {
          const out = model.predict(x) as tf.Tensor;
          out.dataSync();
          out.dispose();
        }, 2 * steps),
      ],
    },
  ];
  const predictor = onnx ? await createOnnxPredictor(model, { threads: Number(args.threads) }) : null;
  if (predictor) {
    const pixels = x.dataSync() as Float32Array;
    sides.push({
      name: "inferOnnx",
      pass: async () => [await rate(() => predictor.predict(pixels, BATCH, SIZE, SIZE), 2 * steps)],
    });
  }
  const dispose = async () => {
    await predictor?.dispose();
    tf.dispose([x, y]);
    optimizer.dispose();
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
  for (const arch of models) {
    const { sides, dispose } = await segkitSides(arch, false, STEPS);
    result[arch] = await interleave(sides, PASSES);
    await dispose();
  }
  console.log(JSON.stringify(result));
  process.exit(0);
}

const backend = await initBackend({ backend: args.backend as BackendChoice, threads: Number(args.threads) });
console.log(`segkit backend: ${backend}${backend === "wasm" ? ` (${wasmThreads()} threads)` : ""}`);
const peers = await startPeers(
  join(here, "peers", "torch_train.py"),
  ["--threads", args.threads, "--batch", String(BATCH), "--size", String(SIZE)],
  "apt-get install -y python3-torch",
);

interface ModelResult {
  params: number;
  flopsPerImage: number;
  /** images/s: median and range over the passes, per side (`segkit.train`, `debian.inferTfjs`...). */
  segkit: Record<string, Summary>;
  peers: Record<string, { train: Summary; infer: Summary }>;
  gflops: { train: number; inferTfjs: number; inferOnnx: number };
}
const results: Record<string, ModelResult> = {};
for (const arch of models) {
  console.log(`\n${arch}: ${PASSES} interleaved passes of ${STEPS} training / ${2 * STEPS} inference batches`);
  const mine = await segkitSides(arch, true, STEPS);
  for (const peer of peers) await peer.call({ op: "setup", model: arch });
  const peerSides = peers.flatMap((peer): Side[] =>
    (["train", "infer"] as const).map((op) => ({
      name: `${peer.peer.id}.${op}`,
      pass: async () => [
        (await peer.call<{ imagesPerSecond: number }>({ op, steps: op === "train" ? STEPS : 2 * STEPS }))
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
  results[arch] = {
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
      ...["--steps", String(Math.max(2, Math.ceil(STEPS / 2))), "--passes", "2", "--models", args.models],
    ],
    { encoding: "utf8" },
  );
  if (child.status === 0) baseline = JSON.parse(child.stdout.trim().split("\n").at(-1) ?? "null");
  else console.log(`baseline run failed: ${child.stderr.trim().split("\n").at(-1)}`);
}

/** segkit / peer, medians of images/s; > 1: segkit faster. */
const ratio = (a: Summary | undefined, b: Summary | undefined) => (a && b ? a.median / b.median : null);
const ratios: Record<string, Record<string, Record<string, number | null>>> = {};
for (const peer of peers) {
  const id = peer.peer.id;
  ratios[id] = { train: {}, inferTfjs: {}, inferOnnx: {} };
  for (const arch of models) {
    const r = results[arch] as ModelResult;
    const p = r.peers[id];
    (ratios[id].train as Record<string, number | null>)[arch] = ratio(r.segkit.train, p?.train);
    (ratios[id].inferTfjs as Record<string, number | null>)[arch] = ratio(r.segkit.inferTfjs, p?.infer);
    (ratios[id].inferOnnx as Record<string, number | null>)[arch] = ratio(r.segkit.inferOnnx, p?.infer);
  }
}
ratios.baseline = { train: {}, inferTfjs: {} };
for (const arch of models) {
  const r = results[arch] as ModelResult;
  (ratios.baseline.train as Record<string, number | null>)[arch] = ratio(r.segkit.train, baseline?.[arch]?.train);
  (ratios.baseline.inferTfjs as Record<string, number | null>)[arch] = ratio(
    r.segkit.inferTfjs,
    baseline?.[arch]?.inferTfjs,
  );
}

const f = (v: number | null | undefined, d = 2) => (v === null || v === undefined ? "n/a" : v.toFixed(d));
console.log("\nimages/s: median (range of the passes); ratio = segkit / peer (> 1: segkit faster)");
for (const arch of models) {
  const r = results[arch] as ModelResult;
  console.log(`\n${arch} (${(r.flopsPerImage / 1e9).toFixed(2)} GFLOP per image forward)`);
  console.log(`  segkit train        ${formatSummary(r.segkit.train)}  (${r.gflops.train.toFixed(1)} GFLOP/s)`);
  console.log(`  segkit infer tfjs   ${formatSummary(r.segkit.inferTfjs)}`);
  console.log(`  segkit infer onnx   ${formatSummary(r.segkit.inferOnnx)}`);
  for (const peer of peers) {
    const p = r.peers[peer.peer.id];
    const q = ratios[peer.peer.id] as Record<string, Record<string, number | null>>;
    console.log(`  ${peer.label}`);
    console.log(`    train ${formatSummary(p?.train)}  ratio ${f(q.train?.[arch])}`);
    console.log(
      `    infer ${formatSummary(p?.infer)}  ratio tfjs ${f(q.inferTfjs?.[arch])}, onnxruntime ${f(q.inferOnnx?.[arch])}`,
    );
  }
  const b = baseline?.[arch];
  console.log(
    `  baseline train ${formatSummary(b?.train)} (segkit ${f(ratios.baseline.train?.[arch])}x), infer tfjs ` +
      `${formatSummary(b?.inferTfjs)} (segkit tfjs ${f(ratios.baseline.inferTfjs?.[arch])}x)`,
  );
}

await writeResults(args.out, {
  date: new Date().toISOString(),
  machine: machine(),
  peers: Object.fromEntries(peers.map((p) => [p.peer.id, { python: p.peer.python, ...p.ready }])),
  method: {
    batch: BATCH,
    size: SIZE,
    classes: CLASSES,
    passes: `1 warm-up pass, then ${PASSES} passes alternating over every side (the order rotating); a pass is ${STEPS} training batches or ${2 * STEPS} inference batches; figures: median images/s and the range of the passes (baseline: 2 passes of half the batches)`,
    segkit: `backend ${backend}${backend === "wasm" ? `, ${wasmThreads()} threads` : ""}; Adam(1e-3) on cross-entropy; model.apply(training) under optimizer.minimize; inference on tfjs (model.predict) and on onnxruntime-node (exportOnnx + createOnnxPredictor, ${args.threads} threads), each reported`,
    baseline:
      "stock tfjs-backend-wasm, 1 thread, its own kernels, plus segkit's Conv2DBackpropFilter only (training fails without it); inference on tfjs; run in a child process after the interleaved passes",
    pytorch: `torch.set_num_threads(${args.threads}); same architectures; Adam(1e-3); F.cross_entropy; inference in eval mode under no_grad; OMP_WAIT_POLICY=PASSIVE`,
    gflops: "forward FLOPs per image from modelInfo (2 x multiply-adds); a training step counted as 3x forward",
  },
  results,
  baseline,
  ratios,
});
