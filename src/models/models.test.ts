import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { SegkitError } from "../core/errors.js";
import { rampImages } from "../test-utils/tensors.js";
import { makeDivisible } from "./encoders/mobilenet-v2.js";
import { headMode, probabilities } from "./head.js";
import { modelInfo } from "./info.js";
import { loadModel, saveModel } from "./io.js";
import { createModel, MODEL_ARCHS, type ModelArch, type ModelOptions } from "./registry.js";
import { encoderLayers, freezeEncoder, loadEncoderWeights } from "./weights.js";

/** Small versions of each architecture, 32x32 input. */
const SMALL: { [A in ModelArch]: ModelOptions[A] } = {
  "encoder-decoder": { inputSize: [32, 32], filters: [8, 16] },
  unet: { inputSize: [32, 32], depth: 3, baseFilters: 4 },
  "mobilenetv2-unet": { inputSize: [32, 32], alpha: 0.35, decoderFilters: [32, 16, 16, 8] },
};
const small = (arch: ModelArch, extra: object = {}) => createModel(arch, { ...SMALL[arch], ...extra });

const images = rampImages;

const weightValues = (ws: readonly tf.LayerVariable[]) => ws.map((w) => Array.from(w.read().dataSync()));

let dir = "";
before(async () => {
  await tf.setBackend("cpu");
  dir = await mkdtemp(join(tmpdir(), "segkit-models-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("createModel", () => {
  it("lists the valid names for an unknown arch", () => {
    assert.throws(
      () => createModel("segformer" as ModelArch),
      (err: Error) =>
        err instanceof SegkitError &&
        MODEL_ARCHS.every((a) => err.message.includes(a)) &&
        /segformer/.test(err.message),
    );
  });

  it("rejects bad options with their names", () => {
    const bad: [ModelArch, object, RegExp][] = [
      ["unet", { depth: 1 }, /unet options: depth/],
      ["unet", { dropout: 1 }, /dropout/],
      ["unet", { downsample: "avg" }, /downsample/],
      ["unet", { baseFilter: 16 }, /baseFilter/],
      ["unet", { numClasses: 0 }, /numClasses/],
      ["unet", { inputSize: [30, 32], depth: 3 }, /inputSize 30x32 must be a multiple of 4/],
      ["encoder-decoder", { filters: [] }, /filters/],
      ["mobilenetv2-unet", { alpha: 0.6 }, /alpha/],
      ["mobilenetv2-unet", { inputSize: [48, 48] }, /multiple of 32/],
    ];
    for (const [arch, options, message] of bad) {
      assert.throws(() => createModel(arch, options as never), message, `${arch} ${JSON.stringify(options)}`);
    }
  });

  it("does not mutate the options", () => {
    const options = { numClasses: 2, inputSize: [32, 32] as [number, number] };
    const copy = structuredClone(options);
    createModel("unet", options).dispose();
    assert.deepEqual(options, copy);
  });

  for (const arch of MODEL_ARCHS) {
    it(`${arch}: [B,H,W,3] 0..255 -> logits [B,H,W,C], binary and multi-class`, () => {
      for (const numClasses of [1, 3]) {
        const model = small(arch, { numClasses });
        const y = tf.tidy(() => model.predict(images(2)) as tf.Tensor);
        assert.deepEqual(y.shape, [2, 32, 32, numClasses]);
        assert.equal(headMode(model), numClasses === 1 ? "binary" : "multiclass");
        const p = probabilities(y);
        const sums = tf.tidy(() => (numClasses === 1 ? p.max() : p.sum(-1).sub(1).abs().max()));
        assert.ok((sums.dataSync()[0] as number) <= (numClasses === 1 ? 1 : 1e-5));
        tf.dispose([y, p, sums]);
        model.dispose();
      }
    });
  }

  it("unet variants: bilinear, strided, no batch norm, dropout; non-square input", () => {
    const model = createModel("unet", {
      inputSize: [16, 32],
      depth: 3,
      baseFilters: 4,
      upsample: "bilinear",
      downsample: "strided",
      batchNorm: false,
      dropout: 0.5,
    });
    assert.deepEqual(model.outputs[0]?.shape, [null, 16, 32, 1]);
    assert.ok(
      !model.layers.some((l) => l.getClassName() === "MaxPooling2D" || l.getClassName() === "BatchNormalization"),
    );
    assert.ok(model.layers.some((l) => l.getClassName() === "UpSampling2D"));
    assert.ok(model.layers.some((l) => l.getClassName() === "Dropout"));
    model.dispose();
  });

  it("rescales inside the model (Rescaling layer, 1/255; [-1, 1] for MobileNetV2)", () => {
    for (const [arch, scale, offset] of [
      ["unet", 1 / 255, 0],
      ["mobilenetv2-unet", 1 / 127.5, -1],
    ] as const) {
      const model = small(arch);
      const config = model.getLayer("rescaling").getConfig();
      assert.equal(config.scale, scale);
      assert.equal(config.offset, offset);
      model.dispose();
    }
  });
});

describe("modelInfo", () => {
  it("counts parameters and FLOPs by hand for a tiny encoder-decoder", () => {
    // 4x4x3 in; conv 3x3 s2 3->2 (2x2 out), conv 3x3 2->2, convT 3x3 2->2 (2x2 in), convT 3x3 s2 2->2 (2x2 in),
    // logits conv 3x3 2->1 (4x4 out). MACs: 4*9*3*2 + 4*9*2*2 * 3 + 16*9*2*1 = 216 + 432 + 288 = 936.
    const model = createModel("encoder-decoder", { inputSize: [4, 4], filters: [2] });
    assert.deepEqual(modelInfo(model), { totalParams: 56 + 38 * 3 + 19, trainableParams: 189, flops: 2 * 936 });
    model.dispose();
  });

  it("counts depthwise and dense layers, and batch norm statistics as non-trainable", () => {
    const input = tf.input({ shape: [4, 4, 3] });
    const dw = tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: "same" }).apply(input);
    const bn = tf.layers.batchNormalization().apply(dw);
    const out = tf.layers.dense({ units: 5 }).apply(bn) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: out });
    // depthwise: 16 * 9 * 3 * 2 = 864 MACs, 54 + 6 params; bn: 4 * 6 params, 12 trainable; dense 16 * 6 * 5 = 480 MACs, 35
    assert.deepEqual(modelInfo(model), { totalParams: 60 + 24 + 35, trainableParams: 60 + 12 + 35, flops: 2 * 1344 });
    model.dispose();
  });

  it("matches the reference models' parameter counts", () => {
    // Deep Learning with Python's segmentation model (3 classes): 2,880,643 parameters.
    const book = createModel("encoder-decoder", { numClasses: 3, inputSize: [64, 64] });
    assert.equal(modelInfo(book).totalParams, 2_880_643);
    book.dispose();
    // The TensorFlow segmentation tutorial's model (MobileNetV2 1.0 at 128x128, 3 classes): 6,504,227.
    const tutorial = createModel("mobilenetv2-unet", { numClasses: 3 });
    assert.equal(modelInfo(tutorial).totalParams, 6_504_227);
    tutorial.dispose();
  });
});

