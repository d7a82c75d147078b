import onnxProto from "onnx-proto";

/**
 * Pieces of ONNX graphs as protobuf objects (`onnx-proto`), shared by the writers of graphs: the model export
 * (`models/onnx.ts`) and the convolution graphs of the wasm backend (`backend/onnx-conv.ts`).
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
