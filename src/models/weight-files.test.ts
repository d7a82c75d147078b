import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { SegkitError } from "../core/errors.js";
import { detectTorchNaming, mobileNetV2TorchNames } from "./encoders/mobilenet-v2-names.js";
import { readKerasH5 } from "./keras-h5.js";
import { createModel } from "./registry.js";
import { halfToFloat, parseSafetensors, readSafetensors, type SafetensorsEntry } from "./safetensors.js";
import { readWeightFile, weightFileFormat } from "./weight-files.js";
import { encoderLayers, loadEncoderWeightFile, loadEncoderWeights } from "./weights.js";

// Fixtures: scripts/fixtures/make_encoder_weights.py, MobileNetV2 alpha 0.35, the same random values in each file
const FIXTURES = join(import.meta.dirname, "fixtures");
const KERAS = join(FIXTURES, "mobilenet-v2-0.35-keras.h5");
const TORCHVISION = join(FIXTURES, "mobilenet-v2-0.35-torchvision.safetensors");
const TIMM = join(FIXTURES, "mobilenet-v2-0.35-timm.safetensors");
/** Conv1's kernel[0][0][0][0..2] (HWIO) as the script drew them. */
const CONV1_FIRST = [0.0250244140625, -0.0263671875, 0.1279296875];

/** A SegkitError naming `file`, whose message matches. */
const errorOf = (file: string, message: RegExp) => (err: Error) =>
  err instanceof SegkitError && err.file === file && message.test(err.message);

const small = () =>
  createModel("mobilenetv2-unet", { inputSize: [32, 32], alpha: 0.35, decoderFilters: [32, 16, 16, 8] });

/** A safetensors file of float32 tensors (`raw` replaces the data bytes, `header` entries are taken as given). */
function safetensors(tensors: Record<string, { shape: number[]; values: number[] }>, header: object = {}): Uint8Array {
  const entries: Record<string, unknown> = {};
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = new Uint8Array(new Float32Array(t.values).buffer);
    entries[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    blobs.push(bytes);
    offset += bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify({ ...entries, ...header }));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const b of blobs) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

let dir = "";
before(async () => {
  await tf.setBackend("cpu");
  dir = await mkdtemp(join(tmpdir(), "segkit-weight-files-"));
});
after(() => rm(dir, { recursive: true, force: true }));

describe("safetensors", () => {
  it("decodes half floats by hand", () => {
    const cases: [number, number][] = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x7bff, 65504],
      [0x0001, 2 ** -24],
      [0x3555, 0.333251953125],
      [0x7c00, Number.POSITIVE_INFINITY],
    ];
    for (const [bits, value] of cases) assert.equal(halfToFloat(bits), value, bits.toString(16));
  });

  it("reads the torchvision (F16) and timm (BF16) fixtures: names, shapes, values, integer counters left alone", async () => {
    const tv = await readSafetensors(TORCHVISION);
    const timm = await readSafetensors(TIMM);
    const stem = tv.get("features.0.0.weight");
    assert.equal(stem?.dtype, "F16");
    assert.deepEqual(stem?.shape, [16, 3, 3, 3]);
    // OIHW: weight[o][0][0][0] is Keras kernel[0][0][0][o]
    assert.deepEqual(
      [0, 1, 2].map((o) => stem?.values?.[o * 27]),
      CONV1_FIRST,
    );
    assert.deepEqual(tv.get("features.1.conv.0.0.weight")?.shape, [16, 1, 3, 3]);
    assert.deepEqual(tv.get("features.0.1.num_batches_tracked"), { dtype: "I64", shape: [], values: null });
    const timmStem = timm.get("conv_stem.weight");
    assert.equal(timmStem?.dtype, "BF16");
    assert.deepEqual(timmStem?.values, stem?.values);
    assert.deepEqual(timm.get("blocks.6.0.conv_pwl.weight")?.shape, [112, 336, 1, 1]);
  });

  it("reads float32 and refuses truncated files, offsets outside the data and oversized headers", () => {
    const good = safetensors({ a: { shape: [2, 2], values: [1, -2, 3.5, 4] } }, { __metadata__: { format: "pt" } });
    const a = parseSafetensors(good, "good.safetensors").get("a");
    assert.deepEqual(a, { dtype: "F32", shape: [2, 2], values: new Float32Array([1, -2, 3.5, 4]) });
    const bad: [Uint8Array, RegExp][] = [
      [good.subarray(0, good.length - 4), /tensor "a" at bytes \[0, 16\) lies outside the 12 bytes of data/],
      [good.subarray(0, 5), /5 bytes, less than the 8-byte header length/],
      [good.subarray(0, 20), /header length \d+ exceeds the file \(20 bytes\)/],
      [safetensors({}, { a: { dtype: "F32", shape: [4], data_offsets: [8, 24] } }), /lies outside the 0 bytes/],
      [safetensors({}, { a: { dtype: "F32", shape: [4], data_offsets: [-1, 15] } }), /"a" has bad data_offsets/],
      [
        safetensors(
          { a: { shape: [3], values: [1, 2, 3] } },
          { a: { dtype: "F32", shape: [2], data_offsets: [0, 12] } },
        ),
        /"a" F32 \[2\] needs 8 bytes, its offsets give 12/,
      ],
      [safetensors({}, { a: { dtype: "Q4", shape: [1], data_offsets: [0, 1] } }), /unknown dtype "Q4"/],
    ];
    for (const [bytes, message] of bad) {
      assert.throws(
        () => parseSafetensors(bytes, "bad.safetensors"),
        errorOf("bad.safetensors", message),
        String(message),
      );
    }
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 62n, true);
    assert.throws(() => parseSafetensors(huge, "x"), /header length 4611686018427387904 exceeds/);
  });
});

