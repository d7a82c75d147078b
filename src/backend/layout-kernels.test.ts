// segkit's wasm layout kernels (layout-kernels.ts) against the cpu backend's on random inputs: SplitV, Concat,
// Identity and Cast are copies, so their values must be the same bits (-0, NaN and infinities included);
// FusedBatchNorm agrees to float32 rounding. Each case also checks that no tensor and no wasm buffer leaks.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { relativeError } from "../core/compare.js";
import { createRng } from "../core/random.js";
import { initBackend } from "./init.js";
import { layoutKernels } from "./layout-kernels.js";

type Values = Float32Array | Int32Array | Uint8Array;
interface Input {
  values: Values;
  shape: number[];
  dtype: tf.DataType;
}

const rng = createRng(11);
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Random values of `dtype`; float32 ones include -0, NaN and both infinities, which a copy must keep as they are. */
function random(shape: number[], dtype: tf.DataType = "float32"): Input {
  const n = size(shape);
  if (dtype === "int32") return { values: Int32Array.from({ length: n }, () => rng.int(-1000, 1000)), shape, dtype };
  if (dtype === "bool") return { values: Uint8Array.from({ length: n }, () => rng.int(0, 2)), shape, dtype };
  const special = [-0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
  const values = Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
  special.forEach((v, i) => {
    if (i < n) values[rng.int(0, n)] = v;
  });
  return { values, shape, dtype };
}

const wasmBackend = () => tf.engine().registry.wasm as tf.KernelBackend;

/** Runs one kernel on `backend` from plain arrays and returns its outputs' values (and frees what it made). */
async function runOn(
  backend: "cpu" | "wasm",
  kernel: string,
  inputs: Input[] | Record<string, Input>,
  attrs: object,
): Promise<Values[]> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const make = (v: Input) => tf.tensor(v.values, v.shape, v.dtype);
  const tensors = Array.isArray(inputs)
    ? inputs.map(make)
    : Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, make(v)]));
  const result = tf.engine().runKernel(kernel, tensors as unknown as tf.NamedTensorMap, attrs as tf.NamedAttrMap);
  const outs = Array.isArray(result) ? result : [result];
  const values = (await Promise.all(outs.map((t) => t.data()))) as Values[];
  tf.dispose([...outs, ...Object.values(tensors)]);
  assert.equal(tf.memory().numTensors, before, `${kernel} on ${backend} leaks tensors`);
  return values;
}

const bits = (v: Values) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

/** Runs `kernel` on cpu and on wasm; the outputs must be the same bits, and wasm must not keep a buffer. */
async function checkExact(kernel: string, inputs: Input[] | Record<string, Input>, attrs: object): Promise<void> {
  const dataIds = wasmBackend().numDataIds();
  const expected = await runOn("cpu", kernel, inputs, attrs);
  const actual = await runOn("wasm", kernel, inputs, attrs);
  assert.equal(wasmBackend().numDataIds(), dataIds, `${kernel} leaks wasm buffers`);
  assert.equal(actual.length, expected.length);
  actual.forEach((a, k) => {
    assert.equal(a.constructor, (expected[k] as Values).constructor);
    assert.deepEqual(bits(a), bits(expected[k] as Values), `${kernel} ${JSON.stringify(attrs)}: output ${k} differs`);
  });
}

before(async () => {
  await initBackend({ backend: "wasm" });
});

describe("wasm layout kernels", () => {
  it("are the ones registered on the wasm backend", () => {
    for (const config of layoutKernels) assert.equal(tf.getKernel(config.kernelName, "wasm"), config);
  });
});

const splitCases: { shape: number[]; sizes: number[] | number; axis: number; dtype?: tf.DataType }[] = [
  { shape: [6, 10], sizes: [3, 7], axis: 1 },
  { shape: [6, 10], sizes: [2, 4], axis: 0 },
  { shape: [6, 10], sizes: 2, axis: -1 },
  { shape: [4, 5, 30], sizes: [4, 12, 14], axis: 2 }, // rows narrower and wider than MIN_MEMMOVE_WIDTH
  { shape: [4, 5, 30], sizes: [1, 3, 1], axis: 1 },
  { shape: [2, 6, 7, 32], sizes: [16, 16], axis: 3 }, // the U-Net's concat gradient
  { shape: [2, 6, 7, 32], sizes: [1, 30, 1], axis: -1 },
  { shape: [2, 6, 7, 19], sizes: [16, -1], axis: 3 },
  { shape: [2, 6, 7, 5], sizes: [3, 4], axis: 2 },
  { shape: [2, 6, 7, 5], sizes: [1, 1], axis: 0 },
  { shape: [3, 4, 8], sizes: [0, 8], axis: 2 }, // an empty piece
  { shape: [2, 6, 7, 24], sizes: [8, 16], axis: 3, dtype: "int32" },
  { shape: [2, 6, 7, 24], sizes: [20, 4], axis: 3, dtype: "bool" },
  { shape: [2, 6, 7, 24], sizes: [3, 3], axis: 1, dtype: "bool" },
  // at least MIN_NATIVE_COPY elements: segkit's native row copies where they load
  { shape: [8, 64, 64, 32], sizes: [16, 16], axis: 3 },
  { shape: [4, 64, 64, 20], sizes: [7, 13], axis: -1, dtype: "bool" },
];

