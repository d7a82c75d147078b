import onnxProto from "onnx-proto";
import { SegkitError } from "../core/errors.js";
import { hasExternalWeights, hasSubgraphs } from "./proto.js";

const { onnx } = onnxProto;

/**
 * The ONNX model `bytes` cut down to what `outputs` need: onnxruntime runs every node of a graph whatever a run
 * fetches, so a graph with outputs nobody reads (the official SAM decoder's full-size `masks`) costs their work on
 * every run. Walks the nodes backwards from `outputs` (ONNX keeps nodes in topological order) and keeps the nodes,
 * initializers and value infos they reach; the declared inputs stay as they are (feeds need not change).
 *
 * Returns undefined when the graph cannot be cut safely: a node with a subgraph (If, Loop, Scan: it reads names of
 * the outer graph) or weights stored outside the file. Throws a SegkitError for an output the graph does not have.
 */
export function pruneOnnx(bytes: Uint8Array, outputs: readonly string[], file?: string): Uint8Array | undefined {
  const model = onnx.ModelProto.decode(bytes);
  if (!model.graph) throw new SegkitError("not an ONNX model: no graph", file ? { file } : {});
  // decoded messages have every repeated field, empty or not
  const graph = model.graph as onnxProto.onnx.GraphProto;
  const declared = new Set(graph.output.map((o) => o.name ?? ""));
  for (const name of outputs) {
    if (!declared.has(name)) {
      throw new SegkitError(`the graph has no output \`${name}\``, {
        ...(file ? { file } : {}),
        hint: `its outputs are ${[...declared].join(", ")}`,
      });
    }
  }
  if (hasSubgraphs(graph) || hasExternalWeights(graph)) return undefined;
  const needed = new Set(outputs);
  const keep = new Array<boolean>(graph.node.length).fill(false);
  for (let i = graph.node.length - 1; i >= 0; i--) {
    const node = graph.node[i] as onnxProto.onnx.INodeProto;
    if (!(node.output ?? []).some((o) => needed.has(o))) continue;
    keep[i] = true;
    for (const input of node.input ?? []) needed.add(input);
  }
  graph.node = graph.node.filter((_, i) => keep[i]);
  graph.output = graph.output.filter((o) => outputs.includes(o.name ?? ""));
  graph.initializer = graph.initializer.filter((t) => needed.has(t.name ?? ""));
  graph.valueInfo = graph.valueInfo.filter((v) => needed.has(v.name ?? ""));
  return onnx.ModelProto.encode(model).finish();
}
