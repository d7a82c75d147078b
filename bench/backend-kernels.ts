/**
 * Scratch benchmark (prints, asserts nothing): GFLOP/s of wasm's forward conv2d against segkit's gradient kernels
 * and the stock wasm Conv2DBackpropInput, at U-Net sizes (batch 8, 3x3 same, NHWC float32), plain 2-D matMul at
 * the im2col sizes of those convolutions, plus the depthwise kernels at MobileNetV2 sizes.
 * Run: npx tsx bench/backend-kernels.ts [--threads N] (default: the logical cores; 1 = single-threaded build)
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { DEFAULT_INIT_BACKEND_OPTIONS, initBackend, wasmThreads } from "../src/backend/init.js";

const threadsArg = process.argv.indexOf("--threads");
const threads = threadsArg > 0 ? Number(process.argv[threadsArg + 1]) : DEFAULT_INIT_BACKEND_OPTIONS.threads;
const stockBackpropInput = tf.getKernel(tf.Conv2DBackpropInput, "wasm"); // before segkit replaces it
await initBackend({ backend: "wasm", threads });
stockBackpropInput?.setupFunc?.(tf.backend()); // replaced before the backend started, so never set up
console.log(`wasm threads in use: ${wasmThreads()}\n`);

/** Best of `reps` timed runs after one warm-up, in ms; `f` returns a tensor or a bare TensorInfo to free. */
function time(f: () => tf.TensorInfo, reps = 3): number {
  const backend = tf.backend();
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i <= reps; i++) {
    const start = performance.now();
    const out = f();
    backend.readSync(out.dataId);
    const ms = performance.now() - start;
    if (out instanceof tf.Tensor) out.dispose();
    else backend.disposeData(out.dataId);
    if (i > 0) best = Math.min(best, ms);
  }
  return best;
}

const cell = (flops: number, ms: number): string => `${ms.toFixed(1)} ms ${(flops / ms / 1e6).toFixed(1)}`.padEnd(17);
const run = (name: string, inputs: tf.NamedTensorMap, attrs: object) => () =>
  tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;

console.log("conv 3x3 same     | forward         | backprop filter | backprop input  | stock bp input (GFLOP/s)");
for (const [n, h, ci, co] of [
  [8, 128, 3, 16],
  [8, 128, 16, 16],
  [8, 128, 32, 16],
  [8, 64, 32, 32],
  [8, 32, 64, 64],
  [8, 16, 128, 128],
] as const) {
  const inputShape: [number, number, number, number] = [n, h, h, ci];
  const x = tf.randomNormal(inputShape) as tf.Tensor4D;
  const filter = tf.randomNormal([3, 3, ci, co]) as tf.Tensor4D;
  const dy = tf.randomNormal([n, h, h, co]) as tf.Tensor4D;
  const flops = 2 * n * h * h * 9 * ci * co;
  const attrs = { strides: 1, pad: "same", dataFormat: "NHWC" };
  const forward = time(() => tf.conv2d(x, filter, 1, "same"));
  const bpFilter = time(run(tf.Conv2DBackpropFilter, { x, dy }, { ...attrs, filterShape: [3, 3, ci, co] }));
  const bpInput = time(run(tf.Conv2DBackpropInput, { dy, filter }, { ...attrs, inputShape }));
  const stock = stockBackpropInput
    ? time(
        () =>
          stockBackpropInput.kernelFunc({
            inputs: { dy, filter },
            attrs: { ...attrs, inputShape },
            backend: tf.backend(),
          }) as tf.TensorInfo,
        1,
      )
    : Number.NaN;
  const row = [cell(flops, forward), cell(flops, bpFilter), cell(flops, bpInput), cell(flops, stock)];
  console.log(`${n}x${h}x${h}x${ci}->${co}`.padEnd(18), row.join("| "));
  tf.dispose([x, filter, dy]);
}

console.log("\nmatMul [M,K]x[K,N] (im2col of the convs above) | GFLOP/s");
for (const [m, k, n] of [
  [8 * 128 * 128, 144, 16],
  [8 * 128 * 128, 288, 16],
  [8 * 64 * 64, 288, 32],
  [8 * 32 * 32, 576, 64],
  [8 * 16 * 16, 1152, 128],
  [1024, 1024, 1024],
] as const) {
  const a = tf.randomNormal([m, k]) as tf.Tensor2D;
  const b = tf.randomNormal([k, n]) as tf.Tensor2D;
  console.log(
    `${m}x${k}x${n}`.padEnd(48),
    cell(
      2 * m * k * n,
      time(() => tf.matMul(a, b)),
    ),
  );
  tf.dispose([a, b]);
}

console.log("\nconv-transpose 2x2 stride 2 (Conv2DBackpropInput with zero insertion), useful GFLOP/s");
for (const [n, h, ci, co] of [
  [8, 128, 16, 32],
  [8, 64, 32, 64],
  [8, 32, 64, 128],
] as const) {
  const dy = tf.randomNormal([n, h / 2, h / 2, co]) as tf.Tensor4D;
  const filter = tf.randomNormal([2, 2, ci, co]) as tf.Tensor4D;
  const ms = time(() => tf.conv2dTranspose(dy, filter, [n, h, h, ci], 2, "same"));
  console.log(
    `${n}x${h / 2}x${h / 2}x${co} -> ${h}x${h}x${ci}`.padEnd(28),
    cell(2 * n * (h / 2) ** 2 * 4 * ci * co, ms),
  );
  tf.dispose([dy, filter]);
}

console.log("\ndepthwise 3x3 same | forward ms | backprop filter ms | backprop input ms");
for (const [n, h, c, s] of [
  [8, 64, 96, 2],
  [8, 32, 144, 1],
  [8, 16, 384, 1],
] as const) {
  const x = tf.randomNormal([n, h, h, c]) as tf.Tensor4D;
  const filter = tf.randomNormal([3, 3, c, 1]) as tf.Tensor4D;
  const y = tf.depthwiseConv2d(x, filter, s, "same");
  const dy = tf.randomNormal(y.shape) as tf.Tensor4D;
  const attrs = { strides: s, pad: "same", dilations: 1 };
  const forward = time(() => tf.depthwiseConv2d(x, filter, s, "same"));
  const bpFilter = time(
    run(tf.DepthwiseConv2dNativeBackpropFilter, { x, dy }, { ...attrs, filterShape: [3, 3, c, 1] }),
  );
  const bpInput = time(run(tf.DepthwiseConv2dNativeBackpropInput, { dy, filter }, { ...attrs, inputShape: x.shape }));
  const ms = [forward, bpFilter, bpInput].map((v) => v.toFixed(1).padStart(8));
  console.log(`${n}x${h}x${h}x${c} s${s}`.padEnd(19), ms.join(" | "));
  tf.dispose([x, filter, y, dy]);
}
