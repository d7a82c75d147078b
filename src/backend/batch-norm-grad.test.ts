// segkit's batch-norm gradient (and the Mean/Sum gradients and wasm Sum/Mean kernels behind it) against tfjs's
// stock ones on the cpu backend: random inputs through the whole training-mode subgraph (tf.moments + batchNorm),
// and an Adam training step of a small model with batch norm. Relative error < 1e-4; no tensor or buffer leaks.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { relativeError } from "../core/compare.js";
import { createRng } from "../core/random.js";
import { initBackend } from "./init.js";
import { useStockGradients } from "./reduce-grads.js";

type Backend = "cpu" | "wasm";
const rng = createRng(5);
const random = (shape: number[], lo = -1, hi = 1): Float32Array =>
  Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(lo, hi));

/** Runs `f` on `backend` with segkit's or the stock gradients; checks it frees every tensor and buffer it made. */
async function on<T>(backend: Backend, stock: boolean, f: () => Promise<T>): Promise<T> {
  await tf.setBackend(backend);
  useStockGradients(stock);
  const tensors = tf.memory().numTensors;
  const buffers = tf.backend().numDataIds();
  let result: T;
  try {
    result = await f();
  } finally {
    useStockGradients(false);
  }
  assert.equal(tf.memory().numTensors, tensors, `leaks tensors on ${backend}`);
  assert.equal(tf.backend().numDataIds(), buffers, `leaks ${backend} buffers`);
  return result;
}

interface BnCase {
  x: number[];
  scale: boolean;
  offset: boolean;
  xGrad: boolean;
}

/** Gradients of sum(batchNorm(x, moments(x)) * w) w.r.t. x (if asked), scale and offset, as arrays. */
async function bnGrads(c: BnCase, values: Record<string, Float32Array>): Promise<Float32Array[]> {
  const ch = c.x[c.x.length - 1] as number;
  const x = tf.tensor(values.x as Float32Array, c.x);
  const w = tf.tensor(values.w as Float32Array, c.x);
  const scale = tf.tensor1d(values.scale as Float32Array);
  const offset = tf.tensor1d(values.offset as Float32Array);
  const axes = c.x.slice(0, -1).map((_, i) => i);
  // the gradient's inputs: x (if asked) and the scale/offset the layer uses (tf.grads rejects unused ones)
  const inputs = [...(c.xGrad ? [x] : []), ...(c.scale ? [scale] : []), ...(c.offset ? [offset] : [])];
  const f = (...args: tf.Tensor[]) => {
    const pick = (t: tf.Tensor) => args[inputs.indexOf(t)] ?? t;
    const xx = pick(x);
    const { mean, variance } = tf.moments(xx, axes);
    const y = tf.batchNorm(
      xx,
      mean,
      variance,
      c.offset ? pick(offset) : undefined,
      c.scale ? pick(scale) : undefined,
      1e-3,
    );
    return tf.sum(tf.mul(y, w));
  };
  const grads = tf.grads(f)(inputs);
  const out = await Promise.all(grads.map(async (g) => (await g.data()) as Float32Array));
  tf.dispose([x, w, scale, offset, ...grads]);
  assert.equal(ch, values.scale?.length);
  return out;
}

before(async () => {
  await initBackend({ backend: "wasm" });
});

describe("batch-norm gradient through tf.moments matches tfjs's stock gradient", () => {
  const cases: BnCase[] = [
    { x: [2, 5, 7, 3], scale: true, offset: true, xGrad: true },
    { x: [4, 3, 3, 16], scale: true, offset: true, xGrad: true },
    { x: [3, 6, 4], scale: true, offset: true, xGrad: true },
    { x: [9, 5], scale: true, offset: true, xGrad: true },
    // without scale or offset tfjs 4.22 cannot record batchNorm for gradients at all (it saves the missing input)
    { x: [2, 4, 4, 6], scale: true, offset: true, xGrad: false },
  ];
  for (const c of cases) {
    it(`x ${c.x}, scale ${c.scale}, offset ${c.offset}, dx ${c.xGrad}`, async () => {
      const ch = c.x[c.x.length - 1] as number;
      const values = {
        x: random(c.x, -2, 3),
        w: random(c.x),
        scale: random([ch], 0.5, 1.5),
        offset: random([ch]),
      };
      const expected = await on("cpu", true, () => bnGrads(c, values));
      for (const backend of ["cpu", "wasm"] as const) {
        const actual = await on(backend, false, () => bnGrads(c, values));
        expected.forEach((e, i) => {
          const err = relativeError(actual[i] as Float32Array, e);
          assert.ok(err < 1e-4, `${backend} gradient ${i}: relative error ${err}`);
        });
      }
    });
  }
});

