/**
 * Training and inference throughput of segkit's `unet` (16-32-64-128, 3 classes) and `encoder-decoder` at
 * 128x128, batch 8, Adam + cross-entropy, on segkit's default backend, against the same architectures in PyTorch
 * in the same run (bench/peers/torch_train.py, torch.set_num_threads(2)). Reports images/s, the ratio to PyTorch
 * and the achieved GFLOP/s (forward FLOPs from `modelInfo`; a training step counted as 3x forward).
 * Inference is timed on tfjs and on onnxruntime-node (the model exported with `exportOnnx`); the ratio uses the
 * faster, named in `inferEngine`.
 * Also runs, in a child process, the "baseline": stock tfjs-backend-wasm (one thread, its own kernels) with only
 * the kernel it lacks for training added (Conv2DBackpropFilter), i.e. none of segkit's speed work.
 * Writes bench/results/train.json.
 *
 *   npm run bench:train -- [--steps 10] [--models unet,encoder-decoder] [--backend auto] [--no-baseline]
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
import { machine, runPythonPeer, writeResults } from "./common.js";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    steps: { type: "string", default: "10" },
    models: { type: "string", default: "unet,encoder-decoder" },
    backend: { type: "string", default: "auto" },
    threads: { type: "string", default: "2" },
    baseline: { type: "boolean", default: false },
    "no-baseline": { type: "boolean", default: false },
    out: { type: "string", default: join(here, "results", "train.json") },
  },
});
const STEPS = Number(args.steps);
const BATCH = 8;
const SIZE = 128;
const CLASSES = 3;
const models = args.models.split(",") as ModelArch[];

/** images/s of `fn` over `steps` calls after 2 warm-up calls (each call processes one batch). */
async function rate(fn: () => unknown, steps = STEPS): Promise<number> {
  for (let k = 0; k < 2; k++) await fn();
  const start = performance.now();
  for (let k = 0; k < steps; k++) await fn();
  return (BATCH * steps) / ((performance.now() - start) / 1000);
}

interface Rates {
  train: number;
  tfjsInfer: number;
  onnxInfer?: number;
}

async function measureModel(arch: ModelArch, onnx: boolean): Promise<Rates & { flops: number; params: number }> {
  const model = createModel(arch, { numClasses: CLASSES, inputSize: [SIZE, SIZE] });
  const info = modelInfo(model);
  const x = tf.randomUniform([BATCH, SIZE, SIZE, 3], 0, 255);
  const y = tf.randomUniform([BATCH, SIZE, SIZE], 0, CLASSES, "int32");
  const loss = createLoss("ce");
  const optimizer = tf.train.adam(1e-3);
  const train = await rate(() => {
    const cost = optimizer.minimize(() => loss(y, model.apply(x, { training: true }) as tf.Tensor), true);
    cost?.dataSync();
    cost?.dispose();
  });
  const tfjsInfer = await rate(() => {
    const out = model.predict(x) as tf.Tensor;
    out.dataSync();
    out.dispose();
  }, STEPS * 2);
  let onnxInfer: number | undefined;
  if (onnx) {
    const predictor = await createOnnxPredictor(model, { threads: Number(args.threads) });
    const pixels = x.dataSync() as Float32Array;
    onnxInfer = await rate(() => predictor.predict(pixels, BATCH, SIZE, SIZE), STEPS * 2);
    await predictor.dispose();
  }
  tf.dispose([x, y]);
  optimizer.dispose();
  model.dispose();
  return {
    train,
    tfjsInfer,
    ...(onnxInfer !== undefined ? { onnxInfer } : {}),
    flops: info.flops,
    params: info.trainableParams,
  };
}

if (args.baseline) {
  // Child process: stock wasm backend, single-threaded, plus only the missing Conv2DBackpropFilter.
  const filterGrad = convGradKernels.find((k) => k.kernelName === tf.Conv2DBackpropFilter);
  if (filterGrad) tf.registerKernel(filterGrad);
  await tf.setBackend("wasm");
  const result: Record<string, Rates> = {};
  for (const arch of models) {
    const { train, tfjsInfer } = await measureModel(arch, false);
    result[arch] = { train, tfjsInfer };
  }
  console.log(JSON.stringify(result));
  process.exit(0);
}

const backend = await initBackend({ backend: args.backend as BackendChoice, threads: Number(args.threads) });
console.log(`segkit backend: ${backend}${backend === "wasm" ? ` (${wasmThreads()} threads)` : ""}`);

