import * as tf from "@tensorflow/tfjs";
import { SegkitError } from "../core/errors.js";
import { binaryCrossEntropy, crossEntropy, diceLoss, focalLoss, type LossFn } from "./losses.js";
import {
  type BinaryCrossEntropyOptions,
  type CrossEntropyOptions,
  type DiceOptions,
  type FocalOptions,
  validateBinaryCrossEntropyOptions,
  validateCrossEntropyOptions,
  validateDiceOptions,
  validateFocalOptions,
} from "./options.js";

/**
 * The one registry of losses: `createLoss(config)` turns a name or a config into a `LossFn`, validating every
 * option once, up front. Configs:
 * - a name: `"ce"`, `"bce"`, `"dice"`, `"focal"` (default options), `"ce+dice"` (the common multiclass default:
 *   CE + Dice, weight 1 each) or `"bce+dice"` (its binary form);
 * - one loss with options: `{ loss: "dice", options: { smooth: 1 } }`;
 * - a weighted sum: `{ sum: [{ loss: "ce", weight: 1 }, { loss: { loss: "dice", options: {...} }, weight: 0.5 }] }`
 *   (weight >= 0, default 1; items may be any config, sums included).
 */
export type LossConfig =
  | LossName
  | { loss: "ce"; options?: CrossEntropyOptions }
  | { loss: "bce"; options?: BinaryCrossEntropyOptions }
  | { loss: "dice"; options?: DiceOptions }
  | { loss: "focal"; options?: FocalOptions }
  | { sum: readonly { loss: LossConfig; weight?: number }[] };

/** Each base loss: options validated once, then the loss with those options. */
const BASE = {
  ce: (o?: CrossEntropyOptions): LossFn => {
    const v = validateCrossEntropyOptions(o);
    return (yTrue, yPred) => crossEntropy(yTrue, yPred, v);
  },
  bce: (o?: BinaryCrossEntropyOptions): LossFn => {
    const v = validateBinaryCrossEntropyOptions(o);
    return (yTrue, yPred) => binaryCrossEntropy(yTrue, yPred, v);
  },
  dice: (o?: DiceOptions): LossFn => {
    const v = validateDiceOptions(o);
    return (yTrue, yPred) => diceLoss(yTrue, yPred, v);
  },
  focal: (o?: FocalOptions): LossFn => {
    const v = validateFocalOptions(o);
    return (yTrue, yPred) => focalLoss(yTrue, yPred, v);
  },
} as const;

const COMPOUND: Record<"ce+dice" | "bce+dice", LossConfig> = {
  "ce+dice": { sum: [{ loss: "ce" }, { loss: "dice" }] },
  "bce+dice": { sum: [{ loss: "bce" }, { loss: "dice" }] },
};

export type LossName = "ce" | "bce" | "dice" | "focal" | "ce+dice" | "bce+dice";

/** Every registered name. */
export const LOSS_NAMES: readonly LossName[] = ["ce", "bce", "dice", "focal", "ce+dice", "bce+dice"];

const unknown = (what: string) =>
  new SegkitError(`unknown loss ${what}; valid: ${LOSS_NAMES.join(", ")}, or { sum: [{ loss, weight }] }`);

const isBase = (name: unknown): name is keyof typeof BASE => typeof name === "string" && Object.hasOwn(BASE, name);
const isCompound = (name: unknown): name is keyof typeof COMPOUND =>
  typeof name === "string" && Object.hasOwn(COMPOUND, name);

/** A loss from its name or config; throws a SegkitError on an unknown name or a bad option. */
export function createLoss(config: LossConfig): LossFn {
  if (typeof config === "string") {
    if (isBase(config)) return BASE[config]();
    if (isCompound(config)) return createLoss(COMPOUND[config]);
    throw unknown(JSON.stringify(config));
  }
  if (config !== null && typeof config === "object" && "sum" in config) return weightedSum(config.sum);
  if (config !== null && typeof config === "object" && "loss" in config) {
    if (isBase(config.loss)) return BASE[config.loss](config.options as never);
    if (isCompound(config.loss)) {
      throw new SegkitError(`loss "${config.loss}" takes no options`, { hint: "use { sum: [...] } to set them" });
    }
    throw unknown(JSON.stringify(config.loss));
  }
  throw unknown(JSON.stringify(config));
}

function weightedSum(items: readonly { loss: LossConfig; weight?: number }[]): LossFn {
  if (!Array.isArray(items) || items.length === 0) throw new SegkitError("loss sum: needs at least one { loss }");
  const terms = items.map((item, i) => {
    const weight = item.weight ?? 1;
    if (!Number.isFinite(weight) || weight < 0) {
      throw new SegkitError(`loss sum: item ${i} has weight ${weight}; weights must be finite and >= 0`);
    }
    return { fn: createLoss(item.loss), weight };
  });
  return (yTrue, yPred) => tf.tidy(() => tf.addN(terms.map((t) => t.fn(yTrue, yPred).mul(t.weight))) as tf.Scalar);
}