describe("wasm Sum/Mean over leading axes and their gradients match cpu", () => {
  const cases: { shape: number[]; axis: number | number[]; keepDims: boolean }[] = [
    { shape: [2, 5, 7, 3], axis: [0, 1, 2], keepDims: false },
    { shape: [2, 5, 7, 3], axis: [2, 0, 1], keepDims: true },
    { shape: [6, 4], axis: 0, keepDims: false },
    { shape: [6, 4], axis: -2, keepDims: true },
    { shape: [3, 4, 5], axis: [0, 1], keepDims: false },
    // not the leading-axes case: the stock kernels
    { shape: [3, 4, 5], axis: [1, 2], keepDims: false },
    { shape: [3, 4, 5], axis: [0, 2], keepDims: true },
    { shape: [3, 4, 5], axis: [0, 1, 2], keepDims: false },
  ];
  for (const { shape, axis, keepDims } of cases) {
    for (const op of ["sum", "mean"] as const) {
      it(`${op} of ${shape} over ${axis}${keepDims ? ", keepDims" : ""}`, async () => {
        const xv = random(shape);
        const reduce = op === "sum" ? tf.sum : tf.mean;
        const run = async (): Promise<Float32Array[]> => {
          const x = tf.tensor(xv, shape);
          const y = reduce(x, axis, keepDims);
          const w = tf.randomUniform(y.shape, -1, 1, "float32", 3);
          const [dx] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(reduce(t, axis, keepDims), w)))([x]);
          const out = [(await y.data()) as Float32Array, (await (dx as tf.Tensor).data()) as Float32Array];
          tf.dispose([x, y, w, dx as tf.Tensor]);
          return out;
        };
        const expected = await on("cpu", true, run);
        const actual = await on("wasm", false, run);
        expected.forEach((e, i) => {
          const err = relativeError(actual[i] as Float32Array, e);
          assert.ok(err < 1e-4, `${i ? "gradient" : "value"}: relative error ${err}`);
        });
      });
    }
  }
  it("integer sums stay on the stock kernel", async () => {
    const v = await on("wasm", false, async () => {
      const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], "int32");
      const s = tf.sum(x, 0);
      const out = [s.dtype, Array.from(await s.data())] as const;
      tf.dispose([x, s]);
      return out;
    });
    assert.deepEqual(v, ["int32", [9, 12]]);
  });
});

describe("an Adam step of a small conv + batch-norm model matches the stock cpu step", () => {
  const build = (): tf.LayersModel => {
    const input = tf.input({ shape: [8, 8, 3] });
    let x = tf.layers
      .conv2d({
        filters: 6,
        kernelSize: 3,
        padding: "same",
        useBias: false, // a bias before batch norm has a zero gradient up to rounding: nothing to compare
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      })
      .apply(input) as tf.SymbolicTensor;
    x = tf.layers.batchNormalization().apply(x) as tf.SymbolicTensor;
    x = tf.layers.reLU().apply(x) as tf.SymbolicTensor;
    x = tf.layers
      .conv2d({
        filters: 4,
        kernelSize: 3,
        padding: "same",
        useBias: false, // a bias before batch norm has a zero gradient up to rounding: nothing to compare
        kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
      })
      .apply(x) as tf.SymbolicTensor;
    x = tf.layers.batchNormalization({ momentum: 0.9 }).apply(x) as tf.SymbolicTensor;
    const logits = tf.layers
      .conv2d({ filters: 3, kernelSize: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) })
      .apply(x) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: logits });
  };
  const xv = random([3, 8, 8, 3], 0, 1);
  const labels = Int32Array.from({ length: 3 * 8 * 8 }, () => rng.int(0, 3));
  const step = async () => {
    const model = build();
    const x = tf.tensor4d(xv, [3, 8, 8, 3]);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, "int32"), 3));
    const optimizer = tf.train.adam(0.01);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => {
      const logits = model.apply(x, { training: true }) as tf.Tensor;
      return tf.losses.softmaxCrossEntropy(y, tf.reshape(logits, [-1, 3]));
    }, vars);
    optimizer.applyGradients(grads as unknown as Parameters<typeof optimizer.applyGradients>[0]);
    const out = {
      loss: (await value.data())[0] as number,
      grads: await Promise.all(vars.map(async (v) => (await (grads[v.name] as tf.Tensor).data()) as Float32Array)),
      weights: await Promise.all(model.getWeights().map(async (w) => (await w.data()) as Float32Array)),
    };
    tf.dispose([value, x, y, ...Object.values(grads)]);
    optimizer.dispose();
    model.dispose();
    return out;
  };
  it("loss, gradients and updated weights (incl. moving statistics) on cpu and wasm", async () => {
    const expected = await on("cpu", true, step);
    for (const backend of ["cpu", "wasm"] as const) {
      const actual = await on(backend, false, step);
      assert.ok(Math.abs(actual.loss - expected.loss) < 1e-5 * Math.abs(expected.loss), `${backend} loss`);
      expected.grads.forEach((g, i) => {
        const err = relativeError(actual.grads[i] as Float32Array, g);
        assert.ok(err < 1e-4, `${backend} gradient ${i}: relative error ${err}`);
      });
      expected.weights.forEach((w, i) => {
        const err = relativeError(actual.weights[i] as Float32Array, w);
        assert.ok(err < 1e-4, `${backend} updated weight ${i}: relative error ${err}`);
      });
    }
  });
});
