/**
 * Composition of wasm kernels inside a kernel: segkit's gradient kernels call the wasm backend's own kernels on
 * `TensorInfo`s (no tensors, no tape) and free every intermediate before returning the one output.
 * Ownership: each wasm kernel returns a TensorInfo whose dataId has one reference (a reshape shares its input's
 * data and adds a reference), so freeing every intermediate once leaves exactly the output's reference.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

export type Info = tf.TensorInfo;
type Pads = [number, number][];

export class WasmOps {
  private readonly made: Info[] = [];

  constructor(readonly backend: BackendWasm) {}

  /** Runs the wasm kernel `name`; its output is freed by `scoped` unless it is the result. */
  run(name: string, inputs: tf.NamedTensorInfoMap | Info[], attrs: tf.NamedAttrMap = {}): Info {
    const kernel = tf.getKernel(name, "wasm");
    if (!kernel) throw new Error(`segkit: the wasm backend has no ${name} kernel`);
    const out = kernel.kernelFunc({ inputs: inputs as tf.NamedTensorInfoMap, attrs, backend: this.backend });
    const info = Array.isArray(out) ? out[0] : out;
    if (!info) throw new Error(`segkit: wasm kernel ${name} returned nothing`);
    this.made.push(info);
    return info;
  }

  /** A float32 tensor made here (zero-filled), freed like any intermediate. */
  filled(shape: number[], value: number): Info {
    const out = this.backend.makeOutput(shape, "float32");
    this.backend.typedArrayFromHeap(out).fill(value);
    this.made.push(out);
    return out;
  }

  freeAllBut(keep: Info | undefined): void {
    for (const t of this.made) if (t !== keep) this.backend.disposeData(t.dataId);
    this.made.length = 0;
  }

  reshape(x: Info, shape: number[]): Info {
    return this.run("Reshape", { x }, { shape });
  }
  transpose(x: Info, perm: number[]): Info {
    return this.run("Transpose", { x }, { perm });
  }
  pad(x: Info, paddings: Pads): Info {
    return paddings.every(([a, b]) => a === 0 && b === 0)
      ? x
      : this.run("PadV2", { x }, { paddings, constantValue: 0 });
  }
  slice(x: Info, begin: number[], size: number[]): Info {
    return this.run("Slice", { x }, { begin, size });
  }
  stridedSlice(x: Info, begin: number[], end: number[], strides: number[]): Info {
    const masks = { beginMask: 0, endMask: 0, ellipsisMask: 0, newAxisMask: 0, shrinkAxisMask: 0 };
    return this.run("StridedSlice", { x }, { begin, end, strides, ...masks });
  }
  concat(xs: Info[], axis: number): Info {
    return this.run("Concat", xs, { axis });
  }
  reverse(x: Info, dims: number[]): Info {
    return this.run("Reverse", { x }, { dims });
  }
  mul(a: Info, b: Info): Info {
    return this.run("Multiply", { a, b });
  }
  sum(x: Info, axis: number[]): Info {
    return this.run("Sum", { x }, { axis, keepDims: false });
  }
  /** Plain 2-D product [M,K] x [K,N] -> [M,N]: the layout that reaches XNNPACK's fast GEMM. */
  matMul(a: Info, b: Info): Info {
    const [m, k] = a.shape as [number, number];
    const n = b.shape[1] as number;
    const out = this.run(
      "BatchMatMul",
      { a: this.reshape(a, [1, m, k]), b: this.reshape(b, [1, k, n]) },
      {
        transposeA: false,
        transposeB: false,
      },
    );
    return this.reshape(out, [m, n]);
  }
  /** NHWC convolution, stride 1, explicit padding [[top, bottom], [left, right]]. */
  conv2d(x: Info, filter: Info, pads: Pads, dilations: number | [number, number] = 1): Info {
    const pad = [[0, 0], ...pads, [0, 0]];
    const attrs = { strides: 1, pad, dataFormat: "NHWC", dilations, dimRoundingMode: undefined };
    return this.run("Conv2D", { x, filter }, attrs as unknown as tf.NamedAttrMap);
  }
  depthwiseConv2d(x: Info, filter: Info, pads: Pads): Info {
    const attrs = { strides: 1, pad: [[0, 0], ...pads, [0, 0]], dilations: 1, dimRoundingMode: undefined };
    return this.run("DepthwiseConv2dNative", { x, filter }, attrs as unknown as tf.NamedAttrMap);
  }
}

/** Runs `f` with a fresh `WasmOps` and frees every intermediate it made except the returned output. */
export function scoped(backend: BackendWasm, f: (ops: WasmOps) => Info): Info {
  const ops = new WasmOps(backend);
  let out: Info | undefined;
  try {
    out = f(ops);
    return out;
  } finally {
    ops.freeAllBut(out);
  }
}
