import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { SegkitError } from "../core/errors.js";
import { rampImages } from "../test-utils/tensors.js";
import { CONV_STACK_DECODER } from "./decoders/conv-stack.js";
import { DECODER_NAMES, type DecoderName } from "./decoders/registry.js";
import { UNET_DECODER } from "./decoders/unet.js";
import { ENCODER_NAMES, ENCODERS, type EncoderName } from "./encoders/registry.js";
import { modelInfo } from "./info.js";
import { createModel, type DecoderChoice, type EncoderChoice, type SegkitModelMetadata } from "./registry.js";
import { encoderLayers } from "./weights.js";

/** Small encoders at a 32 x 32 input. */
const SMALL_ENCODERS: { [N in EncoderName]: EncoderChoice } = {
  unet: { name: "unet", depth: 3, baseFilters: 4 },
  "conv-stack": { name: "conv-stack", filters: [8, 16] },
  mobilenetv2: { name: "mobilenetv2", alpha: 0.35 },
};
/** Decoder filters per encoder (deepest first), small; the unet decoder's count is one less than the stages. */
const FILTERS: { [N in EncoderName]: number[] } = {
  unet: [8, 4, 4],
  "conv-stack": [16, 8],
  mobilenetv2: [32, 16, 16, 8, 8],
};
const decoderFor = (d: DecoderName, e: EncoderName): DecoderChoice =>
  d === "unet" ? { name: "unet", filters: FILTERS[e].slice(1) } : { name: "conv-stack", filters: FILTERS[e] };
const PAIRS = ENCODER_NAMES.flatMap((e) => DECODER_NAMES.map((d) => [e, d] as const));

const images = (b: number) => rampImages(b);
const meta = (m: tf.LayersModel) => (m.getUserDefinedMetadata() as SegkitModelMetadata).segkit;

before(async () => {
  await tf.setBackend("cpu");
});

describe("createModel({ encoder, decoder }): every pair", () => {
  for (const [e, d] of PAIRS) {
    it(`${e} encoder + ${d} decoder: [B,32,32,3] -> logits [B,32,32,3], declared strides, metadata, no leaks`, () => {
      const start = tf.memory().numTensors;
      const model = createModel({
        encoder: SMALL_ENCODERS[e],
        decoder: decoderFor(d, e),
        numClasses: 3,
        inputSize: [32, 32],
      });
      assert.deepEqual(model.outputs[0]?.shape, [null, 32, 32, 3]);
      const x = images(2);
      const y = tf.tidy(() => model.predict(x) as tf.Tensor);
      assert.deepEqual(y.shape, [2, 32, 32, 3]);
      assert.ok(Array.from(y.dataSync()).every(Number.isFinite));
      const m = meta(model);
      assert.equal(m.arch, `${e}+${d}`);
      const { name: _, ...encoderOptions } = SMALL_ENCODERS[e] as { name: string };
      const declared = (ENCODERS[e].strides as (o: unknown) => number[])(
        ENCODERS[e].schema.parse(encoderOptions) as unknown,
      );
      assert.deepEqual(
        m.encoder.map((s) => s.stride),
        declared,
      );
      assert.equal(m.options.numClasses, 3);
      // parameters: the encoder's plus a decoder of some size; nothing trainable left out
      const info = modelInfo(model);
      const encoderParams = encoderLayers(model).reduce((n, l) => n + l.countParams(), 0);
      assert.ok(encoderParams > 0 && info.totalParams > encoderParams, `${info.totalParams} vs ${encoderParams}`);
      assert.ok(info.totalParams < 2_000_000, `${info.totalParams}`);
      tf.dispose([x, y]);
      model.dispose();
      assert.equal(tf.memory().numTensors, start);
    });
  }

  it("counts the parameters of unet encoder + conv-stack decoder by hand", () => {
    // 4x4 input; encoder: enc0 3x3 3->2 (56), 2->2 (38), pool, enc1 2->4 (76), 4->4 (148); decoder from the deepest
    // stage (stride 2 -> 1): dec1 convT 4->4 (148) twice, then stage 0 (stride 1 -> 1) convT 4->2 (74), 2->2 (38);
    // head 3x3 2->1 (19)
    const model = createModel({
      encoder: { name: "unet", depth: 2, baseFilters: 2, batchNorm: false },
      decoder: "conv-stack",
      inputSize: [4, 4],
    });
    assert.equal(modelInfo(model).totalParams, 56 + 38 + 76 + 148 + 148 + 148 + 74 + 38 + 19);
    assert.deepEqual(
      model.layers.filter((l) => l.getClassName() === "Conv2DTranspose").map((l) => l.getConfig().strides),
      [
        [1, 1],
        [2, 2],
        [1, 1],
        [1, 1],
      ],
    );
    model.dispose();
  });

  it("defaults: names alone build (decoder filters mirror the encoder), and the options are not modified", () => {
    const spec = { encoder: "unet", decoder: "unet", inputSize: [32, 32] } as const;
    const copy = structuredClone(spec);
    const model = createModel({ ...spec, inputSize: [32, 32] });
    assert.deepEqual(spec, copy);
    // U-Net: the decoder's double convs have the channels of the skip they join (16, 32, 64 from the 4 stages)
    assert.deepEqual(
      [2, 1, 0].map((i) => model.getLayer(`dec${i}_b_conv`).getConfig().filters),
      [64, 32, 16],
    );
    assert.deepEqual(meta(model).options, {
      encoder: { name: "unet", depth: 4, baseFilters: 16, batchNorm: true, dropout: 0, downsample: "maxpool" },
      decoder: { name: "unet", upsample: "transpose", block: "double-conv", batchNorm: true },
      numClasses: 1,
      inputSize: [32, 32],
      freezeEncoder: false,
    });
    model.dispose();
  });

  it("pix2pix blocks on the unet encoder; freezeEncoder freezes whichever encoder", () => {
    const model = createModel({
      encoder: { name: "unet", depth: 3, baseFilters: 4 },
      decoder: { name: "unet", block: "pix2pix" },
      inputSize: [32, 32],
      freezeEncoder: true,
    });
    assert.ok(model.layers.some((l) => l.name === "dec0_up_bn"));
    assert.ok(!model.layers.some((l) => l.name === "dec0_a_conv"));
    const encoder = encoderLayers(model);
    assert.ok(encoder.length > 0 && encoder.every((l) => !l.trainable));
    assert.ok(model.getLayer("logits").trainable);
    model.dispose();
  });
});

