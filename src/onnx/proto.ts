import onnxProto from "onnx-proto";

/**
 * Pieces of ONNX graphs as protobuf objects (`onnx-proto`), shared by the writers of graphs (the model export,
 * `models/onnx.ts`; the convolution graphs of the wasm backend, `backend/onnx-conv.ts`) and by the editors of graphs
 * (`prune.ts`, `split.ts`, `rewrite.ts`).
 */

const { onnx } = onnxProto;

/** Initializer data: float32 weights or int64 constants (shapes, axes). */
export type TensorData = Float32Array | BigInt64Array;

/** A float32 graph input or output of the given shape (a string is a named, dynamic dimension). */
export function valueInfo(name: string, shape: (number | string)[]): onnxProto.onnx.IValueInfoProto {
  const dim = shape.map((d) => (typeof d === "string" ? { dimParam: d } : { dimValue: d }));
  return { name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim } } } };
}

/** An initializer `name` of `dims`, its data stored raw (little-endian, as ONNX stores it). */
export function tensorProto(
  name: string,
  { dims, data }: { dims: number[]; data: TensorData },
): onnxProto.onnx.ITensorProto {
  const T = onnx.TensorProto.DataType;
  return {
    name,
    dims,
    dataType: data instanceof Float32Array ? T.FLOAT : T.INT64,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

/** A float32 or int64 tensor's dims and data (an initializer or a Constant's value); undefined for other types. */
export function tensorData(t: onnxProto.onnx.ITensorProto): { dims: number[]; data: TensorData } | undefined {
  const T = onnx.TensorProto.DataType;
  const dims = (t.dims ?? []).map(Number);
  // a copy: decoded bytes may be a view into a larger (Node Buffer) pool, at any alignment
  const raw = t.rawData?.length ? Uint8Array.from(t.rawData).buffer : undefined;
  if (t.dataType === T.FLOAT) return { dims, data: raw ? new Float32Array(raw) : Float32Array.from(t.floatData ?? []) };
  if (t.dataType === T.INT64) {
    const data = raw ? new BigInt64Array(raw) : BigInt64Array.from(t.int64Data ?? [], (v) => BigInt(String(v)));
    return { dims, data };
  }
  return undefined;
}

/** Whether the graph keeps weights in external files (the editors read and write initializers in the graph only). */
export function hasExternalWeights(graph: onnxProto.onnx.IGraphProto): boolean {
  return (graph.initializer ?? []).some((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
}

/** Whether a node holds a subgraph (If, Loop, Scan), which reads names of the outer graph the editors do not track. */
export function hasSubgraphs(graph: onnxProto.onnx.IGraphProto): boolean {
  return (graph.node ?? []).some((n) => n.attribute?.some((a) => a.g || a.graphs?.length));
}
