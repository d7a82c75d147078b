import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import { SegkitError } from "../core/errors.js";
import type { DecoderDefinition } from "./decoders/decoder.js";
import { DECODER_NAMES, DECODERS, type DecoderName } from "./decoders/registry.js";
import { unetDecoderOptions } from "./decoders/unet.js";
import { convStackEncoderOptions, DEFAULT_CONV_STACK_ENCODER_OPTIONS } from "./encoders/conv-stack.js";
import type { Encoder, EncoderDefinition } from "./encoders/encoder.js";
import { DEFAULT_MOBILENETV2_ENCODER_OPTIONS, mobileNetV2EncoderOptions } from "./encoders/mobilenet-v2.js";
import { ENCODER_NAMES, ENCODERS, type EncoderName } from "./encoders/registry.js";
import { DEFAULT_UNET_ENCODER_OPTIONS, unetEncoderOptions } from "./encoders/unet.js";
import { checkDivisible, commonOptions, DEFAULT_COMMON_OPTIONS, validateOptions } from "./options.js";
import { freezeEncoder } from "./weights.js";

/**
 * The model factory, segmentation_models_pytorch's `create_model`: any encoder of the encoder registry with any
 * decoder of the decoder registry that fits it,
 *   createModel({ encoder: "mobilenetv2", decoder: "unet", numClasses: 3 })
 *   createModel({ encoder: { name: "unet", depth: 5 }, decoder: { name: "conv-stack" }, inputSize: [256, 256] })
 * or a preset by name, `createModel("unet", options)`: "unet", "encoder-decoder" and "mobilenetv2-unet" (each
 * a fixed composition with its own flat options, see `MODEL_PRESETS`).
 *
 * Every model maps a `[B, H, W, 3]` float32 image in 0..255 (rescaled inside the model) to logits `[B, H, W, C]`
 * float32, C = `numClasses` (1 = binary). No activation at the end: losses and predictions apply sigmoid / softmax
 * (`probabilities` in `head.ts`).
 */

const posInt = z.number().int().min(1);

// ---------------------------------------------------------------------------------------------------------------
// composition

type Named<N extends string, O> = N | ({ name: N } & O);
type EncoderInputs = { [N in EncoderName]: z.input<(typeof ENCODERS)[N]["schema"]> };
type DecoderInputs = { [N in DecoderName]: z.input<(typeof DECODERS)[N]["schema"]> };
/** An encoder by name, or `{ name, ...its options }`. */
export type EncoderChoice = { [N in EncoderName]: Named<N, EncoderInputs[N]> }[EncoderName];
/** A decoder by name, or `{ name, ...its options }`. */
export type DecoderChoice = { [N in DecoderName]: Named<N, DecoderInputs[N]> }[DecoderName];

/** Options of a composed model besides the encoder and the decoder. */
export const DEFAULT_COMPOSED_OPTIONS = { ...DEFAULT_COMMON_OPTIONS, freezeEncoder: false };
const composedSchema = z.strictObject({
  ...commonOptions,
  /** Build with the encoder frozen (`freezeEncoder`). */
  freezeEncoder: z.boolean().default(DEFAULT_COMPOSED_OPTIONS.freezeEncoder),
});

/** `createModel`'s composed form. */
export interface ModelSpec extends z.input<typeof composedSchema> {
  encoder: EncoderChoice;
  decoder: DecoderChoice;
}

/** A `ModelSpec` validated: names checked, every default filled in. */
export interface ResolvedModelSpec extends z.output<typeof composedSchema> {
  encoder: { name: EncoderName } & Record<string, unknown>;
  decoder: { name: DecoderName } & Record<string, unknown>;
}

/** Encoder and decoder names with a "+": "mobilenetv2+unet". */
export type ComposedName = `${EncoderName}+${DecoderName}`;

/** What a model is called in its metadata and model card: its preset, or its encoder and decoder. */
export type ModelName = ModelArch | ComposedName;

/** Stored in the model (`getUserDefinedMetadata()`, saved with it): what built it. */
export interface SegkitModelMetadata {
  segkit: {
    arch: ModelName;
    /** A preset's options, or the `ResolvedModelSpec`; defaults filled in. */
    options: Record<string, unknown>;
    /** The encoder's stages (freezeEncoder and loadEncoderWeights find the encoder's layers from the last one). */
    encoder: Encoder["stages"];
  };
}

