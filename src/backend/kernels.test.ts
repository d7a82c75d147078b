// segkit's wasm gradient kernels against the cpu backend's, on random inputs (relative error < 1e-4); the
// convolutions both on wasm's kernels and on onnxruntime's (the two engines `onnx-conv.ts` dispatches between).
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { relativeError } from "../core/compare.js";
import { createRng } from "../core/random.js";
import { initBackend } from "./init.js";
import { configureNativeKernels } from "./native.js";
import { configureOnnxConv, nchwcBlockSize, type OnnxConvMode, onnxConvChoices, resetOnnxConv } from "./onnx-conv.js";

type Shape4 = [number, number, number, number];
type Pad = "same" | "valid";

const rng = createRng(7);
const random = (shape: number[]): Float32Array =>
  Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-1, 1));

/** Runs one kernel on `backend` from plain arrays and returns its values (and frees what it made). */
async function runOn(
  backend: "cpu" | "wasm",
  kernel: string,
  inputs: Record<string, { values: Float32Array; shape: number[] }>,
  attrs: object,
): Promise<Float32Array> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const tensors = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.values, v.shape)]));
  const out = tf.engine().runKernel(kernel, tensors, attrs as tf.NamedAttrMap) as tf.Tensor;
  const values = (await out.data()) as Float32Array;
  tf.dispose([out, ...Object.values(tensors)]);
  assert.equal(tf.memory().numTensors, before, `${kernel} on ${backend} leaks tensors`);
  return values;
}

async function checkKernel(
  kernel: string,
  inputs: Record<string, { values: Float32Array; shape: number[] }>,
  attrs: object,
): Promise<void> {
  const wasmBackend = tf.engine().registry.wasm as tf.KernelBackend;
  const dataIds = wasmBackend.numDataIds();
  const expected = await runOn("cpu", kernel, inputs, attrs);
  const actual = await runOn("wasm", kernel, inputs, attrs);
  assert.equal(wasmBackend.numDataIds(), dataIds, `${kernel} leaks wasm buffers`);
  const err = relativeError(actual, expected);
  assert.ok(err < 1e-4, `${kernel} ${JSON.stringify(attrs)}: relative error ${err}`);
}

const convCases: { x: Shape4; k: [number, number]; co: number; strides: number | [number, number]; pad: Pad }[] = [
  { x: [2, 7, 9, 3], k: [3, 3], co: 4, strides: 1, pad: "same" },
  { x: [2, 7, 9, 3], k: [3, 3], co: 4, strides: 1, pad: "valid" },
  { x: [2, 7, 9, 3], k: [3, 3], co: 4, strides: 2, pad: "same" },
  { x: [2, 7, 9, 3], k: [3, 3], co: 4, strides: 2, pad: "valid" },
  { x: [3, 8, 8, 5], k: [2, 2], co: 2, strides: 2, pad: "valid" },
  { x: [2, 8, 6, 4], k: [2, 2], co: 3, strides: 2, pad: "same" },
  { x: [2, 7, 7, 3], k: [1, 1], co: 5, strides: 2, pad: "same" },
  { x: [1, 11, 10, 2], k: [5, 3], co: 3, strides: [2, 1], pad: "same" },
  { x: [2, 6, 5, 6], k: [1, 1], co: 4, strides: 1, pad: "valid" },
  // a stride leaves input rows unread: the filter gradient's convolution yields extra taps to crop
  { x: [2, 8, 8, 3], k: [3, 3], co: 2, strides: 2, pad: "valid" },
  { x: [2, 8, 8, 3], k: [1, 1], co: 2, strides: 2, pad: "same" },
  // output channels in whole vectors of 32 and 16 (native filter gradient's register tiles), and 32 + 3 left over
  { x: [2, 6, 7, 6], k: [3, 3], co: 48, strides: 1, pad: "same" },
  { x: [2, 9, 8, 5], k: [3, 3], co: 35, strides: 2, pad: "same" },
  // 64 output channels (the native forward's 6 pixels x 64 tiles; 35 pixels: 5 left over), and 64 input channels
  // (its input gradient's); an even kernel at stride 1, "same" (padding unequal on the two sides)
  { x: [1, 5, 7, 4], k: [3, 3], co: 64, strides: 1, pad: "same" },
  { x: [2, 7, 6, 4], k: [4, 3], co: 17, strides: 1, pad: "same" },
  { x: [1, 6, 5, 64], k: [3, 3], co: 8, strides: 1, pad: "valid" },
];

before(async () => {
  await initBackend({ backend: "wasm" });
});

