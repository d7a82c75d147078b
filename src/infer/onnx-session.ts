import type * as tf from "@tensorflow/tfjs";
import { SegkitError } from "../core/errors.js";
import { exportOnnx } from "../models/onnx.js";
import { createOnnxSession, DEFAULT_ONNX_SESSION_OPTIONS, type OnnxSessionOptions } from "../sam/runtime.js";

/**
 * Inference of a segkit model on onnxruntime-node (CPU, graph optimisations on): the model is written to ONNX by
 * `exportOnnx` (or given as ONNX bytes from it) and run there, typically several times faster than tfjs.
 */

export type OnnxPredictorOptions = OnnxSessionOptions;
export const DEFAULT_ONNX_PREDICTOR_OPTIONS = DEFAULT_ONNX_SESSION_OPTIONS;
export interface OnnxPredictor {
  /**
   * `images`: `[batch, height, width, 3]` float32 0..255, NHWC (what `model.predict` takes), `height` x `width`
   * the model's input size. Returns the logits `[batch, height, width, C]` float32, NHWC.
   */
  predict(images: Float32Array, batch: number, height: number, width: number): Promise<Float32Array>;
  /** Releases the onnxruntime session. */
  dispose(): Promise<void>;
}

/**
 * An onnxruntime-node predictor for a tfjs model built by `createModel` (exported with `exportOnnx`, batch
 * dynamic) or for ONNX bytes written by `exportOnnx` (input `image`, output `logits`).
 */
export async function createOnnxPredictor(
  model: tf.LayersModel | Uint8Array,
  options: OnnxPredictorOptions = {},
): Promise<OnnxPredictor> {
  const session = await createOnnxSession(model instanceof Uint8Array ? model : exportOnnx(model), options);
  const [inputName = "image"] = session.inputNames;
  const [outputName = "logits"] = session.outputNames;
  return {
    async predict(images, batch, height, width) {
      if (images.length !== batch * height * width * 3) {
        throw new SegkitError(
          `predict: images has ${images.length} values, expected batch x height x width x 3 = ` +
            `${batch} x ${height} x ${width} x 3`,
        );
      }
      const outputs = await session.run({ [inputName]: { data: images, dims: [batch, height, width, 3] } });
      const logits = outputs[outputName];
      if (!logits) throw new SegkitError(`predict: the ONNX graph has no output ${outputName}`);
      return logits.data;
    },
    dispose: () => session.dispose(),
  };
}
