/**
 * Reductions over the leading axes, the per-channel sums of batch norm and bias gradients, on the wasm backend.
 * tfjs-backend-wasm 4.22 reduces only innermost axes, so `Sum`/`Mean` over [0,1,2] of [N,H,W,C] first transpose the
 * whole tensor (~4 ns per element); the `Mean` gradient broadcasts with `ones(x.shape)` times dy (two full passes).
 *   - `Sum`/`Mean` kernels: x viewed as [M, C] -> x^T [C,M] times a ones column [M,1] (BatchMatMul with transposeA:
 *     a C++ blocked loop that reads x once, ~1 ns per element); any other case goes to the stock kernel.
 *   - `Mean`/`Sum` gradients: the broadcast of dy [C] over M rows is ones [M,1] times dy [1,C], one XNNPACK GEMM
 *     with K = 1 (its products are dy's values themselves, so the result is the stock one bit for bit). Other
 *     backends and other axes run the stock gradient.
 * Sums come out in a different order than the stock kernels', so they agree to float32 rounding, not bit for bit.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { type Info, scoped } from "./wasm-ops.js";

type KernelArgs = Parameters<tf.KernelFunc>[0];
type ReduceAttrs = { axis: number | number[]; keepDims: boolean };

/** [M, C] when `axes` are exactly the leading axes of `shape` (all but the last), rank >= 2; else null. */
export function leadingAxesSplit(
  shape: readonly number[],
  axis: number | number[] | null | undefined,
): [number, number] | null {
  const rank = shape.length;
  if (rank < 2 || axis === null || axis === undefined) return null;
  const axes = [...new Set((Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a)))].sort(
    (a, b) => a - b,
  );
  if (axes.length !== rank - 1 || axes.some((a, i) => a !== i)) return null;
  const c = shape[rank - 1] as number;
  const m = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return m > 0 && c > 0 ? [m, c] : null;
}

const stockKernels = new Map<string, tf.KernelConfig>();

function stock(name: string): tf.KernelConfig {
  const config = stockKernels.get(name);
  if (!config) throw new Error(`segkit: no stock wasm ${name} kernel captured`);
  return config;
}

/** Per-channel sums [C] (or divided by M for the mean) of x [.., C] float32 over its leading axes, as above. */
function leadingReduce(b: BackendWasm, x: Info, m: number, c: number, attrs: ReduceAttrs, mean: boolean): Info {
  const outShape = attrs.keepDims ? [...x.shape.map(() => 1).slice(0, -1), c] : [c];
  const ones = b.makeOutput([m, 1], "float32");
  b.typedArrayFromHeap(ones).fill(1);
  try {
    return scoped(b, (ops) => {
      const x2 = ops.reshape(x, [m, c]);
      let s = ops.run(tf.BatchMatMul, { a: x2, b: ones }, { transposeA: true, transposeB: false });
      if (mean) {
        const n = b.makeOutput([], "float32");
        b.typedArrayFromHeap(n)[0] = m;
        try {
          s = ops.run(tf.RealDiv, { a: s, b: n });
        } finally {
          b.disposeData(n.dataId);
        }
      }
      return ops.reshape(s, outShape);
    });
  } finally {
    b.disposeData(ones.dataId);
  }
}

function reduceKernel(name: typeof tf.Sum | typeof tf.Mean): tf.KernelConfig {
  return {
    kernelName: name,
    backendName: "wasm",
    // the stock kernel's setup (its cwrap) still has to run when the backend starts: it serves the other cases
    setupFunc: (backend) => stock(name).setupFunc?.(backend),
    kernelFunc: (args: KernelArgs) => {
      const { x } = args.inputs as { x: Info };
      const attrs = args.attrs as unknown as ReduceAttrs;
      const split = x.dtype === "float32" ? leadingAxesSplit(x.shape, attrs.axis) : null;
      if (!split) return stock(name).kernelFunc(args);
      return leadingReduce(args.backend as BackendWasm, x, split[0], split[1], attrs, name === tf.Mean);
    },
  };
}