interface Result {
  trainImagesPerSecond: number;
  /** The faster of tfjs and onnxruntime, named in `inferEngine`. */
  inferImagesPerSecond: number;
  inferEngine: "onnxruntime-node" | "tfjs";
  tfjsInferImagesPerSecond: number;
  onnxInferImagesPerSecond: number;
  params: number;
  flopsPerImage: number;
  trainGflops: number;
  inferGflops: number;
}
const segkit: Record<string, Result> = {};
for (const arch of models) {
  const r = await measureModel(arch, true);
  const onnx = r.onnxInfer ?? 0;
  const best = Math.max(r.tfjsInfer, onnx);
  segkit[arch] = {
    trainImagesPerSecond: r.train,
    inferImagesPerSecond: best,
    inferEngine: onnx > r.tfjsInfer ? "onnxruntime-node" : "tfjs",
    tfjsInferImagesPerSecond: r.tfjsInfer,
    onnxInferImagesPerSecond: onnx,
    params: r.params,
    flopsPerImage: r.flops,
    trainGflops: (3 * r.flops * r.train) / 1e9,
    inferGflops: (r.flops * best) / 1e9,
  };
}

let baseline: Record<string, Rates> | null = null;
if (!args["no-baseline"]) {
  const child = spawnSync(
    process.execPath,
    [
      ...process.execArgv,
      fileURLToPath(import.meta.url),
      "--baseline",
      "--steps",
      String(Math.max(2, Math.ceil(STEPS / 2))),
      "--models",
      args.models,
    ],
    { encoding: "utf8" },
  );
  if (child.status === 0) baseline = JSON.parse(child.stdout.trim().split("\n").at(-1) ?? "null");
  else console.log(`baseline run failed: ${child.stderr.trim().split("\n").at(-1)}`);
}

interface Peer {
  versions: { python: string; torch: string };
  threads: number;
  results: Record<string, { trainImagesPerSecond: number; inferImagesPerSecond: number; params: number }>;
}
const peer = runPythonPeer<Peer>(
  join(here, "peers", "torch_train.py"),
  ["--threads", args.threads, "--steps", String(STEPS), "--models", args.models],
  "apt-get install -y python3-torch",
);

const ratio = (a: number | undefined, b: number | undefined) => (a && b ? a / b : null);
const ratios = {
  trainVsPytorch: {} as Record<string, number | null>,
  inferVsPytorch: {} as Record<string, number | null>,
  trainVsBaseline: {} as Record<string, number | null>,
  inferVsBaseline: {} as Record<string, number | null>,
};
const f = (v: number | undefined | null, d = 1) => (v === undefined || v === null ? "n/a" : v.toFixed(d));
console.log(
  "model            segkit train (GFLOP/s)  infer tfjs  onnx (GFLOP/s) | PyTorch train infer | vs PyTorch train infer | vs baseline train infer",
);
for (const arch of models) {
  const s = segkit[arch] as Result;
  const p = peer?.results[arch];
  const b = baseline?.[arch];
  ratios.trainVsPytorch[arch] = ratio(s.trainImagesPerSecond, p?.trainImagesPerSecond);
  ratios.inferVsPytorch[arch] = ratio(s.inferImagesPerSecond, p?.inferImagesPerSecond);
  ratios.trainVsBaseline[arch] = ratio(s.trainImagesPerSecond, b?.train);
  ratios.inferVsBaseline[arch] = ratio(s.inferImagesPerSecond, b?.tfjsInfer);
  console.log(
    [
      arch.padEnd(16),
      `${f(s.trainImagesPerSecond).padStart(12)} (${f(s.trainGflops)})`,
      `${f(s.tfjsInferImagesPerSecond).padStart(10)} ${f(s.onnxInferImagesPerSecond).padStart(5)} (${f(s.inferGflops)})`,
      `| ${f(p?.trainImagesPerSecond).padStart(13)} ${f(p?.inferImagesPerSecond).padStart(5)}`,
      `| ${f(ratios.trainVsPytorch[arch], 2).padStart(16)} ${f(ratios.inferVsPytorch[arch], 2).padStart(5)}`,
      `| ${f(ratios.trainVsBaseline[arch], 2).padStart(17)} ${f(ratios.inferVsBaseline[arch], 2).padStart(5)}`,
    ].join(" "),
  );
}

await writeResults(args.out, {
  date: new Date().toISOString(),
  machine: { ...machine(), python: peer?.versions.python ?? null, torch: peer?.versions.torch ?? null },
  method: {
    batch: BATCH,
    size: SIZE,
    classes: CLASSES,
    steps: `2 warm-up + ${STEPS} timed (inference: ${2 * STEPS}; baseline: half)`,
    segkit: `backend ${backend}${backend === "wasm" ? `, ${wasmThreads()} threads` : ""}; Adam(1e-3) on cross-entropy; model.apply(training) under optimizer.minimize; inference on tfjs and on onnxruntime-node (${args.threads} threads), the faster counted`,
    baseline:
      "stock tfjs-backend-wasm, 1 thread, its own kernels, plus segkit's Conv2DBackpropFilter only (training fails without it); inference on tfjs",
    pytorch: `torch.set_num_threads(${args.threads}); same architectures; Adam(1e-3); F.cross_entropy`,
    gflops: "forward FLOPs per image from modelInfo (2 x multiply-adds); a training step counted as 3x forward",
  },
  results: { segkit, baseline, pytorch: peer?.results ?? null },
  ratios,
});
