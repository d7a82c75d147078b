import { z } from "zod";
import { SegkitError } from "../core/errors.js";
import { createLoss, type LossConfig } from "../losses/registry.js";
import {
  type DecoderChoice,
  type EncoderChoice,
  MODEL_ARCHS,
  type ModelArch,
  type ModelName,
  validateModelSpec,
} from "../models/registry.js";

/**
 * The training configuration: one zod schema, `DEFAULT_TRAIN_CONFIG`, and `validateTrainConfig`, which merges the
 * defaults into a copy and throws a `SegkitError` naming every bad field (the user's object is never modified).
 * A string where an object with a `name` is expected is shorthand for that name with default options:
 * `optimizer: "sgd"` is `{ name: "sgd" }`, `schedule: "cosine"` is `{ name: "cosine" }`.
 *
 * Conventions (PyTorch's unless said otherwise):
 * - `epochs` counts passes over the training set; epochs are numbered from 1 in reports and `metrics.jsonl`.
 * - optimizer `weightDecay` is L2 added to the gradient (`grad += weightDecay * w` for every trainable weight, as
 *   `torch.optim.SGD/Adam(weight_decay=...)`), not AdamW's decoupled decay. Adam's `epsilon` defaults to Keras's 1e-7.
 * - the learning rate is set once per epoch by `schedule` (see `schedule.ts` for the formulas).
 * - `monitor` is the metric that picks `best/`, drives the `plateau` schedule and early stopping; `mode` "auto" is
 *   "min" for losses and "max" otherwise. An improvement is a change of more than `minDelta` in that direction.
 * - `classWeights` multiply the cross-entropy terms of `loss` (PyTorch `CrossEntropyLoss(weight=...)`): explicit,
 *   one per class, or "auto" = median-frequency balancing on the training set (see `class-weights.ts`).
 * - `model` is a preset, `{ arch: "unet", options: {...} }` (`createModel(arch, options)`), or a composition,
 *   `{ encoder: "mobilenetv2", decoder: { name: "unet", block: "pix2pix" }, options: { freezeEncoder: true } }`
 *   (`createModel({ encoder, decoder, ...options })`); the preset "unet" when neither is given.
 * - `model.options.numClasses` defaults to the dataset's class count (set 1 for a binary dataset's sigmoid head);
 *   `model.options.inputSize` is `inputSize`.
 * - `encoderWeights`: a pretrained weight file loaded into the encoder of a fresh run (`loadEncoderWeights`: a Keras
 *   `.h5`, a torchvision / timm `.safetensors`, a TF.js model; a relative path is taken from the working directory).
 *   `freezeEncoderEpochs`: the encoder is frozen (weights and batch-norm statistics) for that many first epochs, then
 *   trained with the rest, the optimizer starting afresh (the TensorFlow transfer-learning tutorial's recompile).
 *   Both are absent unless given, so runs saved before them still resume.
 * - `patches`: train on random `inputSize` windows at native resolution (`perImage` per image per epoch, centred on
 *   scored pixels: inside a field of view), not whole images resized; `predict`: how the model predicts whole
 *   images, recorded in its card (resize, or tiles with overlap and blend; tiles by default after patch training).
 *   Both absent unless given. `augment` is `true` (`DEFAULT_AUGMENT`), `false`, or the options to change (flips,
 *   quarter turns, scale-crop, rotation, brightness, contrast; see data/transforms.ts).
 */

const posInt = z.number().int().min(1);
const nonNegative = z.number().min(0);
const named = (v: unknown) => (typeof v === "string" ? { name: v } : v);

const adamSchema = z.strictObject({
  name: z.literal("adam"),
  lr: z.number().positive().default(1e-3),
  beta1: z.number().min(0).lt(1).default(0.9),
  beta2: z.number().min(0).lt(1).default(0.999),
  epsilon: z.number().positive().default(1e-7),
  weightDecay: nonNegative.default(0),
});
const sgdSchema = z.strictObject({
  name: z.literal("sgd"),
  lr: z.number().positive().default(0.01),
  momentum: z.number().min(0).lt(1).default(0.9),
  nesterov: z.boolean().default(false),
  weightDecay: nonNegative.default(0),
});
const optimizerSchema = z.preprocess(named, z.discriminatedUnion("name", [adamSchema, sgdSchema]));