/** Replacements for wasm's `Sum` and `Mean` (capture the stock ones first: see `captureStockReduceKernels`). */
export const reduceKernels: tf.KernelConfig[] = [reduceKernel(tf.Sum), reduceKernel(tf.Mean)];

/** Remembers the stock wasm Sum/Mean kernels (once, before `reduceKernels` replace them) for the cases they keep. */
export function captureStockReduceKernels(): void {
  for (const name of [tf.Sum, tf.Mean]) {
    if (stockKernels.has(name)) continue;
    const config = tf.getKernel(name, "wasm");
    if (!config) throw new Error(`segkit: the wasm backend has no ${name} kernel`);
    stockKernels.set(name, config);
  }
}

/**
 * dy [C] (any shape of C elements) broadcast to `shape` [.., C] as ones [M,1] x dy [1,C] when the active backend is
 * wasm (no Fill of the full tensor, no broadcasting multiply); `null` elsewhere (callers keep the stock formula).
 */
export function broadcastRows(row: tf.Tensor, shape: readonly number[]): tf.Tensor | null {
  if (tf.getBackend() !== "wasm" || row.dtype !== "float32") return null;
  const c = shape[shape.length - 1] as number;
  if (shape.length < 2 || row.size !== c) return null;
  const m = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return tf.tidy(() => tf.reshape(tf.matMul(tf.fill([m, 1], 1), tf.reshape(row, [1, c])), [...shape]));
}

const stockGradients = new Map<string, tf.GradConfig>();

/** The gradient config tfjs-core registered for `name` (before segkit's override), for delegation and tests. */
export function stockGradient(name: string): tf.GradConfig {
  const config = stockGradients.get(name) ?? tf.getGradient(name);
  if (!config) throw new Error(`segkit: tfjs has no gradient for ${name}`);
  return config;
}

/** Overrides `names`' gradients with `make(stock)` (once; remembers the stock configs for `stockGradient`). */
export function overrideGradients(configs: Record<string, (stock: tf.GradConfig) => tf.GradConfig>): void {
  for (const [name, make] of Object.entries(configs)) {
    if (stockGradients.has(name)) continue;
    const original = stockGradient(name);
    stockGradients.set(name, original);
    tf.registerGradient(make(original));
  }
}

const segkitGradients = new Map<string, tf.GradConfig>();

/** `true`: puts tfjs's stock gradients back (tests compare against them); `false`: segkit's again. */
export function useStockGradients(stockOnes: boolean): void {
  for (const [name, original] of stockGradients) {
    const current = tf.getGradient(name);
    if (stockOnes) {
      if (current && current !== original) segkitGradients.set(name, current);
      tf.registerGradient(original);
    } else {
      const ours = segkitGradients.get(name);
      if (ours) tf.registerGradient(ours);
    }
  }
}

/** Mean/Sum gradient: the stock formula, except the wasm leading-axes broadcast (`broadcastRows`). */
function reduceGradient(name: typeof tf.Sum | typeof tf.Mean) {
  return (original: tf.GradConfig): tf.GradConfig => ({
    kernelName: name,
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved as [tf.Tensor];
      const { axis } = attrs as unknown as ReduceAttrs;
      const split = leadingAxesSplit(x.shape, axis);
      const g = dy as tf.Tensor;
      if (split && tf.getBackend() === "wasm" && g.dtype === "float32") {
        // stock: (dy * ones) / M, elementwise: dy / M exactly; the broadcast copies values
        return { x: () => broadcastRows(name === tf.Mean ? tf.div(g, split[0]) : g, x.shape) as tf.Tensor };
      }
      return original.gradFunc(dy, saved, attrs);
    },
  });
}

export const reduceGradients = { [tf.Mean]: reduceGradient(tf.Mean), [tf.Sum]: reduceGradient(tf.Sum) };
