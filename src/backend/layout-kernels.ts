/**
 * wasm kernels that move or share data, replacing tfjs-backend-wasm 4.22's where a training step spends time in them,
 * plus a faster `FusedBatchNorm` (a U-Net step, batch 8 at 128x128 on 2 threads: ~240 ms of ~1250 before, ~50 after):
 *   - `SplitV` (the gradient of `concat`): the stock kernel runs one `Slice` per piece, and each Slice first copies
 *     the whole input out of the heap (`readSync`), then copies it a row at a time through a `subarray` + `set`.
 *   - `Concat`: the stock kernel copies a row at a time through a `subarray` + `set`.
 *     Ours copy heap to heap (`copyRows`), any axis: viewed as 2-D, a split or concat along an axis moves `rows`
 *     (the product of the dims before it) rows of (its size x the product of the dims after it) elements each.
 *     [8,128,128,32] -> 2 x [8,128,128,16]: ~5 ms instead of ~25 (split), ~14 (concat).
 *   - `Identity`: the stock kernel copies its input. tfjs-core runs it (`engine.clone`) for every tensor a kernel
 *     saves for its gradient while a tape records (hundreds per U-Net step), and for `tf.clone`. Tensors are immutable,
 *     so ours shares the input's buffer and adds a reference, as the stock `Reshape` does here and `Identity` does on
 *     the cpu backend (the backend frees a buffer when its last reference goes, see `BackendWasm.disposeData`).
 *   - `Cast` to the input's own dtype (tfjs-core's `moments` and the Relu and Square gradients cast float32 to
 *     float32): shared the same way; any other cast goes to the stock kernel.
 *   - `FusedBatchNorm` (see `fusedBatchNorm`): two XNNPACK passes instead of a scalar loop with a division per element.
 * Other dtypes (string, complex64), and the batch norms `fusedBatchNorm` does not take, go to the stock kernels,
 * captured when this module loads.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
// registers the stock wasm kernels before this module captures them (and before `registerWasmKernels` replaces them)
import "@tensorflow/tfjs-backend-wasm";
import { activeNativeKernels } from "./native.js";
import { type Info, scoped } from "./wasm-ops.js";

type KernelArgs = Parameters<tf.KernelFunc>[0];

function stockKernel(name: string): tf.KernelConfig {
  const config = tf.getKernel(name, "wasm");
  if (!config) throw new Error(`segkit: the wasm backend has no ${name} kernel`);
  return config;
}

const stock = {
  SplitV: stockKernel(tf.SplitV),
  Concat: stockKernel(tf.Concat),
  Identity: stockKernel(tf.Identity),
  Cast: stockKernel(tf.Cast),
  FusedBatchNorm: stockKernel(tf.FusedBatchNorm),
};

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** dtypes whose data is plain bytes on the wasm heap (4 per element, 1 for bool), so copies are exact. */
const copyable = (dtype: tf.DataType): boolean => dtype === "float32" || dtype === "int32" || dtype === "bool";

type Heap = Int32Array | Uint8Array;

/**
 * The whole wasm heap in elements of `dtype` (4 bytes, or 1 for bool) and the offset of a tensor's data in it. Take it
 * after the last `makeOutput`: an allocation may grow the heap, which replaces its buffer.
 */
function wasmHeap(b: BackendWasm, anyTensor: Info, dtype: tf.DataType): { heap: Heap; offset: (t: Info) => number } {
  const buffer = b.typedArrayFromHeap(anyTensor).buffer;
  const heap = dtype === "bool" ? new Uint8Array(buffer) : new Int32Array(buffer);
  return { heap, offset: (t) => b.typedArrayFromHeap(t).byteOffset / heap.BYTES_PER_ELEMENT };
}

/**
 * Rows narrower than this are copied element by element: a `copyWithin` call costs about as much as 12 element copies
 * (~20 ns against ~1.7 ns, measured on the wasm heap in Node 20).
 */
const MIN_MEMMOVE_WIDTH = 12;

/** Rows of a tensor on the heap: the first one's offset and the distance between two, in elements. */
interface Rows {
  start: number;
  stride: number;
}

/**
 * Strided copies of at least this many elements go to segkit's native kernel where it is enabled (native.ts: a
 * memcpy per row on 2 threads). In `bench/profile-train.ts`'s unet step (batch 8 at 128x128; rows of 16 channels),
 * Concat's 3 calls went from 14.1 to 3.7-5.7 ms and SplitV's from 14.8 to 3.9 (2026-12-07, one profile each).
 */