const dyShapeOf = (x: Shape4, filterShape: Shape4, strides: number | [number, number], pad: Pad): number[] => {
  const y = tf.tidy(() => tf.conv2d(tf.zeros(x) as tf.Tensor4D, tf.zeros(filterShape) as tf.Tensor4D, strides, pad));
  y.dispose();
  return y.shape;
};

// MLAS's NCHWc kernels take channel counts that fill whole blocks (16 channels with AVX-512, 8 with AVX2): cases
// with 2 and 1 blocks, strides 1 and 2, and a batch of a whole block (the filter gradient's blocked-batch path)
const b = nchwcBlockSize();
const nchwcCases: typeof convCases = [
  { x: [2, 7, 9, 2 * b], k: [3, 3], co: b, strides: 1, pad: "same" },
  { x: [2, 7, 9, b], k: [3, 3], co: 2 * b, strides: 1, pad: "valid" },
  { x: [2, 8, 8, b], k: [2, 2], co: b, strides: 2, pad: "valid" },
  { x: [1, 7, 9, b], k: [3, 3], co: b, strides: 2, pad: "same" },
  { x: [2, 8, 6, 3], k: [3, 3], co: b, strides: 1, pad: "same" }, // the filter gradient only (3 input channels)
  { x: [b, 5, 6, b], k: [3, 3], co: b, strides: 1, pad: "same" },
];

// onnxruntime's first graph of each kind (Conv, ConvTranspose, the filter gradient as a Conv), then the filter
// gradient tap by tap ("taps"; the other kinds have no second graph), then the NCHWc graphs where a signature has one
const engines: [OnnxConvMode, string | undefined, string, typeof convCases][] = [
  ["off", undefined, "wasm kernels (the filter gradient: segkit's native kernel where it loads)", convCases],
  ["off", "no native", "wasm kernels only", convCases],
  ["onnx", undefined, "onnxruntime", convCases],
  ["onnx", "taps", "onnxruntime, filter gradient by taps", convCases],
];
if (b > 0) engines.push(["onnx", "nchwc", "onnxruntime's NCHWc kernels", nchwcCases]);

/** Which signatures (onnx-conv.ts keys) have an NCHWc graph: channels (and for the filter gradient, the batch) in whole blocks. */
function hasNchwcGraph(key: string): boolean {
  const [kind, inShape, filter, stride] = key.split(" ") as [string, string, string, string];
  const [n, , , ci] = inShape.split(",").map(Number) as Shape4;
  const co = Number(filter.split("x")[3]);
  const whole = (c: number) => c % b === 0;
  if (kind === "dw") return whole(co) && (n < b || whole(n));
  return whole(ci) && whole(co) && (kind === "conv" || stride === "s1,1");
}
for (const [mode, graph, engine, cases] of engines) {
  describe(`convolutions on wasm, run by ${engine}`, () => {
    before(() => {
      const native = graph !== "no native";
      configureNativeKernels({ enabled: native, threads: 2 });
      configureOnnxConv({ mode, ...(graph && native ? { graph } : {}) });
    });
    after(() => {
      configureOnnxConv({ mode: "auto" });
      configureNativeKernels({ enabled: true, threads: 2 });
    });
    afterEach(() => {
      // each call ran where this block says: with onnx, every signature has its session
      const choices = [...onnxConvChoices()];
      assert.equal(choices.length > 0, mode === "onnx", "no signature went to onnxruntime");
      for (const [key, c] of choices) {
        assert.ok(c.session, key);
        if (graph === "taps" && key.startsWith("dw")) assert.equal(c.engine, graph, key);
        if (graph === "nchwc") assert.equal(c.engine === "nchwc", hasNchwcGraph(key), key);
      }
      resetOnnxConv();
    });

    for (const { x, k, co, strides, pad } of cases) {
      const filterShape: Shape4 = [k[0], k[1], x[3], co];
      const name = `x ${x} filter ${k} -> ${co}, stride ${strides}, ${pad}`;
      it(`Conv2DBackpropFilter: ${name}`, async () => {
        const dyShape = dyShapeOf(x, filterShape, strides, pad);
        const inputs = { x: { values: random(x), shape: x }, dy: { values: random(dyShape), shape: dyShape } };
        await checkKernel(tf.Conv2DBackpropFilter, inputs, { strides, pad, dataFormat: "NHWC", filterShape });
      });
      it(`Conv2DBackpropInput: ${name}`, async () => {
        const dyShape = dyShapeOf(x, filterShape, strides, pad);
        const inputs = {
          dy: { values: random(dyShape), shape: dyShape },
          filter: { values: random(filterShape), shape: filterShape },
        };
        await checkKernel(tf.Conv2DBackpropInput, inputs, { strides, pad, dataFormat: "NHWC", inputShape: x });
      });
      it(`Conv2D and FusedConv2D (bias, relu): ${name}`, async () => {
        const attrs = { strides, pad, dataFormat: "NHWC", dilations: 1 };
        const xf = { x: { values: random(x), shape: x }, filter: { values: random(filterShape), shape: filterShape } };
        await checkKernel(tf.Conv2D, xf, attrs);
        const bias = { values: random([co]), shape: [co] };
        await checkKernel(tf.FusedConv2D, { ...xf, bias }, { ...attrs, activation: "relu" });
        await checkKernel(tf.FusedConv2D, xf, { ...attrs, activation: "linear" });
      });
    }
  });
}

