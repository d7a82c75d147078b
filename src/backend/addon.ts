/**
 * The native addon (`native/segkit.cc`, built at install by `scripts/build-native.mjs`) and its functions, loaded on
 * first use; no tfjs here, so that onnxruntime-only code can use it too. The kernels' uses: native.ts (training, on
 * the wasm backend) and sam/native-upscale.ts (a SAM click's masks).
 */
import { createRequire } from "node:module";

type F32 = Float32Array;
/** The addon's functions; each checks its arrays' lengths and throws on a mismatch. */
export interface NativeKernels {
  /**
   * Training-mode batch norm of x [M rows, C] (channels last, flattened) with gamma, beta [C]: writes y [M, C] and
   * the batch's mean and biased variance [C]. The backward pass writes dx [M, C], dgamma and dbeta [C].
   */
  batchNormForward(x: F32, gamma: F32, beta: F32, epsilon: number, y: F32, mean: F32, variance: F32): void;
  batchNormBackward(
    dy: F32,
    x: F32,
    mean: F32,
    variance: F32,
    gamma: F32,
    epsilon: number,
    dx: F32,
    dgamma: F32,
    dbeta: F32,
  ): void;
  /**
   * dW [kh,kw,Ci,Co] of a convolution (NHWC, dilation 1), `geometry` = [N, H, W, Ci, Ho, Wo, Co, kh, kw, strideH,
   * strideW, padTop, padLeft].
   */
  conv2dBackpropFilter(x: F32, dy: F32, dW: F32, geometry: number[]): void;
  /** y = act(x (*) w + bias) (NHWC, filter HWIO, dilation 1), `bias` null for none, `relu` the activation. */
  conv2d(x: F32, w: F32, bias: F32 | null, y: F32, geometry: number[], relu: boolean): void;
  /** dx of a stride-1 convolution of `geometry` (the forward one's), from dy and the filter w. */
  conv2dBackpropInput(dy: F32, w: F32, dx: F32, geometry: number[]): void;
  /** dx of a max pooling (NHWC), `geometry` as for the filter gradient with Co = Ci and the window as the filter. */
  maxPoolGrad(x: F32, dy: F32, dx: F32, geometry: number[]): void;
  /** dx = dy * step(x) (tfjs's Relu gradient: 1 for x > 0, NaN for NaN, else 0). */
  reluGrad(dy: F32, x: F32, dx: F32): void;
  /**
   * Copies `count` rows of `width` bytes inside `heap`, row r from byte `from + r * fromStride` to `to + r * toStride`
   * (source and destination rows must not overlap).
   */
  copyRows(
    heap: Uint8Array,
    from: number,
    fromStride: number,
    to: number,
    toStride: number,
    count: number,
    width: number,
  ): void;
  /**
   * SAM's click upscaling (sam/native-upscale.ts): the planes of `lowRes` [P, 256, 256] through composed taps (3 per
   * output, `[W * 3]` and `[H * 3]`), in doubles, rounded once to float32 as postprocess.ts's full pass. Writes
   * `masks` (P zero-filled arrays [H * W]: 1 where the value > levels[0]) and `counts` [2P] (per plane the values >
   * levels[2] and > levels[1], then those > levels[1]) on `threads` threads (0: OpenMP's default).
   */
  upscaleThreshold(
    lowRes: F32,
    txIdx: Int32Array,
    txW: Float64Array,
    tyIdx: Int32Array,
    tyW: Float64Array,
    levels: Float64Array,
    masks: Uint8Array[],
    counts: Float64Array,
    threads: number,
  ): void;
  setThreads(threads: number): void;
}

/** Where node-gyp puts the addon, from src/backend or dist/backend alike. */
const NATIVE_ADDON_PATH = "../../build/Release/segkit_native.node";

let addon: NativeKernels | null | undefined;
let loadError = "";

/** The addon, or null where it was not built or cannot load (the reason is kept for `nativeKernelsStatus`). */
export function nativeKernels(): NativeKernels | null {
  if (addon === undefined) {
    // OpenMP's threads sleep as soon as a kernel ends instead of spinning (libgomp reads this when it loads, with
    // the addon): a spinning thread takes a core from the onnxruntime and wasm kernels that run next. A training step
    // of the bench U-Net measured 485 ms passive, 556 default, 662 active (one profile each, noisy host).
    process.env.OMP_WAIT_POLICY ??= "PASSIVE";
    try {
      addon = createRequire(import.meta.url)(NATIVE_ADDON_PATH) as NativeKernels;
    } catch (error) {
      addon = null;
      loadError = error instanceof Error ? (error.message.split("\n")[0] ?? "") : String(error);
    }
  }
  return addon;
}

/** Whether the addon loaded, and why not. */
export function nativeKernelsStatus(): { loaded: boolean; reason?: string } {
  return nativeKernels() ? { loaded: true } : { loaded: false, reason: loadError };
}
