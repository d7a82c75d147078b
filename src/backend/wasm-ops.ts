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
  run(name: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): Info {
    const kernel = tf.getKernel(name, "wasm");
    if (!kernel) throw new Error(`segkit: the wasm backend has no ${name} kernel`);
    const out = kernel.kernelFunc({ inputs, attrs, backend: this.backend });
    const info = Array.isArray(out) ? out[0] : out;
    if (!info) throw new Error(`segkit: wasm kernel ${name} returned nothing`);
    this.made.push(info);
    return info;
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
  /** Returns `x` itself when there is nothing to pad: never return its result as a kernel's output. */
  pad(x: Info, paddings: Pads): Info {
    return paddings.every(([a, b]) => a === 0 && b === 0)
      ? x
      : this.run("PadV2", { x }, { paddings, constantValue: 0 });
  }
  slice(x: Info, begin: number[], size: number[]): Info {
    return this.run("Slice", { x }, { begin, size });
  }
  reverse(x: Info, dims: number[]): Info {
    return this.run("Reverse", { x }, { dims });
  }
  sum(x: Info, axis: number[]): Info {
    return this.run("Sum", { x }, { axis, keepDims: false });
  }
  /** NHWC convolution, stride 1, explicit padding [[top, bottom], [left, right]], dilation as given. */
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
