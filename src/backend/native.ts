/**
 * segkit's native kernels (`native/segkit.cc`, a Node-API addon built at install by `scripts/build-native.mjs`,
 * compiled for the build machine's CPU: AVX-512 / AVX2 through GCC's vector extensions, 2 OpenMP threads by default),
 * working straight on the wasm heap, no copies:
 *   - batch norm in training (memory-bound: ~20 full-size reads and writes per layer on the wasm kernels, 9 here):
 *     the bench U-Net's 14 layers (batch 8 at 128x128), forward + backward, ~31 ms vs ~150 ms on the wasm kernels;
 *   - the convolutions, register-tiled (filter or dy vectors held in registers): forward (`nativeConvKernels`), the
 *     stride-1 input gradient and the filter gradient (conv-grads.ts); the U-Net's 15 filter gradients 34 ms vs 171
 *     for the best of XNNPACK and onnxruntime per layer; onnx-conv.ts's tuning still picks per call signature;
 *   - MaxPoolGrad: ~3 ms vs ~26 for the JS loop (max-pool-grad.ts);
 *   - Relu's gradient in one pass (`reluGradient`) instead of tfjs's Step and Multiply;
 *   - the strided row copies of Concat and SplitV (layout-kernels.ts), a memcpy per row.
 * (scratch measurements, 2 threads, 2026-12-07.) Batch norm and Relu's gradient go through kernels registered for
 * the wasm backend, which the ops only check exist (models/batch-norm.ts, `reluGradient`); the convolutions,
 * MaxPoolGrad and the row copies are the wasm kernels' own fast path (`activeNativeKernels`). Where the addon did
 * not build (no compiler, SEGKIT_NATIVE=0 at install), does not load, or `initBackend({ native: false })`,
 * everything runs as before on wasm.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { BATCH_NORM_TRAINING, BATCH_NORM_TRAINING_GRAD } from "../models/batch-norm.js";
import { type NativeKernels, nativeKernels } from "./addon.js";
import { type ConvAttrs, convGeometry, convInfo } from "./conv-grads.js";

type F32 = Float32Array;

let active: NativeKernels | null = null;

/** The addon when `configureNativeKernels` enabled it (for kernels that choose between it and wasm), else null. */
export function activeNativeKernels(): NativeKernels | null {
  return active;
}

type KernelArgs = Parameters<tf.KernelFunc>[0];
type Info = tf.TensorInfo;

/**
 * Float32 heap tensors of `shapes` filled by `fill`, which gets views of `inputs` then of the new tensors (taken after
 * the allocations: one may grow and move the heap); the new tensors are freed if `fill` throws.
 */
export function nativeOutputs(
  b: BackendWasm,
  inputs: Info[],
  shapes: number[][],
  fill: (views: F32[]) => void,
): Info[] {
  const outs = shapes.map((shape) => b.makeOutput(shape, "float32"));
  try {
    fill([...inputs, ...outs].map((t) => b.typedArrayFromHeap(t) as F32));
  } catch (error) {
    for (const t of outs) b.disposeData(t.dataId);
    throw error;
  }
  return outs;
}

function float32Only(kernel: string, tensors: Info[]): void {
  for (const t of tensors) {
    if (t.dtype !== "float32") throw new Error(`segkit: ${kernel} takes float32 tensors, got ${t.dtype}`);
  }
}

/** Relu's gradient in one pass: inputs dy, x; output dx. */
export const RELU_GRAD = "SegkitReluGrad";

/**
 * Relu's gradient config: the native kernel where it is registered for the active backend (one pass instead of
 * tfjs's Step, then Multiply), else `original`. Installed once for every backend by `registerWasmKernels`.
 */
export function reluGradient(original: tf.GradConfig): tf.GradConfig {
  return {
    kernelName: tf.Relu,
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved as [tf.Tensor];
      if (x.dtype !== "float32" || !tf.getKernel(RELU_GRAD, tf.getBackend())) {
        return original.gradFunc(dy, saved, attrs);
      }
      return { x: () => tf.engine().runKernel(RELU_GRAD, { dy: dy as tf.Tensor, x }) as tf.Tensor };
    },
  };
}