describe("createModel({ encoder, decoder }): errors", () => {
  const refused = (spec: unknown, message: RegExp) => {
    const start = tf.memory().numTensors;
    assert.throws(
      () => createModel(spec as never),
      (err: Error) => err instanceof SegkitError && message.test(err.message),
    );
    assert.equal(tf.memory().numTensors, start, "a refused model left weights behind");
  };

  it("lists the valid names for an unknown encoder or decoder", () => {
    refused(
      { encoder: "resnet34", decoder: "unet" },
      /unknown encoder "resnet34"; valid: unet, conv-stack, mobilenetv2$/,
    );
    refused({ encoder: "unet", decoder: { name: "fpn" } }, /unknown decoder "fpn"; valid: unet, conv-stack$/);
    refused({ decoder: "unet" }, /unknown encoder undefined; valid/);
    refused(
      "segformer",
      /unknown model "segformer"; valid: encoder-decoder, unet, mobilenetv2-unet, or \{ encoder, decoder \}/,
    );
  });

  it("names bad options, and where they belong", () => {
    refused({ encoder: { name: "mobilenetv2", alpha: 0.6 }, decoder: "unet" }, /encoder mobilenetv2 options: alpha/);
    refused({ encoder: "unet", decoder: { name: "unet", depth: 3 } }, /decoder unet options: .*depth/);
    refused({ encoder: "unet", decoder: "unet", alpha: 0.35 }, /model options: .*alpha/);
    refused({ encoder: "unet", decoder: "unet", numClasses: 0 }, /model options: numClasses/);
    refused(
      { encoder: "unet", decoder: { name: "unet", block: "pix2pix", upsample: "bilinear" } },
      /upsample: upsample "bilinear" needs block "double-conv"/,
    );
    refused(
      { encoder: "mobilenetv2", decoder: "unet", inputSize: [48, 48] },
      /^mobilenetv2\+unet options: inputSize 48x48 must be a multiple of 32 \(the mobilenetv2 encoder's deepest stage has stride 32\)$/,
    );
  });

  it("says why a decoder does not fit an encoder, before building anything", () => {
    refused(
      { encoder: { name: "unet", depth: 3 }, decoder: { name: "unet", filters: [8, 8, 8] } },
      /^unet\+unet options: the unet decoder does not fit the unet encoder \(stages at strides 1, 2, 4\): filters has 3 values; it needs 2 \(one per skip/,
    );
    refused(
      { encoder: "mobilenetv2", decoder: { name: "conv-stack", filters: [8] } },
      /the conv-stack decoder does not fit the mobilenetv2 encoder \(stages at strides 2, 4, 8, 16, 32\): filters has 1 values; it needs 5/,
    );
    // stage strides none of today's encoders has (the check is what a new encoder meets)
    const o = { upsample: "transpose", block: "double-conv", batchNorm: true } as const;
    assert.equal(UNET_DECODER.misfit([1, 2, 4], o), null);
    assert.equal(UNET_DECODER.misfit([1, 4], o), "it upsamples x2 per stage, but stage 0 to 1 is x4");
    assert.equal(
      UNET_DECODER.misfit([4, 8], o),
      "its head upsamples x2 at most, and the shallowest stage has stride 4",
    );
    assert.equal(CONV_STACK_DECODER.misfit([4, 8], {}), null);
    assert.equal(CONV_STACK_DECODER.misfit([2, 3], {}), "stage 1's stride 3 is not a multiple of the one before");
  });
});