describe("SplitV on wasm", () => {
  for (const { shape, sizes, axis, dtype } of splitCases) {
    it(`${dtype ?? "float32"} ${shape} into ${sizes} along ${axis}`, async () => {
      await checkExact(tf.SplitV, { x: random(shape, dtype) }, { numOrSizeSplits: sizes, axis });
    });
  }
});

const concatCases: { shapes: number[][]; axis: number; dtype?: tf.DataType }[] = [
  {
    shapes: [
      [6, 3],
      [6, 7],
    ],
    axis: 1,
  },
  {
    shapes: [
      [2, 10],
      [4, 10],
    ],
    axis: 0,
  },
  {
    shapes: [
      [4, 5, 4],
      [4, 5, 12],
      [4, 5, 14],
    ],
    axis: 2,
  },
  {
    shapes: [
      [4, 1, 30],
      [4, 3, 30],
      [4, 1, 30],
    ],
    axis: -2,
  },
  {
    shapes: [
      [2, 6, 7, 16],
      [2, 6, 7, 16],
    ],
    axis: 3,
  }, // the U-Net's decoder concat
  {
    shapes: [
      [2, 6, 7, 1],
      [2, 6, 7, 30],
      [2, 6, 7, 1],
    ],
    axis: -1,
  },
  {
    shapes: [
      [2, 6, 3, 5],
      [2, 6, 4, 5],
    ],
    axis: 2,
  },
  {
    shapes: [
      [1, 6, 7, 5],
      [1, 6, 7, 5],
    ],
    axis: 0,
  },
  {
    shapes: [
      [3, 4, 0],
      [3, 4, 8],
    ],
    axis: 2,
  }, // an empty input
  {
    shapes: [
      [2, 6, 7, 8],
      [2, 6, 7, 16],
    ],
    axis: 3,
    dtype: "int32",
  },
  {
    shapes: [
      [2, 6, 7, 20],
      [2, 6, 7, 4],
    ],
    axis: 3,
    dtype: "bool",
  },
  {
    shapes: [
      [2, 3, 7, 24],
      [2, 3, 7, 24],
    ],
    axis: 1,
    dtype: "bool",
  },
  {
    shapes: [
      [4, 64, 64, 16],
      [4, 64, 64, 8],
    ],
    axis: 3,
    dtype: "int32",
  },
];

describe("Concat on wasm", () => {
  for (const { shapes, axis, dtype } of concatCases) {
    it(`${dtype ?? "float32"} ${shapes.map((s) => `[${s}]`).join(" + ")} along ${axis}`, async () => {
      await checkExact(
        tf.Concat,
        shapes.map((s) => random(s, dtype)),
        { axis },
      );
    });
  }
});

