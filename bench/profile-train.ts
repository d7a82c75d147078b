/**
 * Where a training step's time goes: a per-kernel profile (tf.profile) of one Adam + cross-entropy step of the
 * bench/train models (128x128, batch 8, 3 classes) on segkit's default backend, after warm-up steps. Kernels are
 * grouped by name with their total time, share of the step and, for convolutions, GFLOP/s.
 * Writes bench/results/train-profile.json.
 *
 *   npx tsx bench/profile-train.ts [--models unet,encoder-decoder] [--threads 2] [--size 128]
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { initBackend, wasmThreads } from "../src/backend/init.js";
import { createLoss } from "../src/losses/registry.js";
import { createModel, type ModelArch } from "../src/models/registry.js";
import { validateTrainConfig } from "../src/train/config.js";
import { createOptimizer } from "../src/train/optimizer.js";
import { machine, writeResults } from "./common.js";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    models: { type: "string", default: "unet,encoder-decoder" },
    threads: { type: "string", default: "2" },
    size: { type: "string", default: "128" },
    out: { type: "string", default: join(here, "results", "train-profile.json") },
  },
});
const BATCH = 8;
const SIZE = Number(args.size);
const CLASSES = 3;

const backend = await initBackend({ threads: Number(args.threads) });
console.log(`backend ${backend}${backend === "wasm" ? `, ${wasmThreads()} threads` : ""}`);

/** Multiply-adds x 2 of a convolution kernel call, from its input/output shapes (NHWC); 0 for other kernels. */
function convFlops(k: { name: string; inputShapes: number[][]; outputShapes: number[][] }): number {
  const [a, b] = k.inputShapes;
  const out = k.outputShapes[0];
  if (!a || !b || !out) return 0;
  const size = (s: number[]) => s.reduce((p, v) => p * v, 1);
  switch (k.name) {
    case "Conv2D":
    case "FusedConv2D": // x, filter [kh,kw,ci,co] -> y
      return 2 * size(out) * (b[0] ?? 0) * (b[1] ?? 0) * (b[2] ?? 0);
    case "Conv2DBackpropFilter": // x, dy -> dW [kh,kw,ci,co]: each dW element sums over dy's N x Ho x Wo
      return 2 * size(out) * size(b.slice(0, 3));
    case "Conv2DBackpropInput": // dy, filter [kh,kw,ci,co] -> dx: each dy element meets kh x kw x ci weights
      return 2 * size(a) * (b[0] ?? 0) * (b[1] ?? 0) * (b[2] ?? 0);
    case "Conv2DTranspose":
      return 2 * size(a) * (b[0] ?? 0) * (b[1] ?? 0) * (b[2] ?? 0);
    default:
      return 0;
  }
}

const report: Record<string, unknown> = {};
for (const arch of args.models.split(",") as ModelArch[]) {
  const model = createModel(arch, { numClasses: CLASSES, inputSize: [SIZE, SIZE] });
  const x = tf.randomUniform([BATCH, SIZE, SIZE, 3], 0, 255);
  const y = tf.randomUniform([BATCH, SIZE, SIZE], 0, CLASSES, "int32");
  const loss = createLoss("ce");
  // fit's step: fused Adam
  const optimizer = createOptimizer(validateTrainConfig({ optimizer: { name: "adam", lr: 1e-3 } }).optimizer);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const step = () => {
    const cost = optimizer.step(() => loss(y, model.apply(x, { training: true }) as tf.Tensor), vars);
    cost.dataSync();
    cost.dispose();
  };
  for (let k = 0; k < 3; k++) step();
  const start = performance.now();
  step();
  const stepMs = performance.now() - start;
  const info = await tf.profile(step);
  const groups = new Map<string, { ms: number; calls: number; flops: number }>();
  for (const k of info.kernels) {
    const g = groups.get(k.name) ?? { ms: 0, calls: 0, flops: 0 };
    g.ms += Number(k.kernelTimeMs);
    g.calls += 1;
    g.flops += convFlops(k);
    groups.set(k.name, g);
  }
  const rows = [...groups.entries()].sort((p, q) => q[1].ms - p[1].ms);
  const kernelMs = rows.reduce((s, [, g]) => s + g.ms, 0);
  console.log(`\n${arch}: step ${stepMs.toFixed(0)} ms unprofiled, kernels ${kernelMs.toFixed(0)} ms`);
  console.log("kernel                          calls      ms   share  GFLOP/s");
  for (const [name, g] of rows.slice(0, 25)) {
    const gflops = g.flops ? (g.flops / g.ms / 1e6).toFixed(1) : "";
    console.log(
      `${name.padEnd(30)} ${String(g.calls).padStart(6)} ${g.ms.toFixed(1).padStart(7)} ${((100 * g.ms) / kernelMs).toFixed(1).padStart(6)}%  ${gflops.padStart(7)}`,
    );
  }
  report[arch] = {
    stepMs,
    kernelMs,
    kernels: rows.map(([name, g]) => ({ name, ...g, gflops: g.flops ? g.flops / g.ms / 1e6 : null })),
  };
  tf.dispose([x, y]);
  optimizer.dispose();
  model.dispose();
}
await writeResults(args.out, {
  date: new Date().toISOString(),
  machine: machine(),
  method: { batch: BATCH, size: SIZE, classes: CLASSES, backend, threads: wasmThreads() },
  results: report,
});
