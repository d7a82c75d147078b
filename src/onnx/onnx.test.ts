// src/onnx/: the async session (threads, providers, declared inputs and outputs, float32 and int64 tensors), the
// synchronous one on the native binding (a private entry point: these tests say when a new onnxruntime-node breaks
// it), and the graph pieces both writers use. Graphs are built here with `valueInfo` / `tensorProto`.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import onnxProto from "onnx-proto";
import * as ort from "onnxruntime-node";
import { createSyncOnnxSession, onnxRuntimeAvailable } from "./native.js";
import { tensorProto, valueInfo } from "./proto.js";
import { createOnnxSession } from "./session.js";

const { onnx } = onnxProto;

/** An opset-13 model of one graph. */
const model = (graph: onnxProto.onnx.IGraphProto): Uint8Array =>
  onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: "", version: 13 }], graph }).finish();

/** y = x + b (b a [3] float32 initializer), x `[batch, 3]` with a dynamic batch. */
const addGraph = () =>
  model({
    name: "add",
    node: [{ opType: "Add", input: ["x", "b"], output: ["y"] }],
    initializer: [tensorProto("b", { dims: [3], data: Float32Array.of(10, 20, 30) })],
    input: [valueInfo("x", ["batch", 3])],
    output: [valueInfo("y", ["batch", 3])],
  });

/** z = Reshape(x, shape): an int64 input, x `[6]`. */
const reshapeGraph = () =>
  model({
    name: "reshape",
    node: [{ opType: "Reshape", input: ["x", "shape"], output: ["z"] }],
    input: [
      valueInfo("x", [6]),
      {
        name: "shape",
        type: { tensorType: { elemType: onnx.TensorProto.DataType.INT64, shape: { dim: [{ dimValue: 2 }] } } },
      },
    ],
    output: [valueInfo("z", [2, 3])],
  });

describe("onnx sessions", () => {
  it("onnxruntime-node loads with its CPU execution provider", () => {
    assert.ok(ort.listSupportedBackends().some((b) => b.name === "cpu"));
  });

  it("createOnnxSession: declared inputs and outputs, float32 in and out", async () => {
    const session = await createOnnxSession(addGraph(), { threads: 1 });
    try {
      assert.deepEqual(session.inputs, [{ name: "x", type: "float32", shape: ["batch", 3] }]);
      assert.deepEqual(session.outputs, [{ name: "y", type: "float32", shape: ["batch", 3] }]);
      const { y } = await session.run({ x: { data: Float32Array.of(1, 2, 3, 4, 5, 6), dims: [2, 3] } });
      assert.deepEqual(y?.dims, [2, 3]);
      assert.deepEqual([...(y?.data ?? [])], [11, 22, 33, 14, 25, 36]);
    } finally {
      await session.dispose();
      await session.dispose(); // a second time: nothing more (onnxruntime's release throws then)
    }
  });

  it("createOnnxSession: an int64 input", async () => {
    const session = await createOnnxSession(reshapeGraph());
    try {
      const x = { data: Float32Array.of(1, 2, 3, 4, 5, 6), dims: [6] };
      const { z } = await session.run({ x, shape: { data: BigInt64Array.of(3n, 2n), dims: [2] } });
      assert.deepEqual(z?.dims, [3, 2]);
    } finally {
      await session.dispose();
    }
  });

  it("createOnnxSession: an int64 output comes back as float32 values", async () => {
    const shapeGraph = model({
      name: "shape",
      node: [{ opType: "Shape", input: ["x"], output: ["s"] }],
      input: [valueInfo("x", ["batch", 3])],
      output: [{ name: "s", type: { tensorType: { elemType: onnx.TensorProto.DataType.INT64 } } }],
    });
    const session = await createOnnxSession(shapeGraph);
    try {
      const { s } = await session.run({ x: { data: new Float32Array(15), dims: [5, 3] } });
      assert.ok(s?.data instanceof Float32Array);
      assert.deepEqual([...(s?.data ?? [])], [5, 3]);
    } finally {
      await session.dispose();
    }
  });

  it("createOnnxSession: an unknown execution provider and a bad thread count are one clear error", async () => {
    await assert.rejects(
      createOnnxSession(addGraph(), { executionProviders: ["nosuch"] }),
      (err: Error) =>
        err.message === 'execution provider "nosuch" is not available in this onnxruntime-node' &&
        /cpu always is/.test((err as Error & { hint?: string }).hint ?? ""),
    );
    await assert.rejects(createOnnxSession(addGraph(), { threads: 0 }), /threads must be a positive integer, got 0/);
  });

  it("createSyncOnnxSession (the native binding) gives the async session's answer, synchronously", () => {
    assert.equal(onnxRuntimeAvailable(), true, "onnxruntime-node's dist/binding no longer loads: see native.ts");
    const session = createSyncOnnxSession(addGraph(), { threads: 1 });
    assert.ok(session);
    try {
      const { y } = session.run({ x: { data: Float32Array.of(-1, 0, 1), dims: [1, 3] } });
      assert.deepEqual([...(y ?? [])], [9, 20, 31]);
    } finally {
      session.dispose();
    }
  });
});
