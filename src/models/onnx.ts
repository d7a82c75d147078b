import type * as tf from "@tensorflow/tfjs";
import onnxProto from "onnx-proto";
import { SegkitError } from "../core/errors.js";
import { type TensorData, tensorProto, valueInfo } from "../onnx/proto.js";
import { VERSION } from "../version.js";

/**
 * ONNX export of segkit's own models: `exportOnnx(model)` walks the tfjs layers (one small emitter per layer class)
 * and writes an ONNX graph with the same input and output as `model.predict`:
 *   input  `image`  `[B, H, W, 3]` float32, 0..255 (NHWC, as the tfjs model takes it)
 *   output `logits` `[B, H, W, C]` float32 (NHWC)
 * Inside, the graph is NCHW: one Transpose after the input, one before the output. Weights are initializers in
 * ONNX layouts (Conv `[O, I, kh, kw]`, depthwise `[C*mult, 1, kh, kw]` with group C, ConvTranspose `[I, O, kh, kw]`).
 * Batch norm (inference form) is folded into the convolution before it when that convolution feeds nothing else.
 *
 * Semantics kept equal to tfjs:
 * - 'same' padding is TF's: total = max((ceil(in/s) - 1) * s + (k - 1) * d + 1 - in, 0), the odd pixel at the
 *   end (bottom/right), written as explicit pads. Transposed convs with 'same' produce `in * s`: pads = the forward
 *   conv's pads of that size, and `output_padding` when the kernel is smaller than the stride.
 * - UpSampling2D calls `tf.image.resizeBilinear` / `resizeNearestNeighbor` with alignCorners = false and
 *   halfPixelCenters = false, i.e. source = dst / scale: ONNX Resize `coordinate_transformation_mode`
 *   "asymmetric" (nearest: `nearest_mode` "floor").
 */

const { onnx } = onnxProto;
type Layer = tf.layers.Layer;
type Symbolic = tf.SymbolicTensor;

export interface ExportOnnxOptions {
  /** ONNX opset of the default domain, 13..17 (every op written here has the same meaning across them). */
  opset?: number;
  /** The batch dimension of the graph's input and output: a fixed size, or "dynamic" (a named dim "batch"). */
  batch?: number | "dynamic";
}

export const DEFAULT_EXPORT_ONNX_OPTIONS: Required<ExportOnnxOptions> = { opset: 13, batch: "dynamic" };

function validateExportOnnxOptions(options: ExportOnnxOptions): Required<ExportOnnxOptions> {
  const o = { ...DEFAULT_EXPORT_ONNX_OPTIONS, ...options };
  if (!Number.isInteger(o.opset) || o.opset < 13 || o.opset > 17) {
    throw new SegkitError(`exportOnnx: opset must be an integer from 13 to 17, got ${o.opset}`);
  }
  if (o.batch !== "dynamic" && !(Number.isInteger(o.batch) && o.batch >= 1)) {
    throw new SegkitError(`exportOnnx: batch must be a positive integer or "dynamic", got ${o.batch}`);
  }
  return o;
}

// ---------------------------------------------------------------------------------------------------------------
// The graph being written

type Attr = { i: number } | { ints: number[] } | { f: number } | { s: string };

/** The weights of a convolution node, kept mutable until serialisation so that a batch norm can fold into them. */
interface ConvWeights {
  weight: Float32Array;
  bias: Float32Array;
  dims: number[];
  /** The axis of `dims` that indexes output channels (0 for Conv, 1 for ConvTranspose). */
  outAxis: number;
}

class Graph {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly initializers = new Map<string, { dims: number[]; data: TensorData }>();
  /** ONNX tensor name of each tfjs symbolic tensor (by id). */
  readonly names = new Map<number, string>();
  /** Number of layers (and model outputs) reading each tfjs symbolic tensor (by id). */
  readonly uses = new Map<number, number>();
  /** Convolution layers whose output can absorb a batch norm (linear activation). */
  readonly convs = new Map<Layer, ConvWeights>();