const depthwiseCases: { x: Shape4; k: number; m: number; strides: number; pad: Pad }[] = [
  { x: [2, 7, 9, 3], k: 3, m: 1, strides: 1, pad: "same" },
  { x: [2, 7, 9, 3], k: 3, m: 1, strides: 2, pad: "same" },
  { x: [2, 8, 8, 4], k: 3, m: 1, strides: 2, pad: "valid" },
  { x: [2, 7, 6, 2], k: 3, m: 2, strides: 1, pad: "valid" },
  { x: [1, 9, 8, 3], k: 5, m: 3, strides: 2, pad: "same" },
];

describe("DepthwiseConv2dNative gradients on wasm", () => {
  for (const { x, k, m, strides, pad } of depthwiseCases) {
    const filterShape: Shape4 = [k, k, x[3], m];
    const dyShapeOf = (): number[] => {
      const y = tf.tidy(() =>
        tf.depthwiseConv2d(tf.zeros(x) as tf.Tensor4D, tf.zeros(filterShape) as tf.Tensor4D, strides, pad),
      );
      y.dispose();
      return y.shape;
    };
    it(`filter: x ${x} k ${k} multiplier ${m}, stride ${strides}, ${pad}`, async () => {
      const dyShape = dyShapeOf();
      const inputs = { x: { values: random(x), shape: x }, dy: { values: random(dyShape), shape: dyShape } };
      await checkKernel(tf.DepthwiseConv2dNativeBackpropFilter, inputs, { strides, pad, dilations: 1, filterShape });
    });
    it(`input: x ${x} k ${k} multiplier ${m}, stride ${strides}, ${pad}`, async () => {
      const dyShape = dyShapeOf();
      const inputs = {
        dy: { values: random(dyShape), shape: dyShape },
        filter: { values: random(filterShape), shape: filterShape },
      };
      await checkKernel(tf.DepthwiseConv2dNativeBackpropInput, inputs, { strides, pad, dilations: 1, inputShape: x });
    });
  }
});

const poolCases: { x: Shape4; size: number; strides: number; pad: Pad; values: "signed" | "relu" | "negative" }[] = [
  { x: [2, 8, 8, 3], size: 2, strides: 2, pad: "valid", values: "signed" },
  { x: [2, 9, 7, 3], size: 2, strides: 2, pad: "same", values: "signed" },
  { x: [2, 9, 7, 3], size: 2, strides: 2, pad: "valid", values: "relu" }, // the last row and column in no window
  { x: [2, 9, 7, 4], size: 3, strides: 2, pad: "same", values: "signed" },
  { x: [1, 7, 7, 2], size: 3, strides: 1, pad: "same", values: "signed" },
  { x: [2, 8, 8, 3], size: 2, strides: 2, pad: "valid", values: "relu" },
  { x: [2, 8, 8, 3], size: 2, strides: 2, pad: "valid", values: "negative" },
];

for (const native of [true, false]) {
  describe(`MaxPoolGrad on wasm${native ? " (segkit's native kernel where it loads)" : ", JS kernel"}`, () => {
    before(() => configureNativeKernels({ enabled: native, threads: 2 }));
    after(() => configureNativeKernels({ enabled: true, threads: 2 }));
    for (const { x, size, strides, pad, values } of poolCases) {
      it(`x ${x} pool ${size} stride ${strides} ${pad}, ${values} values`, async () => {
        const xv = random(x).map((v) =>
          values === "relu" ? Math.max(0, v) : values === "negative" ? -Math.abs(v) : v,
        );
        const y = tf.tidy(() => tf.maxPool(tf.tensor4d(xv, x), size, strides, pad));
        const yv = (await y.data()) as Float32Array;
        y.dispose();
        const inputs = {
          dy: { values: random(y.shape), shape: y.shape },
          input: { values: xv, shape: x },
          output: { values: yv, shape: y.shape },
        };
        await checkKernel(tf.MaxPoolGrad, inputs, { filterSize: size, strides, pad });
      });
    }
  });
}
