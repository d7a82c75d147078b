/**
 * onnxruntime sessions (src/onnx/ is the one place segkit imports onnxruntime-node): for SAM's networks, for segkit's
 * own models exported to ONNX (`predictor.ts`) and, synchronously, for the convolution kernels the wasm backend hands
 * to onnxruntime (`native.ts`). Threads and execution providers are set here, the graph's declared inputs and outputs
 * are read here, and tensors are converted here: callers see plain typed arrays, never onnxruntime's types.
 */
import * as ort from "onnxruntime-node";
import { SegkitError } from "../core/errors.js";

/**
 * An execution provider as onnxruntime names it ("cpu", "cuda", "coreml", "dml", ...) or its options object
 * (`{ name: "cuda", deviceId: 1 }`); onnxruntime tries them in order.
 */
export type ExecutionProvider = string | { readonly name: string; readonly [option: string]: unknown };

export interface OnnxSessionOptions {
  /** Threads onnxruntime uses inside one operator (intra-op). */
  threads?: number;
  /** Passed through to onnxruntime (`createOnnxSession` only); onnxruntime's default (CPU) when absent. */
  executionProviders?: readonly ExecutionProvider[];
  /**
   * Whether onnxruntime's intra-op threads spin while they wait for work (onnxruntime's default, true). Off, they
   * sleep: a short graph run per user action (a SAM click) then leaves the cores to the JavaScript between runs and
   * does not collapse when other processes load the machine (measured under load 4-6 on 2 cores: a SAM ViT-B decode
   * 203 ms spinning, 72 ms sleeping). `"run"`: they spin while a run is on and stop when it returns (onnxruntime's
   * `session.force_spinning_stop`): no wake-up between a run's operators, nothing spinning between runs.
   */
  spinning?: boolean | "run";
}

export const DEFAULT_ONNX_SESSION_OPTIONS: Required<Omit<OnnxSessionOptions, "executionProviders">> = {
  threads: 2,
  spinning: true,
};

export interface Float32Input {
  data: Float32Array;
  dims: number[];
}

/** For graphs with int64 inputs (transformers.js exports take `input_labels` as int64). */
export interface Int64Input {
  data: BigInt64Array;
  dims: number[];
}

/** For graphs with int32 inputs (SAM 2's prompt encoder: point labels). */
export interface Int32Input {
  data: Int32Array;
  dims: number[];
}

/** For graphs with bool inputs (SAM 2's memory attention masks): 0 / 1 bytes. */
export interface BoolInput {
  type: "bool";
  data: Uint8Array;
  dims: number[];
}

/** A graph input: float32, int64, int32 or bool. */
export type OnnxInput = Float32Input | Int64Input | Int32Input | BoolInput;

/**
 * A graph input or output as the model declares it: element type ("float32", "int64", ...) and dims, where a
 * string is a symbolic (dynamic) dimension and an empty shape means undeclared.
 */
export interface OnnxValueInfo {
  readonly name: string;
  readonly type: string;
  readonly shape: readonly (number | string)[];
}

export interface OnnxSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Declared inputs and outputs, in graph order. */
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
  /**
   * Runs the graph on float32 (or int64) inputs; returns the requested outputs (all when `outputNames` is absent)
   * as float32 data with their dims (int64 / int32 outputs converted, exact up to 2^24).
   */
  run(inputs: Record<string, OnnxInput>, outputNames?: readonly string[]): Promise<Record<string, Float32Input>>;
  /** Releases the session; again, nothing more. */
  dispose(): Promise<void>;
}

/** The graph's declared inputs or outputs (onnxruntime's metadata) in segkit's form. */
function declaredValues(meta: readonly ort.InferenceSession.ValueMetadata[]): OnnxValueInfo[] {
  return meta.map((m) =>
    m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: "non-tensor", shape: [] },
  );
}