function kernelConfigs(k: NativeKernels): tf.KernelConfig[] {
  return [
    {
      kernelName: RELU_GRAD,
      backendName: "wasm",
      kernelFunc: ({ inputs, backend }: KernelArgs) => {
        const { dy, x } = inputs as { dy: Info; x: Info };
        float32Only(RELU_GRAD, [dy, x]);
        return nativeOutputs(backend as BackendWasm, [dy, x], [x.shape], ([g, xv, dx]) =>
          k.reluGrad(g as F32, xv as F32, dx as F32),
        )[0] as Info;
      },
    },
    {
      kernelName: BATCH_NORM_TRAINING,
      backendName: "wasm",
      kernelFunc: ({ inputs, backend, attrs }: KernelArgs) => {
        const { x, gamma, beta } = inputs as { x: Info; gamma: Info; beta: Info };
        float32Only(BATCH_NORM_TRAINING, [x, gamma, beta]);
        const channels = gamma.shape[0] as number;
        if (gamma.shape.length !== 1 || x.shape[x.shape.length - 1] !== channels) {
          throw new Error(
            `segkit: ${BATCH_NORM_TRAINING}: x [${x.shape}] does not end in gamma's ${channels} channels`,
          );
        }
        const epsilon = (attrs as { epsilon: number }).epsilon;
        return nativeOutputs(backend as BackendWasm, [x, gamma, beta], [x.shape, [channels], [channels]], (v) => {
          const [xv, g, bt, y, mean, variance] = v as [F32, F32, F32, F32, F32, F32];
          k.batchNormForward(xv, g, bt, epsilon, y, mean, variance);
        });
      },
    },
    {
      kernelName: BATCH_NORM_TRAINING_GRAD,
      backendName: "wasm",
      kernelFunc: ({ inputs, backend, attrs }: KernelArgs) => {
        const { dy, x, mean, variance, gamma } = inputs as Record<"dy" | "x" | "mean" | "variance" | "gamma", Info>;
        float32Only(BATCH_NORM_TRAINING_GRAD, [dy, x, mean, variance, gamma]);
        const epsilon = (attrs as { epsilon: number }).epsilon;
        const shapes = [x.shape, gamma.shape, gamma.shape];
        return nativeOutputs(backend as BackendWasm, [dy, x, mean, variance, gamma], shapes, (views) => {
          const [dyv, xv, m, v, g, dx, dgamma, dbeta] = views as [F32, F32, F32, F32, F32, F32, F32, F32];
          k.batchNormBackward(dyv, xv, m, v, g, epsilon, dx, dgamma, dbeta);
        });
      },
    },
  ];
}

/**
 * Conv2D and FusedConv2D (linear or relu, an optional per-channel bias; NHWC, dilation 1, float32) by the native
 * kernel while it is enabled, else by `current`'s (the stock wasm kernels): wrappers installed once, before
 * onnx-conv.ts's dispatch, whose tuning then times them against onnxruntime per call signature.
 */
export function nativeConvKernels(current: (name: string) => tf.KernelConfig | undefined): tf.KernelConfig[] {
  return [tf.Conv2D, tf.FusedConv2D].flatMap((name) => {
    const config = current(name);
    if (!config) return [];
    const stock = config.kernelFunc;
    const kernelFunc: tf.KernelFunc = (args) => {
      const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, Info | undefined>;
      const a = args.attrs as unknown as ConvAttrs & { activation?: string };
      const b = args.backend as BackendWasm;
      const activation = a.activation ?? "linear";
      const plain = [x, filter, bias].every((t) => !t || t.dtype === "float32") && !preluActivationWeights;
      const info =
        active && x && filter && plain && (activation === "linear" || activation === "relu")
          ? nativeGeometry(x.shape, filter.shape, a)
          : null;
      if (!active || !x || !filter || !info || (bias && tf.util.sizeFromShape(bias.shape) !== info.outChannels))
        return stock(args);
      const k = active;
      return nativeOutputs(b, bias ? [x, filter, bias] : [x, filter], [info.outShape], (v) => {
        const y = v[v.length - 1] as F32;
        k.conv2d(v[0] as F32, v[1] as F32, bias ? (v[2] as F32) : null, y, convGeometry(info), activation === "relu");
      })[0] as Info;
    };
    return [{ ...config, kernelFunc }];
  });
}

/** The geometry of a convolution the native kernel takes (NHWC, dilation 1), else null. */
function nativeGeometry(xShape: number[], filterShape: number[], a: ConvAttrs): tf.backend_util.Conv2DInfo | null {
  if (a.dataFormat === "NCHW" || xShape.length !== 4 || filterShape.length !== 4) return null;
  try {
    return convInfo(xShape, filterShape, a, false);
  } catch {
    return null; // dilation other than 1
  }
}

/**
 * Registers the native kernels for the wasm backend when `enabled` and the addon loads, with `threads` threads;
 * unregisters them otherwise. Returns whether that changed which kernels run (then onnx-conv.ts's timings, taken
 * against the other ones, are stale: `initBackend` resets them).
 */
export function configureNativeKernels(options: { enabled: boolean; threads: number }): boolean {
  const k = options.enabled ? nativeKernels() : null;
  const changed = k !== active;
  active = k;
  for (const name of [BATCH_NORM_TRAINING, BATCH_NORM_TRAINING_GRAD, RELU_GRAD]) {
    if (tf.getKernel(name, "wasm")) tf.unregisterKernel(name, "wasm");
  }
  if (k) {
    k.setThreads(options.threads);
    for (const config of kernelConfigs(k)) tf.registerKernel(config);
  }
  return changed;
}