const MIN_NATIVE_COPY = 65536;

/** Copies `count` rows of `width` elements from `from` to `to`. */
function copyRows(heap: Heap, from: Rows, to: Rows, count: number, width: number): void {
  const native = count * width >= MIN_NATIVE_COPY ? activeNativeKernels() : null;
  if (width === from.stride && width === to.stride) {
    heap.copyWithin(to.start, from.start, from.start + count * width);
  } else if (native) {
    const e = heap.BYTES_PER_ELEMENT;
    const bytes = new Uint8Array(heap.buffer);
    native.copyRows(bytes, from.start * e, from.stride * e, to.start * e, to.stride * e, count, width * e);
  } else if (width >= MIN_MEMMOVE_WIDTH) {
    for (let i = 0; i < count; i++) {
      const src = from.start + i * from.stride;
      heap.copyWithin(to.start + i * to.stride, src, src + width);
    }
  } else {
    for (let i = 0; i < count; i++) {
      const src = from.start + i * from.stride;
      const dst = to.start + i * to.stride;
      for (let j = 0; j < width; j++) heap[dst + j] = heap[src + j] as number;
    }
  }
}

/** `x` split along `axis` into pieces of `numOrSizeSplits`, each piece's rows copied straight from `x`'s. */
function splitV(args: KernelArgs): Info[] {
  const { x } = args.inputs as { x: Info };
  if (!copyable(x.dtype)) return stock.SplitV.kernelFunc(args) as Info[];
  const b = args.backend as BackendWasm;
  const { numOrSizeSplits, axis: axisAttr } = args.attrs as unknown as tf.SplitVAttrs;
  const axis = tf.util.parseAxisParam(axisAttr, x.shape)[0] as number;
  const sizes = tf.backend_util.prepareSplitSize(x, numOrSizeSplits, axis);
  const pieceShape = (size: number) => x.shape.map((d, i) => (i === axis ? size : d));
  const outs = sizes.map((size) => b.makeOutput(pieceShape(size), x.dtype));
  const rows = product(x.shape.slice(0, axis));
  const inner = product(x.shape.slice(axis + 1));
  const { heap, offset } = wasmHeap(b, x, x.dtype);
  const from = { start: offset(x), stride: (x.shape[axis] as number) * inner };
  outs.forEach((out, k) => {
    const width = (sizes[k] as number) * inner;
    copyRows(heap, from, { start: offset(out), stride: width }, rows, width);
    from.start += width;
  });
  return outs;
}

/** The inputs joined along `axis`, each input's rows copied straight into the output's. */
function concat(args: KernelArgs): Info {
  const inputs = args.inputs as unknown as Info[];
  const first = inputs[0];
  if (!first || !copyable(first.dtype) || inputs.some((t) => t.dtype !== first.dtype)) {
    return stock.Concat.kernelFunc(args) as Info;
  }
  const b = args.backend as BackendWasm;
  const axis = tf.util.parseAxisParam((args.attrs as unknown as tf.ConcatAttrs).axis, first.shape)[0] as number;
  const shapes = inputs.map((t) => t.shape);
  tf.backend_util.assertParamsConsistent(shapes, axis);
  const out = b.makeOutput(tf.backend_util.computeOutShape(shapes, axis), first.dtype);
  const rows = product(first.shape.slice(0, axis));
  const inner = product(first.shape.slice(axis + 1));
  const { heap, offset } = wasmHeap(b, out, first.dtype);
  const to = { start: offset(out), stride: (out.shape[axis] as number) * inner };
  for (const t of inputs) {
    const width = (t.shape[axis] as number) * inner;
    copyRows(heap, { start: offset(t), stride: width }, to, rows, width);
    to.start += width;
  }
  return out;
}

