import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { SegkitError } from "../core/errors.js";
import { createOnnxPredictor } from "../infer/predict.js";
import { exportOnnx } from "./onnx.js";
import { createModel, type ModelArch, type ModelOptions } from "./registry.js";

/**
 * exportOnnx + createOnnxPredictor against tfjs `model.predict` on the cpu backend (the reference): random
 * weights, random batch-norm statistics (so that folding is exercised), random 0..255 inputs, batch 2.
 */

const BATCH = 2;

/** Random biases and batch-norm parameters and statistics (kernels keep their random initialisation). */
function randomise(model: tf.LayersModel, seed = 1): void {
  tf.tidy(() => {
    for (const [k, w] of model.weights.entries()) {
      const name = w.originalName.split("/").at(-1) ?? "";
      const [lo, hi] = /gamma|moving_variance/.test(name) ? [0.5, 1.5] : [-0.5, 0.5];
      if (name !== "kernel" && name !== "depthwise_kernel")
        w.write(tf.randomUniform(w.shape as number[], lo, hi, "float32", seed + k));
    }
  });
}

/** max |onnx - tfjs| / max |tfjs| of the logits for random `[BATCH, H, W, 3]` 0..255 images. */
async function relativeError(model: tf.LayersModel, bytes = exportOnnx(model)): Promise<number> {
  const [, h, w, c] = (model.inputs[0] as tf.SymbolicTensor).shape as [null, number, number, number];
  const images = tf.tidy(() => tf.randomUniform([BATCH, h, w, c], 0, 255, "float32", 7).dataSync() as Float32Array);
  const reference = tf.tidy(() => (model.predict(tf.tensor4d(images, [BATCH, h, w, c])) as tf.Tensor).dataSync());
  const predictor = await createOnnxPredictor(bytes);
  const logits = await predictor.predict(images, BATCH, h, w);
  await predictor.dispose();
  assert.equal(logits.length, reference.length);
  let diff = 0;
  let scale = 0;
  for (const [i, r] of reference.entries()) {
    diff = Math.max(diff, Math.abs(r - (logits[i] as number)));
    scale = Math.max(scale, Math.abs(r));
  }
  assert.ok(scale > 0, "degenerate test: all logits are 0");
  return diff / scale;
}

const CASES: { [Name: string]: { [A in ModelArch]: [A, ModelOptions[A]] }[ModelArch] } = {
  "unet, max pool + transposed conv, batch norm": [
    "unet",
    { inputSize: [64, 64], depth: 3, baseFilters: 4, numClasses: 3 },
  ],
  "unet, strided + bilinear, dropout": [
    "unet",
    { inputSize: [64, 64], depth: 3, baseFilters: 4, downsample: "strided", upsample: "bilinear", dropout: 0.3 },
  ],
  "unet without batch norm": [
    "unet",
    { inputSize: [32, 32], depth: 2, baseFilters: 4, batchNorm: false, numClasses: 2 },
  ],
  "encoder-decoder": ["encoder-decoder", { inputSize: [32, 32], filters: [8, 16], numClasses: 4 }],
  "mobilenetv2-unet, alpha 0.35": [
    "mobilenetv2-unet",
    { inputSize: [64, 64], alpha: 0.35, decoderFilters: [32, 16, 16, 8], numClasses: 2 },
  ],
};

/** A model of odd sizes and the less common layer settings the architectures do not use. */
function layerZoo(): tf.LayersModel {
  const L = tf.layers;
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) =>
    layer.apply(x) as tf.SymbolicTensor;
  const input = tf.input({ shape: [15, 13, 3] });
  let y = apply(L.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: "same", activation: "relu" }), input); // 8x7
  y = apply(
    L.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: "same", depthMultiplier: 2, activation: "relu6" }),
    y,
  ); // 4x4x8
  y = apply(L.upSampling2d({ size: [2, 2], interpolation: "nearest" }), y); // 8x8
  const c = apply(L.conv2d({ filters: 6, kernelSize: 2, dilationRate: 2, padding: "same" }), y);
  y = apply(L.add(), [c, apply(L.batchNormalization(), c)]); // c has two readers: batch norm not folded
  y = apply(L.leakyReLU({ alpha: 0.1 }), y);
  y = apply(
    L.zeroPadding2d({
      padding: [
        [1, 2],
        [0, 3],
      ],
    }),
    y,
  ); // 11x11
  y = apply(L.conv2dTranspose({ filters: 3, kernelSize: 1, strides: 2, padding: "same" }), y); // 22x22: output_padding
  y = apply(L.conv2dTranspose({ filters: 3, kernelSize: 4, strides: 2, padding: "same" }), y); // 44x44
  y = apply(L.maxPooling2d({ poolSize: 3, strides: 2, padding: "same" }), y); // 22x22
  y = apply(L.conv2dTranspose({ filters: 2, kernelSize: 3, strides: 2, padding: "valid" }), y); // 45x45
  y = apply(L.upSampling2d({ size: [2, 3], interpolation: "bilinear" }), y); // 90x135
  y = apply(L.activation({ activation: "tanh" }), y);
  return tf.model({ inputs: input, outputs: y });
}

before(async () => {
  await tf.setBackend("cpu");
});

describe("exportOnnx", () => {
  for (const [name, [arch, options]] of Object.entries(CASES)) {
    it(`${name}: onnxruntime logits equal tfjs predict (rel. 1e-4), no tensor leaks`, async () => {
      const model = createModel(arch, options);
      randomise(model);
      const before = tf.memory().numTensors;
      const bytes = exportOnnx(model);
      assert.equal(tf.memory().numTensors, before);
      const error = await relativeError(model, bytes);
      assert.ok(error < 1e-4, `relative error ${error}`);
      assert.equal(tf.memory().numTensors, before);
      model.dispose();
    });
  }

  it("matches TF on odd sizes, dilation, k < stride and k > stride transposed convs, 'same' pooling, nearest", async () => {
    const model = layerZoo();
    randomise(model, 3);
    const error = await relativeError(model);
    assert.ok(error < 1e-4, `relative error ${error}`);
    model.dispose();
  });

  it("writes a fixed batch size and another opset when asked", async () => {
    const model = createModel("encoder-decoder", CASES["encoder-decoder"]?.[1] as ModelOptions["encoder-decoder"]);
    assert.ok((await relativeError(model, exportOnnx(model, { batch: BATCH, opset: 17 }))) < 1e-4);
    assert.throws(() => exportOnnx(model, { opset: 9 }), SegkitError);
    assert.throws(() => exportOnnx(model, { batch: 0 }), SegkitError);
    model.dispose();
  });

  it("names an unsupported layer and its class", () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const norm = tf.layers.layerNormalization({ name: "norm" }).apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: norm });
    assert.throws(
      () => exportOnnx(model),
      (err: Error) => err instanceof SegkitError && /"norm" \(LayerNormalization\)/.test(err.message),
    );
    model.dispose();
  });
});

describe("createOnnxPredictor", () => {
  it("rejects images of the wrong size and bad options", async () => {
    const model = createModel("unet", { inputSize: [16, 16], depth: 2, baseFilters: 2 });
    const predictor = await createOnnxPredictor(model, { threads: 1 });
    await assert.rejects(predictor.predict(new Float32Array(10), 1, 16, 16), SegkitError);
    await predictor.dispose();
    await assert.rejects(createOnnxPredictor(model, { threads: 0 }), SegkitError);
    model.dispose();
  });
});
