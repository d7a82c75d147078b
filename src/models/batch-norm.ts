/**
 * Batch normalisation whose training step is one op with a closed-form gradient. tfjs-layers' `BatchNormalization`
 * computes the batch statistics with `tf.moments` (Mean, Cast, Sub, Square, Mean) and normalises with `FusedBatchNorm`;
 * backpropagation then walks every one of those ops and the three paths into x (direct, mean, variance), about a
 * dozen full-size passes per layer. Here, for the usual case (channels last, scale and center on), the forward
 * pass is mean, variance and the normalisation under `tf.customGrad`, and the gradient is, with M pixels per
 * channel, rstd = 1/sqrt(var + eps), xc = x - mean, sums over all axes but the channel one:
 *   dbeta = sum(dy)     dgamma = rstd * sum(dy * xc)
 *   dx = a * dy + b * xc + c,  a = gamma * rstd,  b = -gamma * rstd^3 * sum(dy * xc) / M,  c = -a * sum(dy) / M
 * (the textbook batch-norm backward, mean and variance paths included): four full-size passes. Inference, other
 * axes and `scale`/`center` off run the stock layer. Same weights, names, config and class name as the stock layer,
 * so saved models, weight loading and ONNX export see a `BatchNormalization`; registered for deserialisation so
 * that loaded models train fast too.
 */
import * as tf from "@tensorflow/tfjs";

/**
 * Kernels that run `batchNormTraining` in one op each where a backend registers them (segkit's native kernels on
 * wasm, backend/native.ts); elsewhere the tfjs ops below. Forward: inputs x, gamma, beta (attr epsilon); outputs y,
 * mean, variance. Gradient: inputs dy, x, mean, variance, gamma; outputs dx, dgamma, dbeta.
 */
export const BATCH_NORM_TRAINING = "SegkitBatchNormTraining";
export const BATCH_NORM_TRAINING_GRAD = "SegkitBatchNormTrainingGrad";

interface StockBatchNorm extends tf.layers.Layer {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tf.LayerVariable;
  beta: tf.LayerVariable;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}
type Kwargs = Record<string, unknown>;
type StockBatchNormClass = new (args?: object) => StockBatchNorm;

/** tfjs-layers' BatchNormalization class (not exported by name from @tensorflow/tfjs). */
const StockBatchNormalization = Object.getPrototypeOf(tf.layers.batchNormalization({}))
  .constructor as StockBatchNormClass;

/**
 * `op(x, v)` for x [..., W, C] and a per-channel v [C], with x viewed as rows of W * C values and v tiled W times:
 * the same values as the broadcast over C, but tfjs-backend-wasm's XNNPACK binary ops run a row at a time, and rows
 * of C (16) values cost about 3x rows of W * C ([8,128,128,16]: ~0.8 ms instead of ~2.5 for a Sub on 2 threads).
 */
function perChannel(op: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, x: tf.Tensor, v: tf.Tensor): tf.Tensor {
  if (x.rank < 2) return op(x, v);
  const w = x.shape[x.rank - 2] as number;
  const c = x.shape[x.rank - 1] as number;
  return tf.reshape(op(tf.reshape(x, [-1, w * c]), tf.tile(tf.reshape(v, [c]), [w])), x.shape);
}

/**
 * Training-mode batch norm over every axis but the last: returns the normalised x and the batch mean and (biased)
 * variance; gradients flow to x, gamma and beta by the closed form above. Full-size passes: the mean (one read),
 * xc = x - mean, xc * xc and its mean, the normalisation of xc (FusedBatchNorm with mean 0: one pass on wasm);
 * backward: sum(dy), dy * xc and its sum, a * dy, b * xc + c (FusedBatchNorm again) and the sum of the two.
 * xc is kept for the backward pass instead of x (one tensor of x's size either way).
 */