/** `x` itself: its buffer with one more reference (freed when the last tensor on it is disposed). */
function identity(args: KernelArgs): Info {
  const { x } = args.inputs as { x: Info };
  if (!copyable(x.dtype)) return stock.Identity.kernelFunc(args) as Info;
  (args.backend as BackendWasm).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

/** A cast to `x`'s own dtype is `x` itself (shared as in `identity`); any other goes to the stock kernel. */
function cast(args: KernelArgs): Info {
  const { x } = args.inputs as { x: Info };
  const { dtype } = args.attrs as unknown as tf.CastAttrs;
  return dtype === x.dtype && copyable(dtype) ? identity(args) : (stock.Cast.kernelFunc(args) as Info);
}

/** A 1x1 depthwise convolution with bias: x * filter + bias per channel, one multithreaded XNNPACK pass. */
const perChannelAffine = {
  strides: 1,
  pad: "valid",
  dataFormat: "NHWC",
  dilations: 1,
  dimRoundingMode: undefined,
  activation: "linear",
} as unknown as tf.NamedAttrMap;

/**
 * Batch norm of float32 x [N,H,W,C] (the rank tfjs-core's `batchNorm` passes) whose parameters have C values each
 * (any shape; the layers' case): (x - mean) * f + offset with f = scale / sqrt(variance + eps) computed per channel
 * here, in float64. Both steps are 1x1 depthwise convolutions with bias (`perChannelAffine`): x * 1 + (-mean), which
 * is x - mean exactly (skipped when the mean is all +0: models/batch-norm.ts's gradient runs b * x + c as a batch norm
 * of mean 0), then * f + offset, bit for bit XNNPACK's Multiply then Add. ~0.7 ms for [8,128,128,16] on 2 threads
 * instead of ~7.3 ms for the stock kernel, a scalar C++ loop that divides every element by sqrt(variance + eps);
 * the same formula up to float32 rounding (f is rounded once instead of dividing each product). The filters and
 * biases are fresh tensors, freed here with the XNNPACK operators cached for them. Other cases go to the stock kernel.
 */
function fusedBatchNorm(args: KernelArgs): Info {
  type Inputs = { x: Info; mean: Info; variance: Info; offset?: Info; scale?: Info };
  const { x, mean, variance, offset, scale } = args.inputs as Inputs;
  const c = x.shape[3] ?? 0;
  const params = [mean, variance, offset, scale].filter((t) => t !== undefined);
  const perChannel = params.every((t) => t.dtype === "float32" && product(t.shape) === c);
  if (x.dtype !== "float32" || x.shape.length !== 4 || product(x.shape) === 0 || !perChannel) {
    return stock.FusedBatchNorm.kernelFunc(args) as Info;
  }
  const { varianceEpsilon } = args.attrs as unknown as tf.FusedBatchNormAttrs;
  const b = args.backend as BackendWasm;
  const ones = b.makeOutput([1, 1, c, 1], "float32");
  const minusMean = b.makeOutput([c], "float32");
  const factor = b.makeOutput([1, 1, c, 1], "float32");
  const shift = b.makeOutput([c], "float32");
  try {
    // views after the last makeOutput: an allocation may grow (and move) the wasm heap
    const m = b.typedArrayFromHeap(mean);
    const v = b.typedArrayFromHeap(variance);
    const s = scale ? b.typedArrayFromHeap(scale) : undefined;
    b.typedArrayFromHeap(ones).fill(1);
    b.typedArrayFromHeap(minusMean).set(m.map((value) => -value));
    b.typedArrayFromHeap(factor).set(
      v.map((value, i) => (s ? (s[i] as number) : 1) / Math.sqrt(value + varianceEpsilon)),
    );
    if (offset) b.typedArrayFromHeap(shift).set(b.typedArrayFromHeap(offset));
    else b.typedArrayFromHeap(shift).fill(0);
    const zeroMean = m.every((value) => Object.is(value, 0));
    return scoped(b, (ops) => {
      const centred = zeroMean
        ? x
        : ops.run(tf.FusedDepthwiseConv2D, { x, filter: ones, bias: minusMean }, perChannelAffine);
      return ops.run(tf.FusedDepthwiseConv2D, { x: centred, filter: factor, bias: shift }, perChannelAffine);
    });
  } finally {
    for (const t of [ones, minusMean, factor, shift]) b.disposeData(t.dataId);
  }
}

function replacement(name: keyof typeof stock, kernelFunc: (args: KernelArgs) => Info | Info[]): tf.KernelConfig {
  // the stock kernel's setup (e.g. its cwrap) still has to run when the backend starts: it serves the other cases
  return { kernelName: name, backendName: "wasm", setupFunc: stock[name].setupFunc, kernelFunc };
}

/** segkit's wasm `SplitV`, `Concat`, `Identity`, `Cast` and `FusedBatchNorm` (registered by `registerWasmKernels`). */
export const layoutKernels: tf.KernelConfig[] = [
  replacement("SplitV", splitV),
  replacement("Concat", concat),
  replacement("Identity", identity),
  replacement("Cast", cast),
  replacement("FusedBatchNorm", fusedBatchNorm),
];
