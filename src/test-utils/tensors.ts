import * as tf from "@tensorflow/tfjs";

/** A fixed `[B, H, W, 3]` float32 batch of 0..255 values (0, 1, 2, ... mod 256, row-major). The caller disposes it. */
export function rampImages(b: number, h = 32, w = 32): tf.Tensor4D {
  return tf.tidy(
    () =>
      tf
        .range(0, b * h * w * 3)
        .mod(256)
        .reshape([b, h, w, 3])
        .toFloat() as tf.Tensor4D,
  );
}