export function batchNormTraining(
  x: tf.Tensor,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
): { y: tf.Tensor; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  if (x.dtype === "float32" && tf.getKernel(BATCH_NORM_TRAINING, tf.getBackend())) {
    return nativeBatchNormTraining(x, gamma, beta, epsilon);
  }
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const m = x.size / (x.shape[x.rank - 1] as number);
  let stats: [tf.Tensor1D, tf.Tensor1D] | undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, b, save] = args as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const mean = tf.mean(xi, axes) as tf.Tensor1D;
    const xc = perChannel(tf.sub, xi, mean); // x - mean exactly, as tf.sub / tf.squaredDifference compute it
    const variance = tf.mean(tf.mul(xc, xc), axes) as tf.Tensor1D;
    stats = [tf.keep(mean), tf.keep(variance)];
    const zero = tf.zerosLike(mean);
    save([xc, g, zero, variance]);
    return {
      value: tf.batchNorm(xc, zero, variance, b, g, epsilon),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xcs, gs, zeros, v] = saved as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
        const rstd = tf.rsqrt(tf.add(v, epsilon));
        const sumDy = tf.sum(dy, axes);
        const sumDyXc = tf.sum(tf.mul(dy, xcs), axes); // sum(dy * (x - mean))
        const a = tf.mul(gs, rstd);
        const bCoef = tf.div(tf.mul(tf.neg(a), tf.mul(tf.square(rstd), sumDyXc)), m);
        const c = tf.div(tf.mul(tf.neg(a), sumDy), m);
        // b * xc + c in one pass: FusedBatchNorm with mean 0, variance 1 - eps (rstd 1), scale b, offset c
        const affine = tf.batchNorm(xcs, zeros, tf.fill(zeros.shape, 1 - epsilon), c, bCoef, epsilon);
        return [tf.add(perChannel(tf.mul, dy, a), affine), tf.mul(rstd, sumDyXc), sumDy];
      },
    };
  });
  const y = op(x, gamma, beta);
  const [mean, variance] = stats as [tf.Tensor1D, tf.Tensor1D];
  return { y, mean, variance };
}

/**
 * `batchNormTraining` by segkit's native kernels (backend/native.ts), where they are registered for the active
 * backend: the same formulas in three passes forward (mean, variance, the normalisation) and two backward (the
 * sums; dx), sums in double. x itself is kept for the backward pass.
 */
function nativeBatchNormTraining(
  x: tf.Tensor,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
): { y: tf.Tensor; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  let stats: [tf.Tensor1D, tf.Tensor1D] | undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, b, save] = args as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const inputs = { x: xi, gamma: g, beta: b };
    const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_TRAINING, inputs, { epsilon }) as [
      tf.Tensor,
      tf.Tensor1D,
      tf.Tensor1D,
    ];
    stats = [tf.keep(mean), tf.keep(variance)];
    save([xi, mean, variance, g]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ms, vs, gs] = saved as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
        const gradInputs = { dy, x: xs, mean: ms, variance: vs, gamma: gs };
        return tf.engine().runKernel(BATCH_NORM_TRAINING_GRAD, gradInputs, { epsilon }) as tf.Tensor[];
      },
    };
  });
  const y = op(x, gamma, beta);
  const [mean, variance] = stats as [tf.Tensor1D, tf.Tensor1D];
  return { y, mean, variance };
}

export class BatchNormalization extends StockBatchNormalization {
  static className = "BatchNormalization";

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const lastAxis = x !== undefined && (this.axis === -1 || this.axis === x.rank - 1);
    if (!kwargs.training || !x || !lastAxis || !this.scale || !this.center) return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const { y, mean, variance } = batchNormTraining(
        x,
        this.gamma.read() as tf.Tensor1D,
        this.beta.read() as tf.Tensor1D,
        this.epsilon,
      );
      updateMovingStatistics(this, mean, variance);
      tf.dispose([mean, variance]);
      return y;
    });
  }
}
/**
 * The layer's moving statistics after a training batch of mean `mean` and (biased) variance `variance`, exactly as
 * the stock layer updates them: v <- v - (v - batch) * (1 - momentum).
 */
export function updateMovingStatistics(layer: BatchNormalization, mean: tf.Tensor, variance: tf.Tensor): void {
  for (const [variable, value] of [
    [layer.movingMean, mean],
    [layer.movingVariance, variance],
  ] as const) {
    tf.tidy(() => {
      const orig = variable.read();
      variable.write(tf.sub(orig, tf.mul(tf.sub(orig, value), 1 - layer.momentum)));
    });
  }
}

tf.serialization.registerClass(
  BatchNormalization as unknown as tf.serialization.SerializableConstructor<tf.layers.Layer>,
);

/** `tf.layers.batchNormalization` with the fast training step. */
export function batchNormalization(args: { name?: string; momentum?: number; epsilon?: number } = {}): tf.layers.Layer {
  return new BatchNormalization(args);
}