  /**
   * Adds a node; its output (and node name) is `output`, usually the layer's name. Layer names equal to the graph's
   * input or output name ("image", "logits": the names createModel gives those layers) get a ":0" suffix inside.
   */
  node(op: string, inputs: string[], output: string, attrs: Record<string, Attr> = {}, io = false): string {
    if (!io && (output === "image" || output === "logits")) output = `${output}:0`;
    const attribute = Object.entries(attrs).map(([name, a]) => {
      const T = onnx.AttributeProto.AttributeType;
      if ("i" in a) return { name, type: T.INT, i: a.i };
      if ("ints" in a) return { name, type: T.INTS, ints: a.ints };
      if ("f" in a) return { name, type: T.FLOAT, f: a.f };
      return { name, type: T.STRING, s: new TextEncoder().encode(a.s) };
    });
    this.nodes.push({ opType: op, name: output, input: inputs, output: [output], attribute });
    return output;
  }

  constant(name: string, dims: number[], data: TensorData): string {
    this.initializers.set(name, { dims, data });
    return name;
  }
}

const product = (xs: readonly number[]) => xs.reduce((p, x) => p * x, 1);

/** `[kh, kw, a, b]` (tfjs kernel, row-major) -> `[a, b, kh, kw]` or `[b, a, kh, kw]` (`swap`). */
function kernelToOnnx(kernel: Float32Array, shape: readonly number[], swap: boolean): Float32Array {
  const [kh = 0, kw = 0, a = 0, b = 0] = shape;
  const out = new Float32Array(kernel.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < a; i++) {
        for (let j = 0; j < b; j++) {
          const dst = swap ? ((j * a + i) * kh + y) * kw + x : ((i * b + j) * kh + y) * kw + x;
          out[dst] = kernel[((y * kw + x) * a + i) * b + j] as number;
        }
      }
    }
  }
  return out;
}

