import * as tf from "@tensorflow/tfjs";

/** How a model's logits `[B, H, W, C]` turn into probabilities: C = 1 binary (sigmoid), C >= 2 multi-class (softmax). */
export type HeadMode = "binary" | "multiclass";

export function headMode(model: tf.LayersModel): HeadMode {
  return model.outputs[0]?.shape.at(-1) === 1 ? "binary" : "multiclass";
}

/**
 * Logits `[B, H, W, C]` -> probabilities of the same shape: sigmoid for C = 1 (the foreground probability),
 * softmax over the last axis for C >= 2. The caller disposes the result.
 */
export function probabilities(logits: tf.Tensor): tf.Tensor {
  return logits.shape.at(-1) === 1 ? tf.sigmoid(logits) : tf.softmax(logits);
}
