import * as tf from "@tensorflow/tfjs";

/**
 * Model outputs as class-index masks, for the metrics (which take typed arrays; they import no tfjs).
 * - `[B, H, W, C]` with C > 1: probabilities or logits; argmax over the last axis (add the batch axis to an
 *   `[H, W, C]` output first).
 * - `[B, H, W, 1]`, `[B, H, W]` or `[H, W]` float: one foreground score per pixel; >= threshold is class 1
 *   (threshold 0.5 for probabilities, 0 for logits).
 * - int32 labels of those shapes pass through.
 * Returns uint8 class indices, row-major, batch first (`[B, H, W]` flattened). Frees every tensor it makes.
 */
export async function tensorToLabels(t: tf.Tensor, options: { threshold?: number } = {}): Promise<Uint8Array> {
  const labels = tf.tidy(() => {
    const last = t.shape[t.shape.length - 1] ?? 1;
    if (t.dtype === "int32" || t.dtype === "bool") return t.rank === 4 && last === 1 ? t.squeeze([-1]) : t.clone();
    if (t.rank === 4 && last > 1) return tf.argMax(t, -1);
    return tf.greaterEqual(t, options.threshold ?? 0.5).toInt();
  });
  try {
    const values = await labels.data();
    const out = new Uint8Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const v = values[i] as number;
      if (!(v >= 0 && v <= 255))
        throw new RangeError(`label ${v} at index ${i} does not fit a class-index mask (0..255)`);
      out[i] = v;
    }
    return out;
  } finally {
    labels.dispose();
  }
}