/** Inputs as onnxruntime tensors (the arrays shared, not copied). */
export function toOrtFeeds(inputs: Record<string, OnnxInput>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(inputs)) {
    const d = t.data;
    feeds[name] =
      "type" in t
        ? new ort.Tensor("bool", t.data, t.dims)
        : d instanceof BigInt64Array
          ? new ort.Tensor("int64", d, t.dims)
          : d instanceof Int32Array
            ? new ort.Tensor("int32", d, t.dims)
            : new ort.Tensor("float32", d, t.dims);
  }
  return feeds;
}

/**
 * An output's data as float32: float32 as it is; int64 / int32 (class labels, indices: torchvision's detection
 * exports) converted, exact for magnitudes up to 2^24, an error beyond.
 */
function floatData(name: string, t: ort.Tensor): Float32Array {
  if (t.type === "float32") return t.data as Float32Array;
  if (t.type === "int64" || t.type === "int32") {
    const data = Float32Array.from(t.data as BigInt64Array | Int32Array, Number);
    if (data.some((v) => Math.abs(v) > 2 ** 24)) {
      throw new SegkitError(`ONNX output ${name} (${t.type}) has values beyond 2^24, not exact as float32`);
    }
    return data;
  }
  throw new SegkitError(`ONNX output ${name} is ${t.type}, expected float32 (or int64 / int32)`);
}

/**
 * A session (CPU unless `executionProviders` says otherwise) with all graph optimisations, over ONNX bytes or a
 * file path.
 */
export async function createOnnxSession(
  model: Uint8Array | string,
  options: OnnxSessionOptions = {},
): Promise<OnnxSession> {
  const session = await createOrtSession(model, options);
  let released: Promise<void> | undefined;
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    inputs: declaredValues(session.inputMetadata),
    outputs: declaredValues(session.outputMetadata),
    async run(inputs, outputNames) {
      const feeds = toOrtFeeds(inputs);
      return floatOutputs(outputNames ? await session.run(feeds, [...outputNames]) : await session.run(feeds));
    },
    dispose: () => {
      released ??= session.release();
      return released;
    },
  };
}

/** onnxruntime outputs as float32 data with their dims (`floatData`). */
export function floatOutputs(outputs: ort.InferenceSession.ReturnType): Record<string, Float32Input> {
  const result: Record<string, Float32Input> = {};
  for (const [name, t] of Object.entries(outputs)) result[name] = { data: floatData(name, t), dims: [...t.dims] };
  return result;
}

/** The onnxruntime session behind `createOnnxSession` (src/onnx/ only: callers outside see segkit's types). */
export async function createOrtSession(
  model: Uint8Array | string,
  options: OnnxSessionOptions = {},
): Promise<ort.InferenceSession> {
  const { threads, executionProviders, spinning } = { ...DEFAULT_ONNX_SESSION_OPTIONS, ...options };
  if (!Number.isInteger(threads) || threads < 1) {
    throw new SegkitError(`threads must be a positive integer, got ${threads}`);
  }
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    // onnxruntime's warnings (shape-inference merges, unused initialisers) say nothing a user can act on
    logSeverityLevel: 3,
    ...(spinning === "run"
      ? { extra: { session: { force_spinning_stop: "1" } } }
      : spinning
        ? {}
        : { extra: { session: { intra_op: { allow_spinning: "0" } } } }),
    ...(executionProviders
      ? { executionProviders: executionProviders as ort.InferenceSession.ExecutionProviderConfig[] }
      : {}),
  };
  try {
    return typeof model === "string"
      ? await ort.InferenceSession.create(model, sessionOptions)
      : await ort.InferenceSession.create(model, sessionOptions);
  } catch (err) {
    const missing = /\[(.+?)\] backend not found/.exec(String(err));
    if (missing) {
      throw new SegkitError(`execution provider "${missing[1]}" is not available in this onnxruntime-node`, {
        hint: "cpu always is; cuda and tensorrt on Linux x64 with their libraries, dml on Windows, coreml on macOS",
      });
    }
    throw err;
  }
}
