import { SegkitError } from "../core/errors.js";
import { createOnnxSession, DEFAULT_ONNX_SESSION_OPTIONS, type OnnxSessionOptions } from "./session.js";

/**
 * Inference of a segkit model on onnxruntime (CPU, graph optimisations on): the ONNX bytes `exportOnnx` writes
 * (`createOnnxPredictor` in infer/predict.ts exports a tfjs model first), typically several times faster than tfjs.
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

/** A predictor over ONNX bytes written by `exportOnnx` (input `image`, output `logits`, batch dynamic or fixed). */
export async function openOnnxPredictor(model: Uint8Array, options: OnnxPredictorOptions = {}): Promise<OnnxPredictor> {
  const session = await createOnnxSession(model, options);
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