describe("Identity and Cast on wasm", () => {
  for (const dtype of ["float32", "int32", "bool"] as const) {
    it(`Identity of ${dtype} equals the cpu one`, async () => {
      await checkExact(tf.Identity, { x: random([2, 5, 6, 3], dtype) }, {});
    });
    it(`Cast of ${dtype} to ${dtype} equals the cpu one`, async () => {
      await checkExact(tf.Cast, { x: random([2, 5, 6, 3], dtype) }, { dtype });
    });
  }
  // other casts convert values (the stock kernel): compared as numbers, since the cpu backend may hand back its input's
  // array under the new dtype. (The stock wasm int32 -> bool cast keeps the low byte instead of testing != 0: not used.)
  const fractions: Input = {
    values: Float32Array.from({ length: 28 }, () => rng.uniform(-50, 50)),
    shape: [4, 7],
    dtype: "float32",
  };
  for (const [x, to] of [
    [random([4, 7], "int32"), "float32"],
    [random([4, 7], "bool"), "float32"],
    [random([4, 7], "bool"), "int32"],
    [fractions, "int32"],
  ] as const) {
    it(`Cast of ${x.dtype} to ${to} (the stock kernel) equals the cpu one`, async () => {
      const input = { x };
      const dataIds = wasmBackend().numDataIds();
      const [expected] = await runOn("cpu", tf.Cast, input, { dtype: to });
      const [actual] = await runOn("wasm", tf.Cast, input, { dtype: to });
      assert.equal(wasmBackend().numDataIds(), dataIds, "leaks wasm buffers");
      assert.deepEqual(Array.from(actual as Values), Array.from(expected as Values));
    });
  }

  it("tf.clone and a same-dtype cast share the buffer, which lives until its last tensor goes", async () => {
    await tf.setBackend("wasm");
    const dataIds = wasmBackend().numDataIds();
    const x = tf.tensor([1, -0, 3, Number.NaN], [2, 2]);
    const y = tf.clone(x);
    const z = tf.cast(x, "float32");
    assert.equal(wasmBackend().numDataIds(), dataIds + 1, "no copy");
    x.dispose();
    y.dispose();
    assert.deepEqual(bits((await z.data()) as Float32Array), bits(new Float32Array([1, -0, 3, Number.NaN])));
    z.dispose();
    assert.equal(wasmBackend().numDataIds(), dataIds, "freed with its last tensor");
  });

  it("gradients through concat, clone and cast equal the cpu ones", async () => {
    const a = random([2, 3, 4, 6]);
    const b = random([2, 3, 4, 10]);
    a.values = a.values.map((v) => (Number.isFinite(v) ? v : 0.5)) as Float32Array;
    b.values = b.values.map((v) => (Number.isFinite(v) ? v : 0.5)) as Float32Array;
    const grads = async (backend: "cpu" | "wasm") => {
      await tf.setBackend(backend);
      const [ta, tb] = [tf.tensor(a.values, a.shape), tf.tensor(b.values, b.shape)];
      const f = (p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.square(tf.cast(tf.clone(tf.concat([p, q], -1)), "float32")));
      const [ga, gb] = tf.grads(f)([ta, tb]) as [tf.Tensor, tf.Tensor];
      const values = [(await ga.data()) as Float32Array, (await gb.data()) as Float32Array];
      tf.dispose([ta, tb, ga, gb]);
      return values;
    };
    const dataIds = wasmBackend().numDataIds();
    const expected = await grads("cpu");
    const actual = await grads("wasm");
    assert.equal(wasmBackend().numDataIds(), dataIds, "leaks wasm buffers");
    actual.forEach((v, k) => {
      assert.deepEqual(bits(v), bits(expected[k] as Float32Array));
    });
  });
});

describe("FusedBatchNorm on wasm", () => {
  const uniform = (shape: number[], lo: number, hi: number): Input => ({
    values: Float32Array.from({ length: size(shape) }, () => rng.uniform(lo, hi)),
    shape,
    dtype: "float32",
  });
  const cases: {
    x: number[];
    param: number[];
    centre?: number;
    offset?: boolean;
    scale?: boolean;
    zeroMean?: boolean;
  }[] = [
    { x: [2, 5, 6, 8], param: [8] },
    { x: [2, 5, 6, 8], param: [8], offset: false },
    { x: [2, 5, 6, 8], param: [8], scale: false, offset: false },
    { x: [2, 5, 6, 8], param: [1, 1, 1, 8] },
    { x: [3, 4, 4, 1], param: [1] },
    { x: [2, 5, 6, 8], param: [8], centre: 300 }, // mean >> standard deviation
    { x: [2, 3, 4, 6], param: [2, 3, 4, 6] }, // parameters per element: the stock kernel
    { x: [6, 8], param: [8] }, // not 4-D: the stock kernel
    { x: [2, 5, 6, 8], param: [8], zeroMean: true }, // b * x + c as models/batch-norm.ts's gradient runs it
  ];
  for (const { x, param, centre = 0, offset = true, scale = true, zeroMean = false } of cases) {
    const options = `${offset ? "" : ", no offset"}${scale ? "" : ", no scale"}${zeroMean ? ", mean 0" : ""}`;
    it(`x ${x}, parameters ${param}${options}, centre ${centre}`, async () => {
      const inputs: Record<string, Input> = {
        x: uniform(x, centre - 3, centre + 3),
        mean: zeroMean ? uniform(param, 0, 0) : uniform(param, centre - 1, centre + 1),
        variance: uniform(param, 0.5, 3),
      };
      if (offset) inputs.offset = uniform(param, -1, 1);
      if (scale) inputs.scale = uniform(param, 0.5, 2);
      const dataIds = wasmBackend().numDataIds();
      const attrs = { varianceEpsilon: 1e-3 };
      const [expected] = await runOn("cpu", tf.FusedBatchNorm, inputs, attrs);
      const [actual] = await runOn("wasm", tf.FusedBatchNorm, inputs, attrs);
      assert.equal(wasmBackend().numDataIds(), dataIds, "leaks wasm buffers");
      const err = relativeError(actual as Float32Array, expected as Float32Array);
      assert.ok(err < 1e-5, `relative error ${err}`);
    });
  }
});