/** `{ name, ...options }` of a registry entry from a name or such an object, the options validated. */
function resolvePart<R extends Record<string, { schema: z.ZodType }>>(
  kind: "encoder" | "decoder",
  registry: R,
  value: unknown,
): { name: keyof R & string } & Record<string, unknown> {
  const { name, ...options } = (typeof value === "string" ? { name: value } : (value ?? {})) as { name?: unknown };
  if (typeof name !== "string" || !Object.hasOwn(registry, name)) {
    throw new SegkitError(
      `createModel: unknown ${kind} ${JSON.stringify(name)}; valid: ${Object.keys(registry).join(", ")}`,
    );
  }
  const schema = (registry[name] as R[string]).schema;
  return { name, ...(validateOptions(`${kind} ${name}`, schema, options) as object) };
}

/** Checks a composed model's names and options: a copy with every default filled in, or a `SegkitError`. */
export function validateModelSpec(spec: ModelSpec): ResolvedModelSpec {
  if (spec === null || typeof spec !== "object")
    throw new SegkitError("createModel: expected { encoder, decoder, ... }");
  const { encoder, decoder, ...rest } = spec;
  return {
    encoder: resolvePart("encoder", ENCODERS, encoder) as ResolvedModelSpec["encoder"],
    decoder: resolvePart("decoder", DECODERS, decoder) as ResolvedModelSpec["decoder"],
    ...validateOptions("model", composedSchema, rest),
  };
}

/**
 * Builds a validated composition: the fit of decoder and encoder and the input size are checked before any layer
 * is made (a refused model leaves no weights behind). `label` starts the error messages.
 */
function compose(label: string, spec: ResolvedModelSpec, meta: { arch: ModelName; options: object }): tf.LayersModel {
  const { name: encoderName, ...encoderOptions } = spec.encoder;
  const { name: decoderName, ...decoderOptions } = spec.decoder;
  // the options were validated by the entries' own schemas: their types can be erased here
  const E = ENCODERS[encoderName] as unknown as EncoderDefinition;
  const D = DECODERS[decoderName] as unknown as DecoderDefinition;
  const strides = E.strides(encoderOptions);
  const misfit = D.misfit(strides, decoderOptions);
  if (misfit) {
    throw new SegkitError(
      `${label} options: the ${decoderName} decoder does not fit the ${encoderName} encoder (stages at strides ` +
        `${strides.join(", ")}): ${misfit}`,
    );
  }
  const deepest = strides.at(-1) as number;
  checkDivisible(label, spec.inputSize, deepest, `the ${encoderName} encoder's deepest stage has stride ${deepest}`);
  const encoder = E.build(spec.inputSize, encoderOptions);
  const logits = D.build(encoder, decoderOptions, spec.numClasses);
  const model = tf.model({ inputs: encoder.input, outputs: logits, name: meta.arch.replace(/[-+]/g, "_") });
  const metadata: SegkitModelMetadata = {
    segkit: { arch: meta.arch, options: { ...meta.options }, encoder: encoder.stages },
  };
  model.setUserDefinedMetadata(metadata as unknown as object);
  if (spec.freezeEncoder) freezeEncoder(model);
  return model;
}

// ---------------------------------------------------------------------------------------------------------------
// presets: flat options of their own, mapped to a composition

export const DEFAULT_ENCODER_DECODER_OPTIONS = { ...DEFAULT_COMMON_OPTIONS, ...DEFAULT_CONV_STACK_ENCODER_OPTIONS };
const encoderDecoderSchema = z.strictObject({ ...commonOptions, ...convStackEncoderOptions });

/** U-Net defaults: 16-32-64-128 (Ronneberger et al. at full size: depth 5, baseFilters 64). */
export const DEFAULT_UNET_OPTIONS = {
  ...DEFAULT_COMMON_OPTIONS,
  ...DEFAULT_UNET_ENCODER_OPTIONS,
  upsample: "transpose" as "transpose" | "bilinear",
};
const unetSchema = z.strictObject({ ...commonOptions, ...unetEncoderOptions, ...unetDecoderOptions });

