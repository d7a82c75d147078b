import * as tf from "@tensorflow/tfjs";
import { SegkitError } from "../core/errors.js";
import type { OptimizerConfig } from "./config.js";
import { applyAdam } from "./fused-adam.js";

/**
 * The optimizers of `TrainConfig.optimizer` on tfjs's own (`tf.train.adam`, `tf.train.momentum`), with what tfjs
 * leaves out: a learning rate that changes between epochs, L2 weight decay, and a state that round-trips exactly.
 *
 * STATE: tfjs optimizers give their slots with `getWeights()` (iteration count, then Adam's first and second
 * moments / SGD's momentum buffers, one per trainable weight in the order of the gradients) and take them back with
 * `setWeights()`. Adam's `setWeights` recomputes its bias-correction accumulators as beta^(iterations + 1) with `pow`,
 * while training got them by repeated multiplication: in float32 the two differ in the last bits, enough to make a
 * resumed run drift from an uninterrupted one. So the state saved here also holds those two scalars, restored as
 * they were.
 */

/** A named tensor, as tfjs optimizers' `getWeights`/`setWeights` take them. */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

export interface TrainOptimizer {
  readonly config: OptimizerConfig;
  readonly optimizer: tf.Optimizer;
  setLearningRate(lr: number): void;
  /**
   * One step on `vars`: gradients of `loss()` (which runs in the tape; only the returned scalar is kept), plus
   * weightDecay * w, applied in the order of `vars`. Returns the loss (the caller disposes it).
   */
  step(loss: () => tf.Scalar, vars: tf.Variable[]): tf.Scalar;
  /** The slots as named tensors (copies; the caller disposes them) and the scalars beside them. */
  getState(): Promise<{ tensors: NamedTensor[]; scalars: Record<string, number> }>;
  /** Restores a state from `getState` (the tensors are copied; the caller keeps ownership). */
  setState(tensors: NamedTensor[], scalars: Record<string, number>): Promise<void>;
  dispose(): void;
}

/** The Adam internals `setState` restores (not in tfjs's typings). */
interface AdamInternals {
  learningRate: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
}

export function createOptimizer(config: OptimizerConfig): TrainOptimizer {
  const optimizer =
    config.name === "adam"
      ? tf.train.adam(config.lr, config.beta1, config.beta2, config.epsilon)
      : tf.train.momentum(config.lr, config.momentum, config.nesterov);
  const adam = optimizer as unknown as AdamInternals;
  return {
    config,
    optimizer,
    setLearningRate(lr) {
      if (config.name === "adam") adam.learningRate = lr;
      else (optimizer as tf.MomentumOptimizer).setLearningRate(lr);
    },
    step(loss, vars) {
      const { value, grads } = tf.variableGrads(loss, vars);
      const decay = config.weightDecay;
      const named = tf.tidy(() =>
        vars.map((v) => {
          const g = grads[v.name] ?? tf.zerosLike(v); // a weight the loss does not reach
          return { name: v.name, tensor: decay > 0 ? g.add(v.mul(decay)) : g.clone() };
        }),
      );
      tf.dispose(grads);
      // Adam: segkit's fused update, bit for bit tfjs's (fused-adam.ts)
      if (config.name === "adam") applyAdam(optimizer as tf.AdamOptimizer, named);
      else optimizer.applyGradients(named);
      tf.dispose(named.map((n) => n.tensor));
      return value;
    },
    async getState() {
      const weights = await optimizer.getWeights();
      // the iteration scalar is new; the slots are the optimizer's own variables: copy them
      const tensors = weights.map((w, i) => ({ name: w.name, tensor: i === 0 ? w.tensor : w.tensor.clone() }));
      const scalars: Record<string, number> = {};
      if (config.name === "adam") {
        scalars.accBeta1 = (await adam.accBeta1.data())[0] as number;
        scalars.accBeta2 = (await adam.accBeta2.data())[0] as number;
      }
      return { tensors, scalars };
    },
    async setState(tensors, scalars) {
      const old = await optimizer.getWeights();
      tf.dispose(old[0]?.tensor); // the fresh iteration scalar; a fresh optimizer has no slots yet
      if (old.length > 1) throw new SegkitError("optimizer state can only be restored into a fresh optimizer");
      await optimizer.setWeights(tensors);
      if (config.name === "adam") {
        const { accBeta1, accBeta2 } = scalars;
        if (accBeta1 === undefined || accBeta2 === undefined) {
          throw new SegkitError("Adam optimizer state without accBeta1/accBeta2");
        }
        tf.tidy(() => {
          adam.accBeta1.assign(tf.scalar(accBeta1));
          adam.accBeta2.assign(tf.scalar(accBeta2));
        });
      }
    },
    dispose() {
      optimizer.dispose();
      // tfjs 4.22's MomentumOptimizer.dispose forgets the learning-rate scalar its SGD base keeps
      if (config.name === "sgd") (optimizer as unknown as { c?: tf.Scalar }).c?.dispose();
    },
  };
}
