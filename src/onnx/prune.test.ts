import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import onnxProto from "onnx-proto";
import { SegkitError } from "../core/errors.js";
import { tensorProto, valueInfo } from "./proto.js";
import { pruneOnnx } from "./prune.js";
import { createOnnxSession } from "./session.js";

const { onnx } = onnxProto;
const model = (graph: onnxProto.onnx.IGraphProto): Uint8Array =>
  onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: "", version: 13 }], graph }).finish();
const graphOf = (bytes: Uint8Array) => onnx.ModelProto.decode(bytes).graph as onnxProto.onnx.GraphProto;

/** z = (x + a) * b and, apart, w = x - c. */
const twoBranches = () =>
  model({
    name: "two",
    node: [
      { opType: "Add", input: ["x", "a"], output: ["y"] },
      { opType: "Mul", input: ["y", "b"], output: ["z"] },
      { opType: "Sub", input: ["x", "c"], output: ["w"] },
    ],
    initializer: [
      tensorProto("a", { dims: [2], data: Float32Array.of(1, 2) }),
      tensorProto("b", { dims: [2], data: Float32Array.of(10, 100) }),
      tensorProto("c", { dims: [2], data: Float32Array.of(5, 5) }),
    ],
    input: [valueInfo("x", [2])],
    output: [valueInfo("z", [2]), valueInfo("w", [2])],
  });

describe("pruneOnnx", () => {
  it("keeps the nodes and weights the chosen outputs need, the inputs as declared; same values out", async () => {
    const full = twoBranches();
    const cut = pruneOnnx(full, ["z"]);
    assert.ok(cut);
    const g = graphOf(cut);
    assert.deepEqual(
      g.node.map((n) => n.opType),
      ["Add", "Mul"],
    );
    assert.deepEqual(
      g.initializer.map((t) => t.name),
      ["a", "b"],
    );
    assert.deepEqual(
      g.output.map((o) => o.name),
      ["z"],
    );
    assert.deepEqual(
      g.input.map((i) => i.name),
      ["x"],
    );
    const session = await createOnnxSession(cut);
    try {
      const out = await session.run({ x: { data: Float32Array.of(3, 4), dims: [2] } });
      assert.deepEqual(Object.keys(out), ["z"]);
      assert.deepEqual([...(out.z?.data ?? [])], [40, 600]); // (3 + 1) * 10, (4 + 2) * 100
    } finally {
      await session.dispose();
    }
  });

  it("the official SAM decoder without its full-size masks: fewer nodes, identical scores and low-res masks", async () => {
    const file = join(import.meta.dirname, "..", "sam", "fixtures", "models", "split", "decoder.onnx");
    const bytes = await readFile(file);
    const keep = ["iou_predictions", "low_res_masks"];
    const cut = pruneOnnx(bytes, keep, file);
    assert.ok(cut);
    assert.ok(graphOf(cut).node.length < graphOf(bytes).node.length);
    const feeds = {
      image_embeddings: { data: new Float32Array(256 * 64 * 64).map((_, i) => Math.sin(i)), dims: [1, 256, 64, 64] },
      point_coords: { data: Float32Array.of(300, 200, 0, 0), dims: [1, 2, 2] },
      point_labels: { data: Float32Array.of(1, -1), dims: [1, 2] },
      mask_input: { data: new Float32Array(256 * 256), dims: [1, 1, 256, 256] },
      has_mask_input: { data: Float32Array.of(0), dims: [1] },
      orig_im_size: { data: Float32Array.of(480, 640), dims: [2] },
    };
    const [a, b] = await Promise.all([createOnnxSession(new Uint8Array(bytes)), createOnnxSession(cut)]);
    try {
      assert.deepEqual(b.outputNames, keep);
      assert.deepEqual(b.inputNames, a.inputNames);
      assert.deepEqual(await b.run(feeds, keep), await a.run(feeds, keep));
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });

  it("an output the graph does not have is an error naming the file; a graph with a subgraph is left whole", () => {
    assert.throws(
      () => pruneOnnx(twoBranches(), ["nope"], "m.onnx"),
      (e: unknown) => e instanceof SegkitError && /no output `nope`/.test(e.message) && e.file === "m.onnx",
    );
    const branch = (v: number) => ({
      name: `b${v}`,
      node: [{ opType: "Add", input: ["x", "a"], output: [`o${v}`] }],
      output: [valueInfo(`o${v}`, [2])],
    });
    const withIf = model({
      name: "if",
      node: [
        { opType: "Add", input: ["x", "a"], output: ["y"] },
        {
          opType: "If",
          input: ["cond"],
          output: ["z"],
          attribute: [
            { name: "then_branch", type: onnx.AttributeProto.AttributeType.GRAPH, g: branch(1) },
            { name: "else_branch", type: onnx.AttributeProto.AttributeType.GRAPH, g: branch(2) },
          ],
        },
      ],
      initializer: [tensorProto("a", { dims: [2], data: Float32Array.of(1, 2) })],
      input: [
        valueInfo("x", [2]),
        { name: "cond", type: { tensorType: { elemType: onnx.TensorProto.DataType.BOOL } } },
      ],
      output: [valueInfo("y", [2]), valueInfo("z", [2])],
    });
    assert.equal(pruneOnnx(withIf, ["z"]), undefined);
  });
});
