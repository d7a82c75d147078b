/**
 * Training and inference throughput of segkit's `unet` (16-32-64-128, 3 classes) and `encoder-decoder` at
 * 128x128, batch 8, Adam + cross-entropy, on segkit's default backend, against the same architectures in PyTorch
 * in the same run (bench/peers/torch_train.py, torch.set_num_threads(2)). Reports images/s, the ratio to PyTorch
 * and the achieved GFLOP/s (forward FLOPs from `modelInfo`; a training step counted as 3x forward).
 * Writes bench/results/train.json.
 *
 *   npm run bench:train -- [--steps 10] [--models unet,encoder-decoder] [--backend auto]
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { type BackendChoice, initBackend } from "../src/backend/init.js";
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
    out: { type: "string", default: join(here, "results", "train.json") },
  },
});
const STEPS = Number(args.steps);
const BATCH = 8;
const SIZE = 128;
const CLASSES = 3;
const models = args.models.split(",") as ModelArch[];

const backend = await initBackend({ backend: args.backend as BackendChoice });
console.log(`segkit backend: ${backend}`);

/** images/s of `fn` over STEPS calls after 2 warm-up calls (each call processes one batch). */
function rate(fn: () => void, steps = STEPS): number {
  for (let k = 0; k < 2; k++) fn();
  const start = performance.now();
  for (let k = 0; k < steps; k++) fn();
  return (BATCH * steps) / ((performance.now() - start) / 1000);
}

interface Result {
  trainImagesPerSecond: number;
  inferImagesPerSecond: number;
  params: number;
  flopsPerImage: number;
  trainGflops: number;
  inferGflops: number;
}
const segkit: Record<string, Result> = {};
for (const arch of models) {
  const model = createModel(arch, { numClasses: CLASSES, inputSize: [SIZE, SIZE] });
  const info = modelInfo(model);
  const x = tf.randomUniform([BATCH, SIZE, SIZE, 3], 0, 255);
  const y = tf.randomUniform([BATCH, SIZE, SIZE], 0, CLASSES, "int32");
  const loss = createLoss("ce");
  const optimizer = tf.train.adam(1e-3);
  const train = rate(() => {
    const cost = optimizer.minimize(() => loss(y, model.apply(x, { training: true }) as tf.Tensor), true);
    cost?.dataSync();
    cost?.dispose();
  });
  const infer = rate(() => {
    const out = model.predict(x) as tf.Tensor;
    out.dataSync();
    out.dispose();
  }, STEPS * 2);
  segkit[arch] = {
    trainImagesPerSecond: train,
    inferImagesPerSecond: infer,
    params: info.trainableParams,
    flopsPerImage: info.flops,
    trainGflops: (3 * info.flops * train) / 1e9,
    inferGflops: (info.flops * infer) / 1e9,
  };
  tf.dispose([x, y]);
  optimizer.dispose();
  model.dispose();
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

const ratios = {
  trainVsPytorch: {} as Record<string, number | null>,
  inferVsPytorch: {} as Record<string, number | null>,
};
console.log(
  "model             train img/s  (GFLOP/s)  infer img/s  (GFLOP/s)  | PyTorch train  infer | ratio train  infer",
);
for (const arch of models) {
  const s = segkit[arch] as Result;
  const p = peer?.results[arch];
  ratios.trainVsPytorch[arch] = p ? s.trainImagesPerSecond / p.trainImagesPerSecond : null;
  ratios.inferVsPytorch[arch] = p ? s.inferImagesPerSecond / p.inferImagesPerSecond : null;
  const f = (v: number | undefined | null, d = 1) => (v === undefined || v === null ? "n/a" : v.toFixed(d));
  console.log(
    `${arch.padEnd(16)} ${f(s.trainImagesPerSecond).padStart(11)}  (${f(s.trainGflops)})  ${f(s.inferImagesPerSecond).padStart(11)}  (${f(s.inferGflops)})  | ${f(p?.trainImagesPerSecond).padStart(13)}  ${f(p?.inferImagesPerSecond).padStart(5)} | ${f(ratios.trainVsPytorch[arch], 2).padStart(11)}  ${f(ratios.inferVsPytorch[arch], 2).padStart(5)}`,
  );
}

await writeResults(args.out, {
  date: new Date().toISOString(),
  machine: { ...machine(), python: peer?.versions.python ?? null, torch: peer?.versions.torch ?? null },
  method: {
    batch: BATCH,
    size: SIZE,
    classes: CLASSES,
    steps: `2 warm-up + ${STEPS} timed (inference: ${2 * STEPS})`,
    segkit: `backend ${backend}; Adam(1e-3) on cross-entropy; model.apply(training) under optimizer.minimize`,
    pytorch: `torch.set_num_threads(${args.threads}); same architectures; Adam(1e-3); F.cross_entropy`,
    gflops: "forward FLOPs per image from modelInfo (2 x multiply-adds); a training step counted as 3x forward",
  },
  results: { segkit, pytorch: peer?.results ?? null },
  ratios,
});