const scheduleSchema = z.preprocess(
  named,
  z.discriminatedUnion("name", [
    z.strictObject({ name: z.literal("constant") }),
    /** lr * gamma^floor(epochIndex / every) (PyTorch StepLR). */
    z.strictObject({ name: z.literal("step"), every: posInt.default(10), gamma: z.number().gt(0).max(1).default(0.1) }),
    /** minLr + (lr - minLr) (1 + cos(pi * epochIndex / epochs)) / 2 (PyTorch CosineAnnealingLR, T_max = epochs). */
    z.strictObject({ name: z.literal("cosine"), minLr: nonNegative.default(0) }),
    /** lr * factor after more than `patience` epochs without improvement of the monitor (PyTorch ReduceLROnPlateau). */
    z.strictObject({
      name: z.literal("plateau"),
      patience: z.number().int().min(0).default(5),
      factor: z.number().gt(0).lt(1).default(0.1),
      minLr: nonNegative.default(0),
    }),
  ]),
);

const probability = z.number().min(0).max(1);
const range = (lo: number, hi?: number) =>
  z
    .tuple([z.number().min(lo), z.number().min(lo)])
    .refine(([a, b]) => a <= b && (hi === undefined || b <= hi), { message: "expected [low, high], low <= high" });
const augmentSchema = z.strictObject({
  hflip: probability.optional(),
  vflip: probability.optional(),
  rot90: probability.optional(),
  scale: range(0.01, 1).optional(),
  ratio: range(0.01).optional(),
  rotate: z.number().min(0).max(180).optional(),
  brightness: z.number().min(0).max(1).optional(),
  contrast: z.number().min(0).max(1).optional(),
});

const predictSchema = z.preprocess(
  (v) => (typeof v === "string" ? { mode: v } : v),
  z.discriminatedUnion("mode", [
    z.strictObject({ mode: z.literal("resize") }),
    z.strictObject({
      mode: z.literal("tile"),
      overlap: z.number().min(0).lt(1).default(0.25),
      blend: z.enum(["gaussian", "constant"]).default("gaussian"),
    }),
  ]),
);
/** How a model predicts whole images (see `predict` in the config). */
export type PredictSettings = z.output<typeof predictSchema>;

/** The config's `predict`, or its default: tiles after patch training, else resize. */
export function predictSettings(cfg: Pick<ResolvedTrainConfig, "predict" | "patches">): PredictSettings {
  return cfg.predict ?? (cfg.patches ? { mode: "tile", overlap: 0.25, blend: "gaussian" } : { mode: "resize" });
}

export const MONITORS = ["val/miou", "val/loss", "val/pixelAccuracy", "train/loss"] as const;
export type Monitor = (typeof MONITORS)[number];

const lossSchema = z.custom<LossConfig>().superRefine((loss, ctx) => {
  try {
    createLoss(loss);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: err instanceof Error ? err.message : String(err) });
  }
});

const part = <T>() => z.custom<T>((v) => typeof v === "string" || (typeof v === "object" && v !== null));

/** The model of a run: a preset with its options, or an encoder and a decoder with the other options. */
export type TrainModelConfig =
  | { arch: ModelArch; options: Record<string, unknown> }
  | { arch?: undefined; encoder: EncoderChoice; decoder: DecoderChoice; options: Record<string, unknown> };

const modelSchema = z
  .strictObject({
    arch: z.enum(MODEL_ARCHS as [ModelArch, ...ModelArch[]]).optional(),
    /** An encoder name or `{ name, ...its options }`, with `decoder`: see `createModel`. */
    encoder: part<EncoderChoice>().optional(),
    decoder: part<DecoderChoice>().optional(),
    /** The options of the preset, or of the composition besides encoder and decoder; checked when the model is built. */
    options: z.record(z.string(), z.unknown()).default({}),
  })
  .superRefine((m, ctx) => {
    if (m.encoder === undefined && m.decoder === undefined) return;
    if (m.arch !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["arch"],
        message: "give arch (a preset) or encoder and decoder, not both",
      });
    }
    if (m.encoder === undefined || m.decoder === undefined) {
      const [missing, given] = m.encoder === undefined ? ["encoder", "decoder"] : ["decoder", "encoder"];
      ctx.addIssue({ code: "custom", path: [missing], message: `required with ${given}` });
      return;
    }
    try {
      validateModelSpec({ encoder: m.encoder, decoder: m.decoder });
    } catch (err) {
      ctx.addIssue({ code: "custom", message: err instanceof Error ? err.message : String(err) });
    }
  })
  .transform(
    ({ arch, encoder, decoder, options }): TrainModelConfig =>
      encoder && decoder ? { encoder, decoder, options } : { arch: arch ?? "unet", options },
  );

