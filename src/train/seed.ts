import * as tf from "@tensorflow/tfjs";
import { deriveSeed } from "../core/random.js";

/**
 * Seeded initial weights. tfjs-layers draws initial weights with `Math.random` unless each initializer is given a
 * seed, and segkit's model builders give none; so a run's seed re-draws every randomly initialised weight here,
 * each from its own layer's initializer (same distribution, same fan-in/fan-out scaling) with the seed
 * deriveSeed(seed, k) for the k-th weight of the model. Deterministic initializers (zeros, ones, constants) are
 * left as built.
 */

/** The layer property holding the initializer of a weight, by the weight's short name (Keras's conventions). */
function initializerProperty(shortName: string): string {
  if (shortName === "depthwise_kernel") return "depthwiseInitializer";
  if (shortName === "pointwise_kernel") return "pointwiseInitializer";
  return `${shortName.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())}Initializer`;
}

interface Initializer {
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  apply(shape: number[], dtype?: tf.DataType): tf.Tensor;
}

const isInitializer = (x: unknown): x is Initializer =>
  typeof x === "object" && x !== null && "apply" in x && "getConfig" in x && "getClassName" in x;

/**
 * Re-draws the randomly initialised weights of `model` from `seed` (see the module comment). Returns the names
 * of weights it could not find an initializer for (left as they were: an empty list for segkit's models).
 */
export function seedWeights(model: tf.LayersModel, seed: number): string[] {
  const classes = tf.serialization.SerializationMap.getMap().classNameMap;
  const unknown: string[] = [];
  let k = 0;
  for (const layer of model.layers) {
    for (const weight of layer.weights) {
      k++;
      const shortName = weight.originalName.split("/").pop() ?? "";
      const init = (layer as unknown as Record<string, unknown>)[initializerProperty(shortName)];
      if (!isInitializer(init)) {
        unknown.push(weight.originalName);
        continue;
      }
      const config = init.getConfig();
      if (!("seed" in config)) continue; // deterministic
      const entry = classes[init.getClassName()];
      if (!entry) {
        unknown.push(weight.originalName);
        continue;
      }
      const [cls, fromConfig] = entry;
      // tfjs treats seed 0 as "no seed"
      const seeded = fromConfig(cls, { ...config, seed: deriveSeed(seed, k) || 1 }) as unknown as Initializer;
      const value = tf.tidy(() => seeded.apply(weight.shape as number[], weight.dtype));
      weight.write(value);
      value.dispose();
    }
  }
  return unknown;
}