describe("Keras .h5", () => {
  it("reads the keras.applications layout: layer_names, weight_names, <layer>/<layer>/<weight>:0", async () => {
    const w = await readKerasH5(KERAS);
    assert.deepEqual(w.get("Conv1/kernel")?.shape, [3, 3, 3, 16]);
    assert.deepEqual(Array.from(w.get("Conv1/kernel")?.values?.slice(0, 3) ?? []), CONV1_FIRST);
    assert.deepEqual(w.get("expanded_conv_depthwise/depthwise_kernel")?.shape, [3, 3, 16, 1]);
    assert.deepEqual(w.get("block_16_project/kernel")?.shape, [1, 1, 336, 112]);
    assert.ok(w.has("block_16_project_BN/moving_variance")); // in the file, not in segkit's encoder
    assert.equal(w.size, 255);
  });

  it("reads a Keras 3 .weights.h5 (layers/<name>/vars/<i>) by position, and refuses files without layers", async () => {
    const h5wasm = await import("h5wasm/node");
    await h5wasm.ready;
    const source = small();
    const file = join(dir, "keras3.weights.h5");
    const f = new h5wasm.File(file, "w");
    const layers = f.create_group("layers");
    for (const layer of encoderLayers(source)) {
      if (!layer.weights.length) continue;
      const vars = layers.create_group(layer.name).create_group("vars");
      layer.getWeights().forEach((t, i) => {
        vars.create_dataset({ name: String(i), data: t.dataSync() as Float32Array, shape: t.shape });
      });
    }
    f.close();
    const target = small();
    assert.equal((await loadEncoderWeightFile(target, file)).format, "keras-h5");
    for (const name of ["Conv1", "block_7_depthwise_BN", "block_16_project"]) {
      assert.deepEqual(
        target
          .getLayer(name)
          .getWeights()
          .map((t) => Array.from(t.dataSync())),
        source
          .getLayer(name)
          .getWeights()
          .map((t) => Array.from(t.dataSync())),
      );
    }
    const empty = join(dir, "empty.h5");
    new h5wasm.File(empty, "w").close();
    await assert.rejects(readKerasH5(empty), /no layer_names attribute \(Keras 2 \.h5\) and no layers\/ group/);
    source.dispose();
    target.dispose();
  });

  it("names the missing layers of an h5 file (model_weights/ of a whole-model file); bad files are one clear error", async () => {
    const h5wasm = await import("h5wasm/node");
    await h5wasm.ready;
    const file = join(dir, "only-conv1.h5");
    const f = new h5wasm.File(file, "w");
    // a whole-model file (`model.save("x.h5")`): the weights under model_weights/
    const root = f.create_group("model_weights");
    root.create_attribute("layer_names", ["input_1", "Conv1"]);
    root.create_group("input_1").create_attribute("weight_names", []);
    const g = root.create_group("Conv1");
    g.create_attribute("weight_names", ["Conv1/kernel:0"]);
    // the dataset at Conv1/Conv1/kernel:0, as Keras writes it (h5wasm makes no intermediate groups)
    const kernel = { name: "kernel:0", data: new Float32Array(432).fill(0.5), shape: [3, 3, 3, 16] };
    g.create_group("Conv1").create_dataset(kernel);
    f.close();
    assert.deepEqual([...(await readKerasH5(file)).keys()], ["Conv1/kernel"]);
    const model = small();
    const start = tf.memory().numTensors;
    await assert.rejects(
      loadEncoderWeights(model, file),
      errorOf(file, /bn_Conv1\/gamma \[16\] missing; bn_Conv1\/beta \[16\] missing/),
    );
    assert.equal(tf.memory().numTensors, start);
    const notH5 = join(dir, "text.h5");
    await writeFile(notH5, "\x89HDX this is not hdf5");
    await assert.rejects(readKerasH5(notH5), /not an HDF5 file/);
    const truncated = join(dir, "truncated.h5");
    await writeFile(truncated, (await readFile(KERAS)).subarray(0, 3000));
    await assert.rejects(
      readKerasH5(truncated),
      errorOf(truncated, /^cannot read the HDF5 file \(damaged or truncated\?\): truncated file: eof = 3000/),
    );
    await assert.rejects(weightFileFormat(notH5), /not a weight file segkit reads/);
    model.dispose();
  });
});

