/**
 * The one place segkit imports onnxruntime-node: sessions for SAM's networks and for segkit's own models exported
 * to ONNX (`createOnnxPredictor`). Callers see plain typed arrays, never onnxruntime's types.
 */
import * as ort from "onnxruntime-node";
import { SegkitError } from "../core/errors.js";

export interface OnnxSessionOptions {
  /** Threads onnxruntime uses inside one operator (intra-op). */
  threads?: number;
}

export const DEFAULT_ONNX_SESSION_OPTIONS: Required<OnnxSessionOptions> = { threads: 2 };

export interface Float32Input {
  data: Float32Array;
  dims: number[];
}

export interface OnnxSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs the graph on float32 inputs; returns every output as float32 data with its dims. */
  run(inputs: Record<string, Float32Input>): Promise<Record<string, Float32Input>>;
  /** Releases the session. */
  dispose(): Promise<void>;
}

/** A CPU session with all graph optimisations, over ONNX bytes or a file path. */
export async function createOnnxSession(
  model: Uint8Array | string,
  options: OnnxSessionOptions = {},
): Promise<OnnxSession> {
  const { threads } = { ...DEFAULT_ONNX_SESSION_OPTIONS, ...options };
  if (!Number.isInteger(threads) || threads < 1) {
    throw new SegkitError(`threads must be a positive integer, got ${threads}`);
  }
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
  };
  const session =
    typeof model === "string"
      ? await ort.InferenceSession.create(model, sessionOptions)
      : await ort.InferenceSession.create(model, sessionOptions);
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(inputs) {
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(inputs)) feeds[name] = new ort.Tensor("float32", t.data, t.dims);
      const outputs = await session.run(feeds);
      const result: Record<string, Float32Input> = {};
      for (const [name, t] of Object.entries(outputs)) {
        if (t.type !== "float32") throw new SegkitError(`ONNX output ${name} is ${t.type}, expected float32`);
        result[name] = { data: t.data as Float32Array, dims: [...t.dims] };
      }
      return result;
    },
    dispose: () => session.release(),
  };
}
