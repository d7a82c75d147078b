/**
 * A synchronous onnxruntime session, for callers that cannot await: the convolution kernels the wasm backend hands to
 * onnxruntime (`backend/onnx-conv.ts`) run inside a tfjs kernel.
 *
 * PRIVATE ENTRY POINT: this loads onnxruntime-node's native binding (`onnxruntime-node/dist/binding`) and calls its
 * `InferenceSession` directly (`loadModel`, `run` with fetches), which the package does not export or document: its
 * public `run` is the same call wrapped in a Promise. That is why package.json pins onnxruntime-node to an exact
 * version: before moving the pin, check this file against the new version and run onnx/onnx.test.ts and
 * backend/onnx-conv.test.ts. When the binding does not load, `createSyncOnnxSession` returns null and the wasm kernels stay in use.
 */
import { createRequire } from "node:module";
import type * as ort from "onnxruntime-node";
import { DEFAULT_ONNX_SESSION_OPTIONS, type Float32Input, type OnnxSessionOptions, toOrtFeeds } from "./session.js";

/** onnxruntime-node's native session object (`dist/binding`): synchronous load and run. */
interface NativeSession {
  readonly outputMetadata: { name: string }[];
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, ort.Tensor>, fetches: Record<string, ort.Tensor | null>, options: object): object;
  dispose(): void;
}
interface NativeBinding {
  binding: { InferenceSession: new () => NativeSession };
  initOrt(): void;
}

let native: NativeBinding | null | undefined;

/**
 * onnxruntime-node's synchronous binding (the package's public `run` is the same call wrapped in a Promise),
 * or null where it cannot load. Needed where the caller cannot await: inside a tfjs kernel.
 */
function nativeBinding(): NativeBinding | null {
  if (native === undefined) {
    try {
      native = createRequire(import.meta.url)("onnxruntime-node/dist/binding") as NativeBinding;
      native.initOrt();
    } catch {
      native = null;
    }
  }
  return native;
}

/** Whether onnxruntime-node's native binding loads on this machine. */
export function onnxRuntimeAvailable(): boolean {
  return nativeBinding() !== null;
}

export interface SyncOnnxSession {
  /**
   * Runs the graph on float32 inputs; returns the float32 outputs. onnxruntime-node refuses arrays over a
   * SharedArrayBuffer (a threaded wasm heap): pass copies of those.
   */
  run(inputs: Record<string, Float32Input>): Record<string, Float32Array>;
  dispose(): void;
}

/**
 * A synchronous CPU session (null when onnxruntime-node's binding cannot load). Its threads do not spin
 * between runs, so they leave the cores to whatever runs next (the wasm backend's own threads).
 */
export function createSyncOnnxSession(model: Uint8Array, options: OnnxSessionOptions = {}): SyncOnnxSession | null {
  const b = nativeBinding();
  if (!b) return null;
  const { threads } = { ...DEFAULT_ONNX_SESSION_OPTIONS, ...options };
  const session = new b.binding.InferenceSession();
  session.loadModel(model.buffer, model.byteOffset, model.byteLength, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } },
  });
  const outputNames = session.outputMetadata.map((m) => m.name);
  return {
    run(inputs) {
      const feeds = toOrtFeeds(inputs);
      const fetches = Object.fromEntries(outputNames.map((name) => [name, null]));
      const outputs = session.run(feeds, fetches, {}) as Record<string, { data: Float32Array }>;
      return Object.fromEntries(Object.entries(outputs).map(([name, t]) => [name, t.data]));
    },
    dispose: () => session.dispose(),
  };
}