describe("MobileNetV2 encoder", () => {
  it("rounds channels like Keras _make_divisible", () => {
    assert.deepEqual(
      [0.35, 0.5, 0.75, 1].map((a) => makeDivisible(32 * a)),
      [16, 16, 24, 32],
    );
    assert.equal(makeDivisible(Math.trunc(320 * 0.35)), 112);
    assert.equal(makeDivisible(Math.trunc(24 * 0.35)), 8);
  });

  it("has Keras layer names and the tutorial's skips", () => {
    const model = small("mobilenetv2-unet");
    const names = new Set(model.layers.map((l) => l.name));
    for (const n of ["Conv1", "bn_Conv1", "Conv1_relu", "expanded_conv_depthwise", "expanded_conv_project_BN"]) {
      assert.ok(names.has(n), n);
    }
    for (const n of ["block_1_expand", "block_1_expand_BN", "block_1_pad", "block_2_add", "block_16_project"]) {
      assert.ok(names.has(n), n);
    }
    const stages = (model.getUserDefinedMetadata() as { segkit: { encoder: { layer: string; stride: number }[] } })
      .segkit.encoder;
    assert.deepEqual(
      stages.map((s) => [s.layer, s.stride]),
      [
        ["block_1_expand_relu", 2],
        ["block_3_expand_relu", 4],
        ["block_6_expand_relu", 8],
        ["block_13_expand_relu", 16],
        ["block_16_project", 32],
      ],
    );
    model.dispose();
  });
});

