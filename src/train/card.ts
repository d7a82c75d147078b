import * as tf from "@tensorflow/tfjs";
import { VOC_PALETTE } from "../core/palette.js";
import type { Dataset } from "../data/dataset.js";
import { modelInfo } from "../models/info.js";
import type { ModelName, SegkitModelMetadata } from "../models/registry.js";
import type { EncoderWeightsInfo } from "../models/weights.js";
import { VERSION } from "../version.js";
import { type PredictSettings, predictSettings, type ResolvedTrainConfig, trainModelName } from "./config.js";
import type { EpochMetrics } from "./metrics.js";

/**
 * The model card (`card.json` in every checkpoint): what a model is, how to feed it and what it scored, readable
 * without segkit. Input: `[B, H, W, 3]` float32 RGB pixels 0..255, NHWC, at `inputSize` = [H, W]; the model
 * normalises inside (`x * scale + offset`, its Rescaling layer): callers must NOT normalise. Output: logits
 * `[B, H, W, C]` (softmax over C >= 2 classes, or one sigmoid channel for binary).
 */
export interface ModelCard {
  format: "segkit-model-card";
  segkitVersion: string;
  architecture: ModelName;
  /** The architecture's options as built (defaults filled in). */
  options: Record<string, unknown>;
  params: { total: number; trainable: number };
  /** Class names, index = class index; `palette[c]` its RGB colour. */
  classes: string[];
  palette: [number, number, number][];
  ignoreIndex: number;
  backgroundClass: number | null;
  /** The COCO category behind each class (`Dataset.classCategories`), for models trained on COCO files. */
  classCategories?: ({ id: number; isthing?: boolean } | null)[];
  /** [height, width] of the model input. */
  inputSize: [number, number];
  input: {
    layout: "NHWC";
    dtype: "float32";
    channels: "RGB";
    range: [0, 255];
    normalization: { inside: true; scale: number; offset: number };
  };
  output: { layout: "NHWC"; kind: "logits"; channels: number; activation: "softmax" | "sigmoid" };
  /**
   * How the model predicts a whole image, as it was trained (`segkit predict` follows it unless told otherwise):
   * `resize` to `inputSize` and the logits back; or `tile`: windows of `inputSize` at the image's own resolution,
   * overlapping by `overlap` (fraction of a window), logits blended (`gaussian` or `constant` weights).
   */
  predict: PredictSettings;
  /** The training configuration, with `classWeights` as the numbers used ("auto" resolved). */
  training: ResolvedTrainConfig & { classWeights: number[] | null; classWeightsFrom: "auto" | "config" | null };
  data: { format: string; trainSamples: number; valSamples: number };
  /** The pretrained weights loaded into the encoder before training (`training.encoderWeights`). */
  encoderWeights?: EncoderWeightsInfo;
  /**
   * An instance model (trained on `instanceTargetDataset`): the classes are background, boundary and one interior
   * class per category, in `categories` order; `targetsToInstances` splits its maps into instances.
   */
  instances?: { categories: { id: number; name: string }[]; boundary: number };
  /** The tfjs backend it was trained on (`wasm`, `tensorflow`, `cpu`). */
  backend: string;
  /** The epoch (from 1) this checkpoint was saved at, and its metrics. */
  epoch: number;
  metrics: EpochMetrics;
  best: { monitor: string; mode: "min" | "max"; epoch: number; value: number | null; metrics: EpochMetrics | null };
}

export interface CardInputs {
  model: tf.LayersModel;
  train: Dataset;
  val: Dataset;
  config: ResolvedTrainConfig;
  classWeights: number[] | null;
  mode: "min" | "max";
  epoch: number;
  metrics: EpochMetrics;
  best: EpochMetrics | null;
  encoderWeights?: EncoderWeightsInfo;
}

/** The card of `model` at an epoch (see `ModelCard`). */
export function modelCard(c: CardInputs): ModelCard {
  const meta = c.model.getUserDefinedMetadata() as Partial<SegkitModelMetadata> | undefined;
  const info = modelInfo(c.model);
  const classes = [...c.train.classNames];
  const palette = classes.map((_, k) => [...(c.train.palette?.[k] ?? VOC_PALETTE[k] ?? [0, 0, 0])]) as [
    number,
    number,
    number,
  ][];
  const rescaling = c.model.layers.find((l) => l.getClassName() === "Rescaling")?.getConfig() ?? {};
  const channels = c.model.outputs[0]?.shape.at(-1) ?? classes.length;
  return {
    format: "segkit-model-card",
    segkitVersion: VERSION,
    architecture: meta?.segkit?.arch ?? trainModelName(c.config.model),
    options: { ...(meta?.segkit?.options ?? c.config.model.options) },
    params: { total: info.totalParams, trainable: info.trainableParams },
    classes,
    palette,
    ignoreIndex: c.train.ignoreIndex,
    backgroundClass: c.train.backgroundClass ?? null,
    ...(c.train.classCategories ? { classCategories: c.train.classCategories.map((k) => (k ? { ...k } : null)) } : {}),
    inputSize: [...c.config.inputSize],
    input: {
      layout: "NHWC",
      dtype: "float32",
      channels: "RGB",
      range: [0, 255],
      normalization: {
        inside: true,
        scale: typeof rescaling.scale === "number" ? rescaling.scale : 1,
        offset: typeof rescaling.offset === "number" ? rescaling.offset : 0,
      },
    },
    output: { layout: "NHWC", kind: "logits", channels, activation: channels === 1 ? "sigmoid" : "softmax" },
    predict: predictSettings(c.config),
    training: {
      ...structuredClone(c.config),
      classWeights: c.classWeights,
      classWeightsFrom: c.config.classWeights === null ? null : c.config.classWeights === "auto" ? "auto" : "config",
    },
    data: { format: c.train.format, trainSamples: c.train.length, valSamples: c.val.length },
    ...(c.encoderWeights ? { encoderWeights: { ...c.encoderWeights } } : {}),
    ...(c.train.instanceTargets && c.train.categories
      ? {
          instances: {
            categories: c.train.categories.map((k) => ({ id: k.id, name: k.name })),
            boundary: c.train.instanceTargets.boundary,
          },
        }
      : {}),
    backend: tf.getBackend(),
    epoch: c.epoch,
    metrics: c.metrics,
    best: {
      monitor: c.config.monitor,
      mode: c.mode,
      epoch: c.best?.epoch ?? 0,
      value: c.best ? monitorValue(c.best, c.config.monitor) : null,
      metrics: c.best,
    },
  };
}

/** The monitored value of an epoch's metrics. */
export function monitorValue(m: EpochMetrics, monitor: ResolvedTrainConfig["monitor"]): number {
  return m[monitor];
}