describe("the MobileNetV2 name table", () => {
  it("maps every conv and batch norm of segkit's encoder, in each naming, one to one", () => {
    const model = small();
    const keys = encoderLayers(model).flatMap((l) => l.weights.map((w) => w.originalName));
    for (const naming of ["torchvision", "timm"] as const) {
      const targets = [...mobileNetV2TorchNames(naming).values()].map((t) => t.key);
      assert.equal(new Set(targets).size, targets.length, naming);
      assert.deepEqual(
        keys.filter((k) => !targets.includes(k)),
        [],
        naming,
      );
    }
    assert.deepEqual(detectTorchNaming(["encoder.features.0.0.weight"]), { naming: "torchvision", prefix: "encoder." });
    assert.deepEqual(detectTorchNaming(["conv_stem.weight"]), { naming: "timm", prefix: "" });
    assert.equal(detectTorchNaming(["Conv1/kernel"]), null);
    model.dispose();
  });

  it("puts torch weight[o][i][kh][kw] at kernel[kh][kw][i][o], depthwise [c][0][kh][kw] at [kh][kw][c][0]", async () => {
    const torch = await readSafetensors(TORCHVISION);
    const model = small();
    const start = tf.memory().numTensors;
    const info = await loadEncoderWeightFile(model, TORCHVISION);
    assert.equal(tf.memory().numTensors, start);
    assert.deepEqual(info, { file: TORCHVISION, format: "safetensors", naming: "torchvision", tensors: 251 });
    const at = (layer: string, idx: number[]) => {
      const t = model.getLayer(layer).getWeights()[0] as tf.Tensor;
      const v = (t.arraySync() as number[][][][])[idx[0] as number]?.[idx[1] as number]?.[idx[2] as number]?.[
        idx[3] as number
      ];
      assert.equal(typeof v, "number", `${layer} [${idx}]`);
      return v;
    };
    const torchAt = (name: string, [a, b, c, d]: number[]) => {
      const e = torch.get(name) as SafetensorsEntry;
      const [, s1, s2, s3] = e.shape as [number, number, number, number];
      return e.values?.[((a as number) * s1 + (b as number)) * s2 * s3 + (c as number) * s3 + (d as number)];
    };
    // Conv1 [16,3,3,3] OIHW: o=5, i=2, kh=1, kw=0
    assert.equal(at("Conv1", [1, 0, 2, 5]), torchAt("features.0.0.weight", [5, 2, 1, 0]));
    // block 2's expand [48, 8, 1, 1]: o=40, i=7
    assert.equal(at("block_2_expand", [0, 0, 7, 40]), torchAt("features.3.conv.0.0.weight", [40, 7, 0, 0]));
    // block 4's depthwise [96, 1, 3, 3]: c=70, kh=2, kw=1
    assert.equal(at("block_4_depthwise", [2, 1, 70, 0]), torchAt("features.5.conv.1.0.weight", [70, 0, 2, 1]));
    // batch norm: beta, mean and variance as they are; gamma scaled for Keras' epsilon 1e-3 against torch's 1e-5
    const bn = model
      .getLayer("block_4_depthwise_BN")
      .getWeights()
      .map((t) => t.dataSync()[9] as number);
    const [g, b, m, v] = ["weight", "bias", "running_mean", "running_var"].map(
      (w) => torch.get(`features.5.conv.1.1.${w}`)?.values?.[9] as number,
    ) as [number, number, number, number];
    assert.ok(Math.abs((bn[0] as number) - g * Math.sqrt((v + 1e-3) / (v + 1e-5))) < 1e-6);
    assert.notEqual(bn[0], g);
    assert.deepEqual(bn.slice(1), [b, m, v]);
    model.dispose();
  });

  it("loads the Keras, torchvision and timm fixtures into the same encoder", async () => {
    const models = [small(), small(), small()];
    const infos = await Promise.all(
      [KERAS, TORCHVISION, TIMM].map((f, i) => loadEncoderWeightFile(models[i] as tf.LayersModel, f)),
    );
    assert.deepEqual(
      infos.map((i) => [i.format, i.naming, i.tensors]),
      [
        ["keras-h5", "keras", 251],
        ["safetensors", "torchvision", 251],
        ["safetensors", "timm", 251],
      ],
    );
    const values = (m: tf.LayersModel, layer: string) =>
      m
        .getLayer(layer)
        .getWeights()
        .map((t) => Array.from(t.dataSync()));
    for (const layer of ["Conv1", "expanded_conv_project", "block_9_depthwise", "block_16_project"]) {
      assert.deepEqual(values(models[1] as tf.LayersModel, layer), values(models[0] as tf.LayersModel, layer), layer);
      assert.deepEqual(values(models[2] as tf.LayersModel, layer), values(models[0] as tf.LayersModel, layer), layer);
    }
    for (const m of models) m.dispose();
  });

  it("a missing or misshapen torch tensor: one error with the file, segkit's and torch's names and both shapes", async () => {
    const full = await readSafetensors(TORCHVISION);
    const tensors = Object.fromEntries(
      [...full]
        .filter(([name, e]) => e.values && name !== "features.5.conv.1.0.weight")
        .map(([name, e]) => [name, { shape: e.shape, values: Array.from(e.values as Float32Array) }]),
    );
    const file = join(dir, "missing.safetensors");
    await writeFile(file, safetensors(tensors));
    const model = small();
    const before = model.getLayer("Conv1").getWeights()[0]?.dataSync().slice();
    const start = tf.memory().numTensors;
    await assert.rejects(
      loadEncoderWeights(model, file),
      errorOf(
        file,
        /^encoder weights do not fit: block_4_depthwise\/depthwise_kernel \[3,3,96,1\] missing \(as features\.5\.conv\.1\.0\.weight\)$/,
      ),
    );
    assert.equal(tf.memory().numTensors, start);
    assert.deepEqual(model.getLayer("Conv1").getWeights()[0]?.dataSync(), before); // nothing copied
    const wide = createModel("mobilenetv2-unet", { inputSize: [32, 32], alpha: 0.5 });
    await assert.rejects(
      loadEncoderWeights(wide, TIMM),
      /block_1_project\/kernel is \[1,1,48,8\] there \(blocks\.1\.0\.conv_pwl\.weight \[8,48,1,1\] in the file\), the model needs \[1,1,48,16\]/,
    );
    assert.equal(tf.memory().numTensors, start + wide.weights.length);
    model.dispose();
    wide.dispose();
  });

  it("tells formats by content, not extension", async () => {
    const renamed = join(dir, "weights.bin");
    await writeFile(renamed, await readFile(TIMM));
    assert.equal(await weightFileFormat(renamed), "safetensors");
    const read = await readWeightFile(renamed);
    assert.equal(read.naming, "timm");
    assert.deepEqual(read.tensors["Conv1/kernel"]?.shape, [3, 3, 3, 16]);
    tf.dispose(read.tensors);
    await assert.rejects(weightFileFormat(join(dir, "nowhere.h5")), /file not found/);
  });
});
