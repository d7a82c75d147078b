// A full training step (forward, softmax cross-entropy, gradients, SGD update) of a small U-Net with batch norm,
// ReLU, max-pool, transposed conv and concat, and of a MobileNetV2-style block: wasm matches cpu, and frees what it
// makes. The models are built here with tf.layers (segkit's model builders are tested in src/models).
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { relativeError } from "../core/compare.js";
import { createRng } from "../core/random.js";
import { initBackend } from "./init.js";

const init = (seed: number) => tf.initializers.glorotUniform({ seed });

function convBnRelu(x: tf.SymbolicTensor, filters: number, seed: number): tf.SymbolicTensor {
  // no bias before batch norm: its gradient is zero up to rounding, which no relative error can compare
  const conv = tf.layers.conv2d({
    filters,
    kernelSize: 3,
    padding: "same",
    useBias: false,
    kernelInitializer: init(seed),
  });
  const y = tf.layers.batchNormalization().apply(conv.apply(x)) as tf.SymbolicTensor;
  return tf.layers.reLU().apply(y) as tf.SymbolicTensor;
}

/** [N,16,16,3] -> logits [N,16,16,3]: two levels, max-pool down, transposed conv up, concatenated skip. */
function smallUnet(): tf.LayersModel {
  const input = tf.input({ shape: [16, 16, 3] });
  const e1 = convBnRelu(input, 4, 1);
  const down = tf.layers.maxPooling2d({ poolSize: 2 }).apply(e1) as tf.SymbolicTensor;
  const e2 = convBnRelu(down, 8, 2);
  const up = tf.layers
    .conv2dTranspose({ filters: 4, kernelSize: 2, strides: 2, padding: "same", kernelInitializer: init(3) })
    .apply(e2) as tf.SymbolicTensor;
  const cat = tf.layers.concatenate().apply([up, e1]) as tf.SymbolicTensor;
  const d1 = convBnRelu(cat, 4, 4);
  const logits = tf.layers.conv2d({ filters: 3, kernelSize: 1, kernelInitializer: init(5) }).apply(d1);
  return tf.model({ inputs: input, outputs: logits as tf.SymbolicTensor });
}

/** An inverted-residual block as in MobileNetV2 (expand, depthwise stride 2, project), then a 1x1 head. */
function mobileBlock(): tf.LayersModel {
  const input = tf.input({ shape: [16, 16, 3] });
  const expand = tf.layers.conv2d({ filters: 8, kernelSize: 1, useBias: false, kernelInitializer: init(6) });
  let x = expand.apply(input) as tf.SymbolicTensor;
  x = tf.layers.reLU({ maxValue: 6 }).apply(tf.layers.batchNormalization().apply(x)) as tf.SymbolicTensor;
  const dw = tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: "same", depthwiseInitializer: init(7) });
  x = tf.layers.reLU({ maxValue: 6 }).apply(dw.apply(x)) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ filters: 4, kernelSize: 1, kernelInitializer: init(8) }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.upSampling2d({ size: [2, 2], interpolation: "bilinear" }).apply(x) as tf.SymbolicTensor;
  const logits = tf.layers.conv2d({ filters: 3, kernelSize: 1, kernelInitializer: init(9) }).apply(x);
  return tf.model({ inputs: input, outputs: logits as tf.SymbolicTensor });
}

interface StepResult {
  loss: number;
  grads: Float32Array[];
  weights: Float32Array[];
}

/** One SGD step on `backend` of a freshly built (seeded, so identical) model. */
async function trainStep(backend: "cpu" | "wasm", build: () => tf.LayersModel): Promise<StepResult> {
  await tf.setBackend(backend);
  const buffers = tf.backend().numDataIds();
  const model = build();
  const rng = createRng(11);
  const n = 2;
  const x = tf.tensor4d(
    Float32Array.from({ length: n * 16 * 16 * 3 }, () => rng.next()),
    [n, 16, 16, 3],
  );
  const labels = tf.tensor1d(
    Int32Array.from({ length: n * 16 * 16 }, () => rng.int(0, 3)),
    "int32",
  );
  const before = tf.memory().numTensors;
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => {
    const logits = model.apply(x, { training: true }) as tf.Tensor;
    return tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 3), logits.reshape([-1, 3]));
  }, vars);
  const ordered = vars.map((v) => grads[v.name] as tf.Tensor);
  const optimizer = tf.train.sgd(0.1);
  optimizer.applyGradients(grads);
  optimizer.dispose();
  const result = {
    loss: (await value.data())[0] as number,
    grads: await Promise.all(ordered.map(async (g) => (await g.data()) as Float32Array)),
    weights: await Promise.all(model.getWeights().map(async (w) => (await w.data()) as Float32Array)),
  };
  tf.dispose([value, ...Object.values(grads)]);
  assert.equal(tf.memory().numTensors, before, `a training step on ${backend} leaks tensors`);
  tf.dispose([x, labels]);
  model.dispose();
  assert.equal(tf.backend().numDataIds(), buffers, `a training step on ${backend} leaks backend buffers`);
  return result;
}

async function assertSameStep(build: () => tf.LayersModel): Promise<void> {
  const cpu = await trainStep("cpu", build);
  const wasm = await trainStep("wasm", build);
  assert.ok(Math.abs(wasm.loss - cpu.loss) < 1e-5 * Math.abs(cpu.loss), `loss ${wasm.loss} vs ${cpu.loss}`);
  cpu.grads.forEach((g, i) => {
    const err = relativeError(wasm.grads[i] as Float32Array, g);
    assert.ok(err < 1e-3, `gradient ${i}: relative error ${err}`);
  });
  cpu.weights.forEach((w, i) => {
    const err = relativeError(wasm.weights[i] as Float32Array, w);
    assert.ok(err < 1e-5, `updated weight ${i}: relative error ${err}`);
  });
}

before(async () => {
  await initBackend({ backend: "wasm" });
});

describe("a training step on wasm matches cpu", () => {
  it("U-Net: conv, batch norm, ReLU, max-pool, transposed conv, concat, softmax cross-entropy", async () => {
    await assertSameStep(smallUnet);
  });
  it("MobileNetV2 block: 1x1 conv, ReLU6, depthwise stride 2, bilinear upsampling", async () => {
    await assertSameStep(mobileBlock);
  });
});