const trainConfigSchema = z.strictObject({
  model: modelSchema.default({ arch: "unet", options: {} }),
  /** CE + Dice (weight 1 each): on Oxford Pet's trimaps it lifts the thin border class CE alone leaves near 0. */
  loss: lossSchema.default("ce+dice"),
  optimizer: optimizerSchema.prefault({ name: "adam" }),
  schedule: scheduleSchema.prefault({ name: "cosine" }),
  batchSize: posInt.default(8),
  epochs: posInt.default(20),
  /** [height, width] of the model input; samples are resized to it. */
  inputSize: z.tuple([posInt, posInt]).default([128, 128]),
  /** true: `DEFAULT_AUGMENT`; an object: those options, the rest from `DEFAULT_AUGMENT` (see data/transforms.ts). */
  augment: z.union([z.boolean(), augmentSchema]).default(true),
  /**
   * Train on random patches of `inputSize` at native resolution instead of whole images resized to it:
   * `perImage` patches per image per epoch, centred on scored pixels (inside the field of view; see
   * data/patches.ts); validation on a fixed set of such patches of the validation images.
   */
  patches: z.strictObject({ perImage: posInt }).optional(),
  /**
   * How the model predicts whole images (the card's `predict`, which `segkit predict` follows): resized to
   * `inputSize`, or in tiles of it at native resolution, overlapping by `overlap` and blended (see infer/tiling.ts).
   * Default: tiles (overlap 0.25, gaussian) with `patches`, else resize.
   */
  predict: predictSchema.optional(),
  /**
   * The momentum of every batch-norm layer's moving statistics in a fresh model (Keras's convention: moving =
   * momentum * moving + (1 - momentum) * batch; Keras's default 0.99, PyTorch's `momentum=0.1` is 0.9 here).
   * Default 0.9: a run of a few hundred steps needs it, with 0.99 the statistics lag the weights (on DRIVE the
   * inference-mode model predicted background only after 280 steps). null: the layers' own (a pretrained
   * encoder's as saved).
   */
  batchNormMomentum: z.number().min(0).lt(1).nullable().default(0.9),
  classWeights: z
    .union([z.literal("auto"), z.array(nonNegative).min(1)])
    .nullable()
    .default(null),
  /** Seeds the initial weights, the shuffle of every epoch and the augmentation draws. */
  seed: z.number().int().min(0).max(0xffffffff).default(0),
  monitor: z.enum(MONITORS).default("val/miou"),
  mode: z.enum(["auto", "min", "max"]).default("auto"),
  minDelta: nonNegative.default(0),
  /** Stop after `patience` epochs in a row without improvement of the monitor (Keras EarlyStopping); null: never. */
  earlyStopping: z.strictObject({ patience: posInt }).nullable().default(null),
  /** A pretrained weight file for the encoder, loaded before the first epoch of a fresh run. */
  encoderWeights: z.string().min(1).optional(),
  /** Epochs (the first ones) with the encoder frozen; then it is unfrozen and the optimizer starts afresh. */
  freezeEncoderEpochs: z.number().int().min(0).optional(),
});

type AdamInput = z.input<typeof adamSchema>;
type SgdInput = z.input<typeof sgdSchema>;
type ScheduleInput = z.input<(typeof scheduleSchema)["out"]>;
type PredictInput = z.input<(typeof predictSchema)["out"]>;

/** What a user writes: every field optional. */
export type TrainConfig = Omit<z.input<typeof trainConfigSchema>, "optimizer" | "schedule" | "loss" | "predict"> & {
  predict?: PredictInput | PredictInput["mode"];
  optimizer?: AdamInput | SgdInput | AdamInput["name"] | SgdInput["name"];
  schedule?: ScheduleInput | ScheduleInput["name"];
  loss?: LossConfig;
};
/** A validated configuration with every default filled in. */
export type ResolvedTrainConfig = z.output<typeof trainConfigSchema>;
export type OptimizerConfig = ResolvedTrainConfig["optimizer"];
export type ScheduleConfig = ResolvedTrainConfig["schedule"];

/** Parses `config`: a new object with every default filled in, or a `SegkitError` naming each bad field. */
export function validateTrainConfig(config: TrainConfig = {}): ResolvedTrainConfig {
  const parsed = trainConfigSchema.safeParse(config);
  if (parsed.success) return structuredClone(parsed.data);
  const problems = parsed.error.issues.map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message));
  throw new SegkitError(`training config: ${problems.join("; ")}`);
}

export const DEFAULT_TRAIN_CONFIG: Readonly<ResolvedTrainConfig> = Object.freeze(validateTrainConfig({}));

/** The direction in which `config.monitor` improves. */
export function monitorMode(config: Pick<ResolvedTrainConfig, "monitor" | "mode">): "min" | "max" {
  if (config.mode !== "auto") return config.mode;
  return config.monitor.endsWith("loss") ? "min" : "max";
}

/** The model's name in reports: its preset ("unet"), or its encoder and decoder ("mobilenetv2+unet"). */
export function trainModelName(model: TrainModelConfig): ModelName {
  if (model.arch !== undefined) return model.arch;
  const name = (c: EncoderChoice | DecoderChoice) => (typeof c === "string" ? c : c.name);
  return `${name(model.encoder)}+${name(model.decoder)}` as ModelName;
}