/** One fit step on 2 samples with a sigmoid / softmax cross-entropy on the logits. */
async function trainStep(model: tf.LayersModel, numClasses: number): Promise<number> {
  model.compile({
    optimizer: tf.train.sgd(0.1),
    loss: (yTrue: tf.Tensor, yPred: tf.Tensor) =>
      numClasses === 1 ? tf.losses.sigmoidCrossEntropy(yTrue, yPred) : tf.losses.softmaxCrossEntropy(yTrue, yPred),
  });
  const x = images(2);
  const labels = tf.tidy(() => x.mean(-1).greater(127).toInt());
  const y = tf.tidy(() => (numClasses === 1 ? labels.expandDims(-1).toFloat() : tf.oneHot(labels, numClasses)));
  const history = await model.fit(x, y, { batchSize: 2, epochs: 1, verbose: 0 });
  tf.dispose([x, labels, y]);
  return history.history.loss?.[0] as number;
}

describe("training", () => {
  for (const arch of MODEL_ARCHS) {
    it(`${arch}: one step changes the weights, values stay finite`, async () => {
      const numClasses = arch === "unet" ? 1 : 3;
      const model = small(arch, { numClasses });
      const beforeFit = weightValues(model.trainableWeights);
      const loss = await trainStep(model, numClasses);
      assert.ok(Number.isFinite(loss), `loss ${loss}`);
      const afterFit = weightValues(model.trainableWeights);
      assert.ok(afterFit.every((w) => w.every(Number.isFinite)));
      assert.ok(afterFit.some((w, i) => w.some((v, j) => v !== beforeFit[i]?.[j])));
      model.dispose();
    });
  }

  it("a frozen encoder keeps its weights and batch norm statistics; unfreezing restores training", async () => {
    const model = small("mobilenetv2-unet", { freezeEncoder: true });
    const encoder = encoderLayers(model).flatMap((l) => l.weights);
    const size = (ws: tf.LayerVariable[]) => ws.reduce((n, w) => n + w.read().size, 0);
    const decoderTrainable = model.weights.filter((w) => !encoder.includes(w) && !/moving_/.test(w.originalName));
    assert.ok(encoder.every((w) => !w.trainable));
    assert.equal(modelInfo(model).trainableParams, size(decoderTrainable));
    const encoderBefore = weightValues(encoder);
    const decoder = model.layers.find((l) => l.name === "logits")?.weights ?? [];
    const decoderBefore = weightValues(decoder);
    await trainStep(model, 1);
    assert.deepEqual(weightValues(encoder), encoderBefore);
    assert.notDeepEqual(weightValues(decoder), decoderBefore);

    freezeEncoder(model, false);
    assert.ok(encoder.every((w) => w.trainable === !/moving_/.test(w.originalName)));
    await trainStep(model, 1);
    assert.notDeepEqual(weightValues(encoder), encoderBefore);
    model.dispose();
  });
});

