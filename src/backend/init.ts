/**
 * Picks and prepares the TensorFlow.js backend segkit trains and predicts on, in Node:
 *   1. `tensorflow` (native TensorFlow) when the optional peer `@tensorflow/tfjs-node` is installed;
 *   2. `wasm` (XNNPACK), the default, with the gradient kernels segkit adds (see `registerWasmKernels`);
 *   3. `cpu` (pure JS) as the last resort, with a warning: it is about 100x slower for conv nets.
 */
import * as tf from "@tensorflow/tfjs";
import { SegkitError } from "../core/errors.js";
import { registerGradientOverrides } from "./batch-norm-grad.js";
import { convGradKernels } from "./conv-grads.js";
import { layoutKernels } from "./layout-kernels.js";
import { maxPoolGradKernel } from "./max-pool-grad.js";
import { configureNativeKernels, nativeConvKernels } from "./native.js";
import { configureOnnxConv, onnxConvKernels, resetOnnxConv } from "./onnx-conv.js";
import { captureStockReduceKernels, reduceKernels } from "./reduce-grads.js";
import { defaultWasmThreads, useThreadedWasm, wasmThreads } from "./threads.js";

export { wasmThreads } from "./threads.js";

export const BACKEND_NAMES = ["auto", "tensorflow", "wasm", "cpu"] as const;
export type BackendChoice = (typeof BACKEND_NAMES)[number];
export type ActiveBackend = Exclude<BackendChoice, "auto">;

export interface InitBackendOptions {
  /** `auto` (default): tensorflow if `@tensorflow/tfjs-node` is installed, else wasm, else cpu. */
  backend?: BackendChoice;
  /**
   * wasm threads (default: the logical cores, at most 8), applied when the wasm backend first initialises: more
   * than 1 starts tfjs-backend-wasm's threaded-SIMD build, which tfjs 4.22 cannot start in Node by itself (see
   * `threads.ts`); if it fails to start, a one-line warning and the single-threaded build. `wasmThreads()` says
   * how many threads are really in use.
   */
  threads?: number;
  /**
   * wasm only: run each convolution (forward and both gradients) on onnxruntime's native kernels when that is
   * faster for its shapes, timed on its first call (see `onnx-conv.ts`). Default true.
   */
  onnxConv?: boolean;
  /**
   * wasm only: run the convolutions (where they beat onnxruntime's), batch norm's training passes, MaxPoolGrad,
   * Relu's gradient and strided row copies on segkit's native kernels (`native/segkit.cc`, built at install) when
   * they loaded (see `native.ts`). Default true; without them, the same math on the wasm kernels and onnxruntime.
   */
  native?: boolean;
}

export const DEFAULT_INIT_BACKEND_OPTIONS: Required<InitBackendOptions> = {
  backend: "auto",
  threads: defaultWasmThreads(),
  onnxConv: true,
  native: true,
};

function validateInitBackendOptions(options: InitBackendOptions): Required<InitBackendOptions> {
  const merged = { ...DEFAULT_INIT_BACKEND_OPTIONS, ...options };
  if (!BACKEND_NAMES.includes(merged.backend)) {
    throw new SegkitError(`unknown backend "${merged.backend}"`, { hint: `use one of: ${BACKEND_NAMES.join(", ")}` });
  }
  if (!Number.isInteger(merged.threads) || merged.threads < 1) {
    throw new SegkitError(`threads must be a positive integer, got ${merged.threads}`);
  }
  return merged;
}

let wasmKernelsRegistered = false;

/**
 * Registers segkit's wasm kernels (once): Conv2DBackpropFilter, Conv2DBackpropInput (replacing the stock naive
 * one), DepthwiseConv2dNativeBackpropFilter/Input, MaxPoolGrad (replacing the stock one, wrong for windows <= 0),
 * Sum/Mean over leading axes, SplitV/Concat/Identity/Cast/FusedBatchNorm without needless copies (layout-kernels.ts),
 * and the onnxruntime dispatch of Conv2D, FusedConv2D and the conv gradients.
 */
export function registerWasmKernels(): void {
  if (wasmKernelsRegistered) return;
  captureStockReduceKernels(); // Sum/Mean: segkit's handle leading-axes reductions and delegate the rest
  const register = (config: tf.KernelConfig) => {
    if (tf.getKernel(config.kernelName, "wasm")) tf.unregisterKernel(config.kernelName, "wasm");
    tf.registerKernel(config);
  };
  for (const config of [...convGradKernels, maxPoolGradKernel, ...reduceKernels, ...layoutKernels]) register(config);
  // the forward convolutions by segkit's native kernel while enabled (native.ts), else the stock ones
  for (const config of nativeConvKernels((name) => tf.getKernel(name, "wasm"))) register(config);
  // wraps the convolutions registered above (stock forward, segkit's gradients) with the onnxruntime dispatch
  for (const config of onnxConvKernels((name) => tf.getKernel(name, "wasm"))) register(config);
  registerGradientOverrides(); // global gradient overrides, exact on every backend (see batch-norm-grad.ts)
  wasmKernelsRegistered = true;
}

/** Imports the optional peer `@tensorflow/tfjs-node`; false when it is not installed or cannot load. */
async function loadTfjsNode(): Promise<boolean> {
  if (tf.engine().registry.tensorflow) return true;
  const name = "@tensorflow/tfjs-node"; // a variable: the package is optional and has no types here
  try {
    await import(name);
  } catch {
    return false;
  }
  // a tfjs-node built against another tfjs-core registers its backend there, not here
  return tf.engine().registryFactory.tensorflow !== undefined;
}

let threadsSet = false;

async function tryBackend(name: ActiveBackend, threads: number, onnxConv: boolean, native: boolean): Promise<boolean> {
  if (name === "tensorflow" && !(await loadTfjsNode())) return false;
  if (name === "wasm") {
    registerWasmKernels();
    configureOnnxConv({ threads, mode: onnxConv ? "auto" : "off" });
    if (configureNativeKernels({ enabled: native, threads })) resetOnnxConv();
    // only takes effect before the wasm module first initialises (tf.findBackend would initialise it)
    if (!threadsSet) useThreadedWasm(threads);
    threadsSet = true;
  }
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

/**
 * Makes the chosen backend active (idempotent: calling again with the same choice changes nothing) and returns
 * its name. An explicit choice that cannot start throws; `auto` falls back down tensorflow -> wasm -> cpu.
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<ActiveBackend> {
  const { backend, threads, onnxConv, native } = validateInitBackendOptions(options);
  const order: ActiveBackend[] = backend === "auto" ? ["tensorflow", "wasm", "cpu"] : [backend];
  for (const name of order) {
    if (tf.getBackend() === name && (name !== "wasm" || wasmKernelsRegistered)) {
      if (name === "wasm") {
        configureOnnxConv({ mode: onnxConv ? "auto" : "off" });
        // the convolutions' engines were timed against the other kernels: time them again
        if (configureNativeKernels({ enabled: native, threads: wasmThreads() ?? threads })) resetOnnxConv();
      }
      return name;
    }
    if (await tryBackend(name, threads, onnxConv, native)) {
      if (name === "cpu") {
        console.warn("segkit: using the tfjs cpu backend, which is very slow for training (minutes per step)");
      }
      return name;
    }
  }
  const hint = backend === "tensorflow" ? "install it with `npm install @tensorflow/tfjs-node`" : "try backend: 'auto'";
  throw new SegkitError(`the tfjs backend "${backend}" could not start`, { hint });
}
