/**
 * Names of segkit's own tfjs kernels, registered only where their implementation loads (see native.ts); ops check
 * `tf.getKernel(name, tf.getBackend())` before using one. No imports: models import this from browser bundles too.
 */
/** Training-mode batch norm over every axis but the last: inputs x, gamma, beta; outputs y, mean, variance. */
export const BATCH_NORM_TRAINING = "SegkitBatchNormTraining";
/** Its gradient: inputs dy, x, mean, variance, gamma; outputs dx, dgamma, dbeta. */
export const BATCH_NORM_TRAINING_GRAD = "SegkitBatchNormTrainingGrad";