describe("save and load", () => {
  const builders: [string, () => tf.LayersModel][] = [
    ...MODEL_ARCHS.map((arch) => [arch, () => small(arch, { numClasses: 2 })] as [string, () => tf.LayersModel]),
    [
      "mobilenetv2+unet",
      () =>
        createModel({
          encoder: { name: "mobilenetv2", alpha: 0.35 },
          decoder: { name: "unet", filters: [16, 16, 8, 8] },
          numClasses: 2,
          inputSize: [32, 32],
        }),
    ],
  ];
  for (const [arch, build] of builders) {
    it(`${arch}: round trip to disk is exact, metadata kept, no temporary files left`, async () => {
      const start = tf.memory().numTensors;
      const model = build();
      const path = join(dir, arch);
      await saveModel(model, path);
      assert.deepEqual((await readdir(path)).sort(), ["model.json", "model.weights.bin"]);
      const loaded = await loadModel(path);
      const x = images(1);
      const [a, b] = tf.tidy(() => [model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor]);
      assert.deepEqual(a?.dataSync(), b?.dataSync());
      assert.deepEqual(loaded.getUserDefinedMetadata(), model.getUserDefinedMetadata());
      assert.deepEqual(modelInfo(loaded), modelInfo(model));
      assert.deepEqual(
        encoderLayers(loaded).map((l) => l.name),
        encoderLayers(model).map((l) => l.name),
      );
      tf.dispose([x, a, b]);
      model.dispose();
      loaded.dispose();
      assert.equal(tf.memory().numTensors, start);
    });
  }

  it("a missing model is a SegkitError naming the file", async () => {
    await assert.rejects(
      loadModel(join(dir, "nowhere")),
      (err: Error) => err instanceof SegkitError && /model\.json/.test((err as SegkitError).file ?? ""),
    );
  });
});

describe("loadEncoderWeights", () => {
  it("copies the encoder weights by layer name from a saved model, exactly; the decoder is untouched", async () => {
    const source = small("mobilenetv2-unet");
    const path = join(dir, "encoder-source");
    await saveModel(source, path);
    // another head, input size and decoder: only the encoder must match
    const target = createModel("mobilenetv2-unet", { alpha: 0.35, inputSize: [64, 64], numClasses: 3 });
    const decoderBefore = weightValues(target.getLayer("logits").weights);
    const start = tf.memory().numTensors;
    const copied = await loadEncoderWeights(target, path);
    assert.equal(tf.memory().numTensors, start);
    const encoderNames = encoderLayers(target).map((l) => l.name);
    assert.equal(
      copied,
      encoderLayers(target).reduce((n, l) => n + l.weights.length, 0),
    );
    for (const name of encoderNames) {
      assert.deepEqual(weightValues(target.getLayer(name).weights), weightValues(source.getLayer(name).weights), name);
    }
    assert.deepEqual(weightValues(target.getLayer("logits").weights), decoderBefore);
    source.dispose();
    target.dispose();
  });

  it("matches converted Keras weight names with a model prefix, and from a model in memory", async () => {
    const source = small("mobilenetv2-unet");
    const path = join(dir, "keras-like");
    await saveModel(source, path);
    const json = JSON.parse(await readFile(join(path, "model.json"), "utf8"));
    for (const w of json.weightsManifest[0].weights) w.name = `mobilenetv2_0.35_224/${w.name}`;
    await writeFile(join(path, "model.json"), JSON.stringify(json));
    for (const from of [path, source]) {
      const target = small("mobilenetv2-unet");
      await loadEncoderWeights(target, from);
      assert.deepEqual(
        weightValues(target.getLayer("block_16_project").weights),
        weightValues(source.getLayer("block_16_project").weights),
      );
      target.dispose();
    }
    source.dispose();
  });

  it("names the mismatched and missing weights with their shapes, and copies nothing", async () => {
    const source = small("mobilenetv2-unet");
    const path = join(dir, "alpha-035");
    await saveModel(source, path);
    const wider = createModel("mobilenetv2-unet", { ...SMALL["mobilenetv2-unet"], alpha: 0.75 });
    const before = weightValues(wider.weights);
    await assert.rejects(
      loadEncoderWeights(wider, path),
      /Conv1\/kernel is \[3,3,3,16\] there, the model needs \[3,3,3,24\]; bn_Conv1\/gamma is \[16\] there/,
    );
    assert.deepEqual(weightValues(wider.weights), before);
    const unet = small("unet");
    await assert.rejects(loadEncoderWeights(source, unet), /Conv1\/kernel \[3,3,3,16\] missing/);
    for (const m of [source, wider, unet]) m.dispose();
  });
});

describe("memory", () => {
  it("building, predicting and disposing every model leaks no tensor", () => {
    const start = tf.memory().numTensors;
    for (const arch of MODEL_ARCHS) {
      const model = small(arch);
      tf.dispose(tf.tidy(() => model.predict(images(1))));
      model.dispose();
    }
    assert.equal(tf.memory().numTensors, start);
  });
});
