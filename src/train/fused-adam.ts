/**
 * tfjs's Adam update (`AdamOptimizer.applyGradients`, tfjs-core 4.22) as one JS loop per weight instead of about
 * fourteen tfjs kernels per weight (a U-Net's 50 weights: ~700 kernel calls per step, each with its own dispatch and
 * thread hand-off on the wasm backend). The arithmetic is the same float32 operations in the same order, each
 * rounded with Math.fround (exact: a float64 result of one +, -, *, / or sqrt of float32 values rounds to the
 * float32 result), so the weights, moments and bias-correction accumulators come out bit for bit as tfjs's:
 *   m' = m * b1 + g * (1 - b1)        v' = v * b2 + g^2 * (1 - b2)
 *   w' = (m' / (1 - accB1)) / (sqrt(v' / (1 - accB2)) + eps) * -lr + w        accB1 *= b1, accB2 *= b2
 * The optimizer's own state (its moment variables, created as tfjs names them, accBeta1/2, the iteration count)
 * is what it updates, so `getWeights`/`setWeights` and segkit's checkpoints see no difference.
 */
import * as tf from "@tensorflow/tfjs";

/** The AdamOptimizer internals this update reads and writes (not in tfjs's typings). */
interface AdamInternals {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  accumulatedSecondMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  incrementIterations(): void;
}

const f = Math.fround;

/** One Adam step of `optimizer` with `grads` (named by variable, in the order tfjs's applyGradients takes them). */
export function applyAdam(optimizer: tf.AdamOptimizer, grads: { name: string; tensor: tf.Tensor }[]): void {
  const a = optimizer as unknown as AdamInternals;
  const accB1 = a.accBeta1.dataSync()[0] as number;
  const accB2 = a.accBeta2.dataSync()[0] as number;
  const [b1, b2, eps] = [f(a.beta1), f(a.beta2), f(a.epsilon)];
  const [c1, c2] = [f(1 - a.beta1), f(1 - a.beta2)];
  const [d1, d2] = [f(1 - accB1), f(1 - accB2)];
  const minusLr = f(-a.learningRate);
  tf.tidy(() => {
    grads.forEach(({ name, tensor }, i) => {
      const value = tf.engine().registeredVariables[name];
      if (!value) throw new Error(`segkit: Adam has no variable named ${name}`);
      const slot = (originalName: string) => ({ originalName, variable: tf.zerosLike(value).variable(false) });
      a.accumulatedFirstMoment[i] ??= slot(`${name}/m`);
      a.accumulatedSecondMoment[i] ??= slot(`${name}/v`);
      const mVar = (a.accumulatedFirstMoment[i] as { variable: tf.Variable }).variable;
      const vVar = (a.accumulatedSecondMoment[i] as { variable: tf.Variable }).variable;
      const g = tensor.dataSync() as Float32Array;
      const m = mVar.dataSync() as Float32Array;
      const v = vVar.dataSync() as Float32Array;
      const w = value.dataSync() as Float32Array;
      const m2 = new Float32Array(g.length);
      const v2 = new Float32Array(g.length);
      const w2 = new Float32Array(g.length);
      for (let k = 0; k < g.length; k++) {
        const gk = g[k] as number;
        const mk = f(f((m[k] as number) * b1) + f(gk * c1));
        const vk = f(f((v[k] as number) * b2) + f(f(gk * gk) * c2));
        const step = f(f(mk / d1) / f(f(Math.sqrt(f(vk / d2))) + eps));
        m2[k] = mk;
        v2[k] = vk;
        w2[k] = f(f(step * minusLr) + (w[k] as number));
      }
      mVar.assign(tf.tensor(m2, mVar.shape));
      vVar.assign(tf.tensor(v2, vVar.shape));
      value.assign(tf.tensor(w2, value.shape));
    });
    a.accBeta1.assign(tf.scalar(f(accB1 * b1)));
    a.accBeta2.assign(tf.scalar(f(accB2 * b2)));
  });
  a.incrementIterations();
}