/** The TensorFlow segmentation tutorial's model: MobileNetV2 1.0, pix2pix decoder 512-256-128-64. */
export const DEFAULT_MOBILENETV2_UNET_OPTIONS = {
  ...DEFAULT_COMMON_OPTIONS,
  ...DEFAULT_MOBILENETV2_ENCODER_OPTIONS,
  decoderFilters: [512, 256, 128, 64],
  freezeEncoder: false,
};
const mobilenetSchema = z.strictObject({
  ...commonOptions,
  ...mobileNetV2EncoderOptions,
  /** Filters of the 4 pix2pix upsampling blocks, deepest first (H/32 -> H/16 first). */
  decoderFilters: z.array(posInt).length(4).default(DEFAULT_MOBILENETV2_UNET_OPTIONS.decoderFilters),
  /** Build with the encoder frozen (`freezeEncoder`). */
  freezeEncoder: z.boolean().default(DEFAULT_MOBILENETV2_UNET_OPTIONS.freezeEncoder),
});

export type EncoderDecoderOptions = z.input<typeof encoderDecoderSchema>;
export type UnetOptions = z.input<typeof unetSchema>;
export type MobileNetV2UnetOptions = z.input<typeof mobilenetSchema>;

export interface ModelOptions {
  "encoder-decoder": EncoderDecoderOptions;
  unet: UnetOptions;
  "mobilenetv2-unet": MobileNetV2UnetOptions;
}
export type ModelArch = keyof ModelOptions;

interface Preset<O> {
  schema: z.ZodType<O, unknown>;
  /** The composition the validated preset options stand for. */
  spec(o: O): ModelSpec;
}
const preset = <O>(p: Preset<O>) => p;

/** The presets: name -> the composition they build (the same layers, names and weights as before composition). */
export const MODEL_PRESETS = {
  "encoder-decoder": preset({
    schema: encoderDecoderSchema,
    spec: ({ filters, ...common }) => ({
      ...common,
      encoder: { name: "conv-stack", filters },
      decoder: "conv-stack",
    }),
  }),
  unet: preset({
    schema: unetSchema,
    spec: ({ numClasses, inputSize, upsample, ...encoder }) => ({
      numClasses,
      inputSize,
      encoder: { name: "unet", ...encoder },
      decoder: { name: "unet", block: "double-conv", upsample, batchNorm: encoder.batchNorm },
    }),
  }),
  "mobilenetv2-unet": preset({
    schema: mobilenetSchema,
    spec: ({ numClasses, inputSize, alpha, decoderFilters, freezeEncoder }) => ({
      numClasses,
      inputSize,
      freezeEncoder,
      encoder: { name: "mobilenetv2", alpha },
      decoder: { name: "unet", block: "pix2pix", filters: decoderFilters, batchNorm: true },
    }),
  }),
} satisfies { [A in ModelArch]: Preset<z.output<z.ZodType>> };

export const MODEL_ARCHS = Object.keys(MODEL_PRESETS) as ModelArch[];
export { DECODER_NAMES, type DecoderName, ENCODER_NAMES, type EncoderName };

/**
 * Builds a model: a preset by name ("encoder-decoder", "unet", "mobilenetv2-unet", with that preset's `*Options`),
 * or a composition `{ encoder, decoder, numClasses?, inputSize?, freezeEncoder? }` (`ModelSpec`; the encoder and
 * the decoder each a registry name or `{ name, ...its options }`).
 * Input `[B, H, W, 3]` float32 0..255 with `[H, W] = inputSize`; output logits `[B, H, W, numClasses]`.
 * Throws a `SegkitError` listing the valid names for an unknown preset, encoder or decoder; naming each bad option;
 * or saying why a decoder does not fit an encoder. The options are not modified.
 */
export function createModel<A extends ModelArch>(arch: A, options?: ModelOptions[A]): tf.LayersModel;
export function createModel(spec: ModelSpec): tf.LayersModel;
export function createModel(archOrSpec: ModelArch | ModelSpec, options?: object): tf.LayersModel {
  if (typeof archOrSpec === "object" && archOrSpec !== null) {
    const spec = validateModelSpec(archOrSpec);
    const arch: ComposedName = `${spec.encoder.name}+${spec.decoder.name}`;
    return compose(arch, spec, { arch, options: spec });
  }
  const arch = archOrSpec;
  if (!Object.hasOwn(MODEL_PRESETS, arch)) {
    throw new SegkitError(
      `unknown model "${String(arch)}"; valid: ${MODEL_ARCHS.join(", ")}, or { encoder, decoder } with encoders ` +
        `${ENCODER_NAMES.join(", ")} and decoders ${DECODER_NAMES.join(", ")}`,
    );
  }
  const p = MODEL_PRESETS[arch] as Preset<object>;
  const o = validateOptions(arch, p.schema, options);
  return compose(arch, validateModelSpec(p.spec(o)), { arch, options: o });
}
