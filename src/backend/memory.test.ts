import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SegkitError } from "../core/errors.js";
import { isWasmOutOfMemory, withWasmMemoryGuard } from "./memory.js";

/** The trap the wasm engine throws when a kernel writes past the heap (what an exhausted 4 GB heap produces). */
const { RuntimeError } = (globalThis as unknown as { WebAssembly: { RuntimeError: new (m: string) => Error } })
  .WebAssembly;
const ctx = { what: "training step", batchSize: 32, inputSize: [512, 384] as const };

describe("withWasmMemoryGuard", () => {
  it("turns the out-of-bounds trap into an error naming the batch and input size", async () => {
    const trap = new RuntimeError("memory access out of bounds");
    assert.equal(trap.name, "RuntimeError");
    assert.ok(isWasmOutOfMemory(trap));
    await assert.rejects(
      withWasmMemoryGuard(ctx, () => {
        throw trap;
      }),
      (err: unknown) =>
        err instanceof SegkitError &&
        err.message.includes("training step at batch size 32, input 512x384") &&
        /lower the batch size/.test(err.hint ?? "") &&
        err.cause === trap,
    );
  });

  it("passes other errors and results through", async () => {
    const other = new RuntimeError("unreachable");
    assert.equal(isWasmOutOfMemory(other), false);
    await assert.rejects(
      withWasmMemoryGuard(ctx, () => {
        throw other;
      }),
      (err: unknown) => err === other,
    );
    await assert.rejects(
      withWasmMemoryGuard(ctx, async () => {
        throw new RangeError("memory access out of bounds");
      }),
      RangeError,
    );
    assert.equal(await withWasmMemoryGuard(ctx, () => 42), 42);
  });
});
