/**
 * Running out of wasm memory, said plainly. wasm32 addresses at most 4 GB, and tfjs-backend-wasm does not check its
 * allocations: past 4 GB a kernel writes through a failed allocation and the engine throws
 * `RuntimeError: memory access out of bounds` from deep inside, with the heap left unusable. Work that can run out
 * (a training or prediction step) runs inside `withWasmMemoryGuard`, which turns that into a `SegkitError` naming
 * the batch size and input size that needed too much.
 */
import { SegkitError } from "../core/errors.js";

export interface MemoryContext {
  /** What was running, e.g. "training step". */
  what: string;
  batchSize: number;
  /** [height, width] of the model input. */
  inputSize: readonly [number, number];
}

/** Whether `err` is the wasm engine's out-of-bounds trap (how an exhausted 4 GB heap shows itself). */
export function isWasmOutOfMemory(err: unknown): boolean {
  return err instanceof Error && err.name === "RuntimeError" && /memory access out of bounds/.test(err.message);
}

export function wasmOutOfMemoryError(ctx: MemoryContext, cause?: unknown): SegkitError {
  const [h, w] = ctx.inputSize;
  return new SegkitError(
    `out of wasm memory (4 GB at most) in a ${ctx.what} at batch size ${ctx.batchSize}, input ${h}x${w}; ` +
      "the wasm backend cannot continue in this process",
    {
      hint: "lower the batch size or the input size (memory grows with batch x height x width), or install @tensorflow/tfjs-node",
      cause,
    },
  );
}

/** Runs `fn`; the wasm out-of-memory trap becomes `wasmOutOfMemoryError(ctx)`, anything else passes through. */
export async function withWasmMemoryGuard<T>(ctx: MemoryContext, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw isWasmOutOfMemory(err) ? wasmOutOfMemoryError(ctx, err) : err;
  }
}