/** TF 'same' padding of one spatial axis: [before, after], the odd pixel after. */
function samePads(size: number, kernel: number, stride: number, dilation = 1): [number, number] {
  const total = Math.max((Math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** ONNX `pads` [top, left, bottom, right] for a 'same' or 'valid' window over `[H, W]`. */
function windowPads(padding: string, layer: Layer, hw: number[], k: number[], s: number[], d = [1, 1]): number[] {
  if (padding === "valid") return [0, 0, 0, 0];
  if (padding !== "same") unsupported(layer, `padding "${padding}"`);
  const [top, bottom] = samePads(hw[0] as number, k[0] as number, s[0] as number, d[0]);
  const [left, right] = samePads(hw[1] as number, k[1] as number, s[1] as number, d[1]);
  return [top, left, bottom, right];
}

function unsupported(layer: Layer, what = "this layer type"): never {
  throw new SegkitError(
    `exportOnnx: layer "${layer.name}" (${layer.getClassName()}): ${what} is not supported in ONNX export`,
  );
}

/** A layer's weight by its short name (`kernel`, `bias`, `gamma`, ...), copied; undefined when absent. */
function weight(layer: Layer, name: string): { data: Float32Array; shape: number[] } | undefined {
  const w = layer.weights.find((v) => v.originalName.split("/").at(-1) === name);
  return w && { data: Float32Array.from(w.read().dataSync()), shape: [...w.shape] as number[] };
}

function requiredWeight(layer: Layer, name: string): { data: Float32Array; shape: number[] } {
  return weight(layer, name) ?? unsupported(layer, `a layer without "${name}"`);
}

/** Static `[H, W]` of a layer's (single) input. */
const inputHW = (layer: Layer) => (layer.input as Symbolic).shape.slice(1, 3) as number[];

interface LayerConfig {
  kernelSize: number[];
  strides: number[];
  padding: string;
  dataFormat?: string;
  dilationRate: number[];
  activation: string;
  axis: number;
  epsilon: number;
  maxValue: number | null;
  alpha: number;
  poolSize: number[];
  size: number[];
  interpolation: string;
  scale: number;
  offset: number;
}

const config = (layer: Layer) => layer.getConfig() as unknown as LayerConfig;

// ---------------------------------------------------------------------------------------------------------------
// One emitter per layer class: (layer, ONNX name of its input, graph, names of all its inputs) -> ONNX name of its
// output

type Emitter = (layer: Layer, x: string, g: Graph, inputs: string[]) => string;

/** An activation by its tfjs name, applied to `x`. */
function activation(layer: Layer, name: string, x: string, g: Graph): string {
  const out = layer.name;
  switch (name) {
    case "linear":
      return x;
    case "relu":
      return g.node("Relu", [x], out);
    case "relu6":
      return clip(layer, x, 6, g);
    case "sigmoid":
      return g.node("Sigmoid", [x], out);
    case "tanh":
      return g.node("Tanh", [x], out);
    default:
      return unsupported(layer, `activation "${name}"`);
  }
}

function clip(layer: Layer, x: string, max: number, g: Graph): string {
  const lo = g.constant(`${layer.name}/min`, [], Float32Array.of(0));
  const hi = g.constant(`${layer.name}/max`, [], Float32Array.of(max));
  return g.node("Clip", [x, lo, hi], layer.name);
}

/** A Conv or ConvTranspose node with bias, registered for batch-norm folding, then the layer's activation. */
function convNode(g: Graph, layer: Layer, op: string, x: string, w: ConvWeights, attrs: Record<string, Attr>) {
  const c = config(layer);
  const weightName = g.constant(`${layer.name}/W`, w.dims, w.weight);
  const biasName = g.constant(`${layer.name}/B`, [w.bias.length], w.bias);
  const linear = c.activation === "linear";
  const y = g.node(op, [x, weightName, biasName], linear ? layer.name : `${layer.name}/linear`, attrs);
  if (linear) g.convs.set(layer, w);
  return activation(layer, c.activation, y, g);
}

const conv2d: Emitter = (layer, x, g) => {
  const c = config(layer);
  const kernel = requiredWeight(layer, "kernel");
  const [kh, kw, cin, cout] = kernel.shape as [number, number, number, number];
  const w: ConvWeights = {
    weight: kernelToOnnx(kernel.data, kernel.shape, true),
    bias: weight(layer, "bias")?.data ?? new Float32Array(cout),
    dims: [cout, cin, kh, kw],
    outAxis: 0,
  };
  return convNode(g, layer, "Conv", x, w, {
    kernel_shape: { ints: [kh, kw] },
    strides: { ints: c.strides },
    dilations: { ints: c.dilationRate },
    pads: { ints: windowPads(c.padding, layer, inputHW(layer), [kh, kw], c.strides, c.dilationRate) },
  });
};

const depthwiseConv2d: Emitter = (layer, x, g) => {
  const c = config(layer);
  const kernel = requiredWeight(layer, "depthwise_kernel");
  const [kh, kw, channels, mult] = kernel.shape as [number, number, number, number];
  // [kh, kw, C, mult] -> [C, mult, kh, kw] = [C*mult, 1, kh, kw]: output channel c*mult + m, as in TF
  const w: ConvWeights = {
    weight: kernelToOnnx(kernel.data, kernel.shape, false),
    bias: weight(layer, "bias")?.data ?? new Float32Array(channels * mult),
    dims: [channels * mult, 1, kh, kw],
    outAxis: 0,
  };
  return convNode(g, layer, "Conv", x, w, {
    group: { i: channels },
    kernel_shape: { ints: [kh, kw] },
    strides: { ints: c.strides },
    dilations: { ints: c.dilationRate },
    pads: { ints: windowPads(c.padding, layer, inputHW(layer), [kh, kw], c.strides, c.dilationRate) },
  });
};

/**
 * tfjs Conv2DTranspose is TF's conv2d_transpose: the input gradient of a forward conv whose input has the output's
 * size (`in * s` for 'same', `(in - 1) * s + k` for 'valid'). The full scatter output is `(in - 1) * s + k` long;
 * TF crops the forward conv's 'same' pad from its start and keeps `out` values, zero-padding the end when the full
 * output is shorter (k < s): ONNX pads = [forward pad before, the rest], output_padding for the shortfall.
 */
const conv2dTranspose: Emitter = (layer, x, g) => {
  const c = config(layer);
  const kernel = requiredWeight(layer, "kernel");
  const [kh, kw, cout, cin] = kernel.shape as [number, number, number, number];
  const w: ConvWeights = {
    weight: kernelToOnnx(kernel.data, kernel.shape, true), // [kh, kw, out, in] -> [in, out, kh, kw]
    bias: weight(layer, "bias")?.data ?? new Float32Array(cout),
    dims: [cin, cout, kh, kw],
    outAxis: 1,
  };
  const inHW = inputHW(layer);
  const outHW = (layer.output as Symbolic).shape.slice(1, 3) as number[];
  const pads = [0, 0, 0, 0];
  const outputPadding = [0, 0];
  for (const axis of [0, 1]) {
    const [n = 0, out = 0, k = 0, s = 0] = [inHW[axis], outHW[axis], w.dims[axis + 2], c.strides[axis]];
    const before = c.padding === "same" ? (samePads(out, k, s)[0] as number) : 0;
    const after = (n - 1) * s + k - before - out;
    pads[axis] = before;
    pads[axis + 2] = Math.max(after, 0);
    outputPadding[axis] = Math.max(-after, 0);
  }
  if (c.padding !== "same" && c.padding !== "valid") unsupported(layer, `padding "${c.padding}"`);
  return convNode(g, layer, "ConvTranspose", x, w, {
    kernel_shape: { ints: [kh, kw] },
    strides: { ints: c.strides },
    pads: { ints: pads },
    output_padding: { ints: outputPadding },
  });
};

/** Inference batch norm: folded into the conv before it when it is that conv's only reader, else a node. */
const batchNormalization: Emitter = (layer, x, g) => {
  const c = config(layer);
  if (c.axis !== -1 && c.axis !== 3) unsupported(layer, `axis ${c.axis} (only the channel axis, -1)`);
  const mean = requiredWeight(layer, "moving_mean").data;
  const variance = requiredWeight(layer, "moving_variance").data;
  const gamma = weight(layer, "gamma")?.data ?? new Float32Array(mean.length).fill(1);
  const beta = weight(layer, "beta")?.data ?? new Float32Array(mean.length);
  const input = layer.input as Symbolic;
  const conv = g.convs.get(input.sourceLayer);
  if (conv && g.uses.get(input.id) === 1) {
    // y = (conv(x) + b - mean) * gamma / sqrt(var + eps) + beta
    const scale = gamma.map((v, o) => v / Math.sqrt((variance[o] as number) + c.epsilon));
    const inner = product(conv.dims.slice(conv.outAxis + 1));
    const channels = conv.dims[conv.outAxis] as number;
    conv.weight.forEach((v, idx) => {
      conv.weight[idx] = v * (scale[Math.floor(idx / inner) % channels] as number);
    });
    conv.bias.forEach((b, o) => {
      conv.bias[o] = (b - (mean[o] as number)) * (scale[o] as number) + (beta[o] as number);
    });
    return x;
  }
  const n = mean.length;
  const params = [gamma, beta, mean, variance].map((data, i) => g.constant(`${layer.name}/${i}`, [n], data));
  return g.node("BatchNormalization", [x, ...params], layer.name, { epsilon: { f: c.epsilon } });
};

const EMITTERS: Record<string, Emitter> = {
  InputLayer: (layer, x, g) => g.node("Transpose", [x], `${layer.name}/nchw`, { perm: { ints: [0, 3, 1, 2] } }),
  Rescaling(layer, x, g) {
    const c = config(layer);
    const scaled = g.node(
      "Mul",
      [x, g.constant(`${layer.name}/scale`, [], Float32Array.of(c.scale))],
      `${layer.name}/mul`,
    );
    return g.node("Add", [scaled, g.constant(`${layer.name}/offset`, [], Float32Array.of(c.offset))], layer.name);
  },
  Conv2D: conv2d,
  DepthwiseConv2D: depthwiseConv2d,
  Conv2DTranspose: conv2dTranspose,
  BatchNormalization: batchNormalization,
  ReLU(layer, x, g) {
    const { maxValue } = config(layer);
    return maxValue == null ? g.node("Relu", [x], layer.name) : clip(layer, x, maxValue, g);
  },
  LeakyReLU: (layer, x, g) => g.node("LeakyRelu", [x], layer.name, { alpha: { f: config(layer).alpha } }),
  Activation: (layer, x, g) => activation(layer, config(layer).activation, x, g),
  MaxPooling2D(layer, x, g) {
    const c = config(layer);
    return g.node("MaxPool", [x], layer.name, {
      kernel_shape: { ints: c.poolSize },
      strides: { ints: c.strides },
      pads: { ints: windowPads(c.padding, layer, inputHW(layer), c.poolSize, c.strides) },
    });
  },
  UpSampling2D(layer, x, g) {
    const { size, interpolation } = config(layer);
    if (interpolation !== "bilinear" && interpolation !== "nearest")
      unsupported(layer, `interpolation "${interpolation}"`);
    const scales = g.constant(`${layer.name}/scales`, [4], Float32Array.of(1, 1, size[0] as number, size[1] as number));
    return g.node("Resize", [x, "", scales], layer.name, {
      mode: { s: interpolation === "bilinear" ? "linear" : "nearest" },
      coordinate_transformation_mode: { s: "asymmetric" },
      nearest_mode: { s: "floor" },
    });
  },
  ZeroPadding2D(layer, x, g) {
    const [[top, bottom], [left, right]] = layer.getConfig().padding as [[number, number], [number, number]];
    const pads = g.constant(
      `${layer.name}/pads`,
      [8],
      BigInt64Array.from([0, 0, top, left, 0, 0, bottom, right], BigInt),
    );
    return g.node("Pad", [x, pads], layer.name);
  },
  Concatenate(layer, _x, g, inputs) {
    const { axis } = config(layer);
    if (axis !== -1 && axis !== 3) unsupported(layer, `axis ${axis} (only the channel axis, -1)`);
    return g.node("Concat", inputs, layer.name, { axis: { i: 1 } });
  },
  Add: (layer, _x, g, inputs) => g.node(inputs.length === 2 ? "Add" : "Sum", inputs, layer.name),
  Dropout: (_layer, x) => x,
};

// ---------------------------------------------------------------------------------------------------------------

/**
 * Writes `model` (built by `createModel`, or any functional tfjs model of the layer classes in `EMITTERS`, one
 * `[B,H,W,C]` input, one 4-D output, channels-last, each layer applied once) as an ONNX model (protobuf bytes).
 * Input `image` `[B,H,W,3]` float32 0..255 (NHWC), output `logits` `[B,H,W,C]` float32, as `model.predict`.
 * Throws a `SegkitError` naming the layer and its class for a layer it cannot write. Reads weights without
 * creating tfjs tensors.
 */
export function exportOnnx(model: tf.LayersModel, options: ExportOnnxOptions = {}): Uint8Array {
  const o = validateExportOnnxOptions(options);
  const [input, output] = [model.inputs, model.outputs].map((ts) => {
    if (ts.length !== 1 || ts[0]?.shape.length !== 4) {
      throw new SegkitError(`exportOnnx: model "${model.name}" must have one 4-D input and one 4-D output`);
    }
    return ts[0];
  }) as [Symbolic, Symbolic];
  const g = new Graph();

  // 1. who reads what (batch-norm folding needs a conv output with a single reader)
  const inputsOf = (layer: Layer): Symbolic[] => {
    if (layer.inboundNodes.length !== 1) unsupported(layer, "a layer applied more than once (shared)");
    return layer.getClassName() === "InputLayer" ? [] : ([layer.input].flat() as Symbolic[]);
  };
  for (const t of [...model.layers.flatMap(inputsOf), output]) g.uses.set(t.id, (g.uses.get(t.id) ?? 0) + 1);

  // 2. one emitter per layer, in the model's topological order (the InputLayer reads "image" and names its output)
  g.names.set(input.id, "image");
  for (const layer of model.layers) {
    const emit = EMITTERS[layer.getClassName()] ?? unsupported(layer);
    const cfg = layer.getConfig();
    if (cfg.dataFormat !== undefined && cfg.dataFormat !== "channelsLast") unsupported(layer, "channelsFirst");
    const inputs = layer.getClassName() === "InputLayer" ? [input] : inputsOf(layer);
    const names = inputs.map((t) => g.names.get(t.id) ?? unsupported(layer, "an input from outside this model"));
    g.names.set((layer.output as Symbolic).id, emit(layer, names[0] as string, g, names));
  }
  const last = g.names.get(output.id) as string;
  g.node("Transpose", [last], "logits", { perm: { ints: [0, 2, 3, 1] } }, true);

  // 3. serialise
  const batch = o.batch === "dynamic" ? "batch" : o.batch;
  const modelProto: onnxProto.onnx.IModelProto = {
    irVersion: 8,
    producerName: "segkit",
    producerVersion: VERSION,
    opsetImport: [{ domain: "", version: o.opset }],
    graph: {
      name: model.name,
      node: g.nodes,
      initializer: [...g.initializers].map(([name, t]) => tensorProto(name, t)),
      input: [valueInfo("image", [batch, ...(input.shape.slice(1) as number[])])],
      output: [valueInfo("logits", [batch, ...(output.shape.slice(1) as number[])])],
    },
  };
  return onnx.ModelProto.encode(modelProto).finish();
}
