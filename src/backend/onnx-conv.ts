/**
 * Convolutions of the wasm backend run by onnxruntime's native CPU kernels (MLAS) where they are faster.
 * The wasm backend's XNNPACK kernels run 128-bit SIMD without FMA; onnxruntime runs AVX2/AVX-512 code, and on
 * deep layers (many channels, small maps) and strided gradients it is 2-9x faster. On wide shallow layers (128x128
 * maps, 16-32 channels), which are memory-bound, wasm is as fast or faster. So each kernel call signature (kernel,
 * shapes, attributes) is tuned once: its first call runs wasm and each candidate graph, times them, and keeps the
 * fastest for the rest of the process (results agree to float32 rounding, ~1e-6 relative).
 *
 * Each onnxruntime graph takes and returns NHWC tensors (tfjs's layout), transposing to ONNX's NCHW inside:
 *   Conv2D / FusedConv2D (linear or relu, optional bias): Conv;
 *   Conv2DBackpropInput (also conv2dTranspose's forward): ConvTranspose with the forward pads and output_padding;
 *   Conv2DBackpropFilter: a Conv of x as [Ci, N, H, W] with dy as the filter [Co, N, Ho, Wo], dilation = stride;
 *     or tap by tap, a Slice and a Gemm per filter tap, all NHWC ("taps").
 * and, where the channel counts fill whole blocks of MLAS's NCHWc layout (16 channels with AVX-512, 8 with AVX2),
 * the same three as NCHWc convolutions ("nchwc", see `nchwcConv`; the input gradient at stride 1 only): its
 * micro-kernels run 1.3-2.5x faster than the plain Conv on the U-Net's shapes (CPU time per call, measured 2026-12-06).
 * Inputs and outputs are copied between the wasm heap and onnxruntime (about 1 ms per 8 MB; the tuning counts it).
 * Synchronous (tfjs kernels cannot await): onnxruntime's native binding, see `createSyncOnnxSession` (onnx/native.ts).
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import onnxProto from "onnx-proto";
import { createSyncOnnxSession, onnxRuntimeAvailable, type SyncOnnxSession } from "../onnx/native.js";
import { tensorProto, valueInfo } from "../onnx/proto.js";
import { type ConvAttrs, convInfo } from "./conv-grads.js";
import type { Info } from "./wasm-ops.js";

const { onnx } = onnxProto;
type KernelArgs = Parameters<tf.KernelFunc>[0];
type Conv2DInfo = tf.backend_util.Conv2DInfo;

interface Attrs extends ConvAttrs {
  activation?: string;
  filterShape?: [number, number, number, number];
  inputShape?: [number, number, number, number];
}

/** An onnxruntime graph for one call signature, with the heap tensors to feed it. */
interface Plan {
  key: string;
  /** Candidate graphs by name, each tried by the tuning. */
  graphs: Record<string, () => Uint8Array>;
  inputs: Record<string, Info>;
  outShape: number[];
}

const NCHW = [0, 3, 1, 2];
const NHWC = [0, 2, 3, 1];
const HWIO_TO_OIHW = [3, 2, 0, 1];

type Node = onnxProto.onnx.INodeProto;
type Initializer = onnxProto.onnx.ITensorProto;
const ints = (name: string, values: number[]) => ({
  name,
  type: onnx.AttributeProto.AttributeType.INTS,
  ints: values,
});
const transpose = (input: string, output: string, perm: number[]): Node => ({
  opType: "Transpose",
  input: [input],
  output: [output],
  attribute: [ints("perm", perm)],
});

const int64s = (name: string, values: number[]) =>
  tensorProto(name, { dims: [values.length], data: new BigInt64Array(values.map(BigInt)) });

/**
 * A model of `nodes` reading `inputs` (by name, their shapes) and writing "y" of shape `output` (or, given a
 * record, the outputs it names).
 */
function encode(
  nodes: Node[],
  inputs: Record<string, { shape: number[] }>,
  output: (number | string)[] | Record<string, number[]>,
  initializer: Initializer[] = [],
): Uint8Array {
  const outputs = Array.isArray(output) ? { y: output } : output;
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: "segkit",
    opsetImport: [
      { domain: "", version: 13 },
      { domain: NCHWC_DOMAIN, version: 1 },
    ],
    graph: {
      name: "segkit-conv",
      node: nodes,
      initializer,
      input: Object.entries(inputs).map(([name, t]) => valueInfo(name, t.shape)),
      output: Object.entries(outputs).map(([name, shape]) => valueInfo(name, shape)),
    },
  }).finish();
}

/** The convolution's geometry, or null for what the graphs here do not take (NCHW, dilation other than 1). */
function geometry(xShape: number[], filterShape: number[], a: ConvAttrs): Conv2DInfo | null {
  try {
    return convInfo(xShape, filterShape, a, false);
  } catch {
    return null;
  }
}

/** ONNX pads [top, left, bottom, right] and the conv attributes shared by the three graphs. */
function convAttributes(info: Conv2DInfo) {
  const { top, left, bottom, right } = info.padInfo;
  return {
    pads: [top, left, bottom, right],
    strides: [info.strideHeight, info.strideWidth],
    dilations: [info.dilationHeight, info.dilationWidth],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// NCHWc: MLAS's blocked-layout convolution (onnxruntime's `com.microsoft.nchwc` operators)

const NCHWC_DOMAIN = "com.microsoft.nchwc";
const int = (name: string, i: number) => ({ name, type: onnx.AttributeProto.AttributeType.INT, i });
const nchwc = (opType: string, input: string[], output: string, attribute: object[]): Node => ({
  opType,
  domain: NCHWC_DOMAIN,
  input,
  output: [output],
  attribute,
});

let blockSize: number | undefined;

/**
 * Channels per block of MLAS's NCHWc layout on this CPU (16 with AVX-512, 8 with AVX2...), read from the output of a
 * `ReorderInput` of 4 channels (padded to one block); 0 where onnxruntime has no NCHWc kernels.
 */
export function nchwcBlockSize(): number {
  if (blockSize === undefined) {
    blockSize = 0;
    const graph = () =>
      encode([nchwc("ReorderInput", ["x"], "y", [int("channels_last", 1)])], { x: { shape: [1, 1, 1, 4] } }, [
        1,
        "c",
        1,
        1,
      ]);
    const probe = session(graph, 1);
    try {
      blockSize = probe?.run({ x: { data: new Float32Array(4), dims: [1, 1, 1, 4] } }).y?.length ?? 0;
    } catch {
      blockSize = 0;
    } finally {
      probe?.dispose();
    }
  }
  return blockSize;
}

/**
 * A convolution in MLAS's NCHWc kernels (AVX2 / AVX-512 micro-kernels on channel blocks, the layout oneDNN uses),
 * NHWC in and out: `ReorderInput` (NHWC -> blocks), the NchwcConv with its filter reordered in the graph from
 * HWIO to blocks (OIHWBiBo: [O/b, I/b, kh, kw, b (in), b (out)]), `ReorderOutput` (blocks -> NHWC). The filter is
 * an input, not a constant, so onnxruntime's own NCHWc rewrite (which needs constant weights) never applies; this
 * graph is that rewrite by hand. `flip`: the filter flipped in space with its I/O swapped (an input gradient as a
 * stride-1 convolution). Both channel counts must be multiples of the block.
 */
function nchwcConv(
  o: { x: string; w: string; bias?: string; kh: number; kw: number; ci: number; co: number; flip: boolean },
  attrs: { pads: number[]; strides: number[]; relu: boolean },
): { nodes: Node[]; initializers: Initializer[] } {
  const b = nchwcBlockSize();
  const { kh, kw, ci, co } = o;
  // HWIO [kh, kw, I, O] as [kh, kw, I/b, b, O/b, b]; flipped: its I is the conv's output, its O the conv's input
  const [outer, inner] = o.flip ? [ci, co] : [co, ci];
  const nodes: Node[] = [];
  const initializers = [int64s("w6", [kh, kw, ci / b, b, co / b, b]), int64s("wShape", [outer, inner, kh, kw])];
  let w = o.w;
  if (o.flip) {
    nodes.push({ opType: "Slice", input: [w, "flipStart", "flipEnd", "flipAxes", "flipSteps"], output: ["wf"] });
    initializers.push(
      int64s("flipStart", [-1, -1]),
      int64s("flipEnd", [-kh - 1, -kw - 1]),
      int64s("flipAxes", [0, 1]),
      int64s("flipSteps", [-1, -1]),
    );
    w = "wf";
  }
  nodes.push(
    { opType: "Reshape", input: [w, "w6"], output: ["wb6"] },
    transpose("wb6", "wbt", o.flip ? [2, 4, 0, 1, 5, 3] : [4, 2, 0, 1, 3, 5]),
    { opType: "Reshape", input: ["wbt", "wShape"], output: ["wb"] },
    nchwc("ReorderInput", [o.x], "xb", [int("channels_last", 1)]),
    nchwc("Conv", o.bias ? ["xb", "wb", o.bias] : ["xb", "wb"], "yb", [
      ints("pads", attrs.pads),
      ints("strides", attrs.strides),
      ...(attrs.relu
        ? [{ name: "activation", type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode("Relu") }]
        : []),
    ]),
    nchwc("ReorderOutput", ["yb"], "y", [int("channels_last", 1), int("channels", outer)]),
  );
  return { nodes, initializers };
}

/** Whether `c` channels fill whole NCHWc blocks on this CPU (`nchwcConv` takes Ci and Co that do). */
function fillsBlocks(c: number): boolean {
  const b = nchwcBlockSize();
  return b > 0 && c % b === 0;
}

const signature = (name: string, info: Conv2DInfo, extra = "") =>
  `${name} ${info.inShape} ${info.filterHeight}x${info.filterWidth}x${info.inChannels}x${info.outChannels} ` +
  `s${info.strideHeight},${info.strideWidth} d${info.dilationHeight},${info.dilationWidth} ` +
  `p${Object.values(info.padInfo)} ${extra}`;

function forwardPlan({ inputs, attrs }: KernelArgs): Plan | null {
  const { x, filter, bias, preluActivationWeights } = inputs as Record<string, Info | undefined>;
  const a = attrs as unknown as Attrs;
  const activation = a.activation ?? "linear";
  if (!x || !filter || preluActivationWeights || (activation !== "linear" && activation !== "relu")) return null;
  const info = geometry(x.shape, filter.shape, a);
  if (!info || (bias && bias.shape.length !== 1)) return null;
  const c = convAttributes(info);
  const feed: Record<string, Info> = bias ? { x, w: filter, b: bias } : { x, w: filter };
  return {
    key: signature("conv", info, `${activation}${bias ? " bias" : ""}`),
    inputs: feed,
    outShape: info.outShape,
    graphs: {
      conv: () => {
        const nodes: Node[] = [
          transpose("x", "xt", NCHW),
          transpose("w", "wt", HWIO_TO_OIHW),
          {
            opType: "Conv",
            input: bias ? ["xt", "wt", "b"] : ["xt", "wt"],
            output: ["yt"],
            attribute: [ints("pads", c.pads), ints("strides", c.strides), ints("dilations", c.dilations)],
          },
        ];
        if (activation === "relu") nodes.push({ opType: "Relu", input: ["yt"], output: ["yr"] });
        nodes.push(transpose(activation === "relu" ? "yr" : "yt", "y", NHWC));
        return encode(nodes, feed, info.outShape);
      },
      ...(fillsBlocks(info.inChannels) &&
        fillsBlocks(info.outChannels) && {
          nchwc: () => {
            const { nodes, initializers } = nchwcConv(
              { x: "x", w: "w", ...(bias && { bias: "b" }), ...kernelDims(info), flip: false },
              { pads: c.pads, strides: c.strides, relu: activation === "relu" },
            );
            return encode(nodes, feed, info.outShape, initializers);
          },
        }),
    },
  };
}

const kernelDims = (info: Conv2DInfo) => ({
  kh: info.filterHeight,
  kw: info.filterWidth,
  ci: info.inChannels,
  co: info.outChannels,
});

function inputGradPlan({ inputs, attrs }: KernelArgs): Plan | null {
  const { dy, filter } = inputs as Record<string, Info>;
  const a = attrs as unknown as Attrs;
  if (!dy || !filter || !a.inputShape) return null;
  const info = geometry(a.inputShape, filter.shape, a);
  if (!info) return null;
  const c = convAttributes(info);
  const { top, left, bottom, right } = info.padInfo;
  const reach = (o: number, s: number, k: number, d: number) => (o - 1) * s + (k - 1) * d + 1;
  const outPadding = [
    info.inHeight - (reach(info.outHeight, info.strideHeight, info.filterHeight, info.dilationHeight) - top - bottom),
    info.inWidth - (reach(info.outWidth, info.strideWidth, info.filterWidth, info.dilationWidth) - left - right),
  ];
  // ONNX: 0 <= output_padding < max(stride, dilation)
  if (outPadding.some((p, i) => p < 0 || p >= Math.max(c.strides[i] as number, c.dilations[i] as number))) return null;
  const feed = { dy, w: filter };
  return {
    key: signature("dx", info),
    inputs: feed,
    outShape: a.inputShape,
    graphs: {
      convTranspose: () =>
        encode(
          [
            transpose("dy", "dyt", NCHW),
            transpose("w", "wt", HWIO_TO_OIHW), // ConvTranspose weights [C_in of the transpose = Co, Ci, kh, kw]
            {
              opType: "ConvTranspose",
              input: ["dyt", "wt"],
              output: ["xt"],
              attribute: [
                ints("pads", c.pads),
                ints("strides", c.strides),
                ints("dilations", c.dilations),
                ints("output_padding", outPadding),
              ],
            },
            transpose("xt", "y", NHWC),
          ],
          feed,
          a.inputShape as number[],
        ),
      // stride 1: the "full" correlation of dy with the filter flipped, I/O swapped (pads kh - 1 - the forward's)
      ...(c.strides.every((s) => s === 1) &&
        c.pads.every((p, i) => p <= (i % 2 ? info.filterWidth : info.filterHeight) - 1) &&
        fillsBlocks(info.inChannels) &&
        fillsBlocks(info.outChannels) && {
          nchwc: () => {
            const [kh, kw] = [info.filterHeight, info.filterWidth];
            const pads = [kh - 1 - top, kw - 1 - left, kh - 1 - bottom, kw - 1 - right];
            const { nodes, initializers } = nchwcConv(
              { x: "dy", w: "w", ...kernelDims(info), flip: true },
              { pads, strides: [1, 1], relu: false },
            );
            return encode(nodes, feed, a.inputShape as number[], initializers);
          },
        }),
    },
  };
}

function filterGradPlan({ inputs, attrs }: KernelArgs): Plan | null {
  const { x, dy } = inputs as Record<string, Info>;
  const a = attrs as unknown as Attrs;
  if (!x || !dy || !a.filterShape) return null;
  const info = geometry(x.shape, a.filterShape, a);
  if (!info) return null;
  const c = convAttributes(info);
  const [kh, kw] = a.filterShape;
  // the conv's output spans every filter offset the padded input allows: more than kh when `valid` leaves rows unread
  const span = (size: number, before: number, after: number, o: number, s: number) =>
    size + before + after - (o - 1) * s;
  const { top, left, bottom, right } = info.padInfo;
  const fh = span(info.inHeight, top, bottom, info.outHeight, info.strideHeight);
  const fw = span(info.inWidth, left, right, info.outWidth, info.strideWidth);
  const feed = { x, dy };
  // x as [Ci, N, H, W] (channels as the batch, the batch as channels) convolved with dy as the filter [Co, N, Ho, Wo],
  // dilation = stride: [Ci, Co, fh, fw], cropped to [.., kh, kw], then -> [kh, kw, Ci, Co]. With `blocked`, the
  // NCHWc kernels: dy's channels in blocks (OIHWBo, or OIHWBiBo when the batch fills blocks too: then x is reordered)
  const asConv = (blocked: boolean) => {
    const { batchSize: n, outHeight: ho, outWidth: wo, outChannels: co } = info;
    const b = nchwcBlockSize();
    const nodes: Node[] = [transpose("x", "xt", [3, 0, 1, 2])];
    const initializers: Initializer[] = [];
    if (!blocked) {
      nodes.push(transpose("dy", "dyt", [3, 0, 1, 2]), {
        opType: "Conv",
        input: ["xt", "dyt"],
        output: ["w"],
        attribute: [ints("pads", c.pads), ints("dilations", c.strides)],
      });
    } else {
      const batchBlocks = n >= b; // then n fills whole blocks
      initializers.push(
        int64s("dy6", batchBlocks ? [n / b, b, ho, wo, co / b, b] : [n, ho, wo, co / b, b]),
        int64s("wShape", [co, n, ho, wo]),
      );
      nodes.push(
        { opType: "Reshape", input: ["dy", "dy6"], output: ["dyr"] },
        transpose("dyr", "dyb", batchBlocks ? [4, 0, 2, 3, 1, 5] : [3, 0, 1, 2, 4]),
        { opType: "Reshape", input: ["dyb", "wShape"], output: ["wf"] },
        ...(batchBlocks ? [nchwc("ReorderInput", ["xt"], "xb", [])] : []),
        nchwc("Conv", [batchBlocks ? "xb" : "xt", "wf"], "wb", [ints("pads", c.pads), ints("dilations", c.strides)]),
        nchwc("ReorderOutput", ["wb"], "w", [int("channels", co)]),
      );
    }
    let w = "w";
    if (fh !== kh || fw !== kw) {
      nodes.push({ opType: "Slice", input: ["w", "starts", "ends", "axes"], output: ["wc"] });
      initializers.push(int64s("starts", [0, 0]), int64s("ends", [kh, kw]), int64s("axes", [2, 3]));
      w = "wc";
    }
    nodes.push(transpose(w, "y", [2, 3, 0, 1])); // [Ci, Co, kh, kw] -> [kh, kw, Ci, Co]
    return encode(nodes, feed, a.filterShape as number[], initializers);
  };
  return {
    key: signature("dw", info),
    inputs: feed,
    outShape: a.filterShape,
    graphs: {
      conv: () => asConv(false),
      ...(fillsBlocks(info.outChannels) &&
        (info.batchSize < nchwcBlockSize() || fillsBlocks(info.batchSize)) && { nchwc: () => asConv(true) }),
      taps: () => filterGradByTaps(info, feed),
    },
  };
}

/**
 * The filter gradient one tap at a time, all NHWC: for each (i, j), dW[i, j] [Ci, Co] = x_ij^T dy, where x_ij is the
 * padded x sliced at offset (i, j) with the stride, [N*Ho*Wo, Ci], and dy is [N*Ho*Wo, Co]: a Slice and a Gemm
 * (transA) per tap, no transposes of the big tensors.
 */
function filterGradByTaps(info: Conv2DInfo, feed: Record<string, Info>): Uint8Array {
  const { nodes, initializers } = filterGradTaps(info, "x", "dy", "y", "");
  return encode(nodes, feed, [info.filterHeight, info.filterWidth, info.inChannels, info.outChannels], initializers);
}

/**
 * The nodes of `filterGradByTaps` reading NHWC `x` and `dy` (named so in the graph) and writing `out`
 * [kh, kw, Ci, Co]; their own names start with `prefix` (to sit in a larger graph).
 */
function filterGradTaps(
  info: Conv2DInfo,
  xName: string,
  dyName: string,
  out: string,
  prefix: string,
): { nodes: Node[]; initializers: Initializer[] } {
  const { batchSize: n, outHeight: ho, outWidth: wo, inChannels: ci, outChannels: co } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { top, left, bottom, right } = info.padInfo;
  const rows = n * ho * wo;
  const p = (name: string) => `${prefix}${name}`;
  const nodes: Node[] = [{ opType: "Reshape", input: [dyName, p("dyShape")], output: [p("dy2")] }];
  const initializers = [
    int64s(p("dyShape"), [rows, co]),
    int64s(p("xShape"), [rows, ci]),
    int64s(p("tapShape"), [1, ci, co]),
    int64s(p("wShape"), [kh, kw, ci, co]),
    int64s(p("axes"), [1, 2]),
    int64s(p("steps"), [sh, sw]),
  ];
  let x = xName;
  if (top || left || bottom || right) {
    nodes.push({ opType: "Pad", input: [xName, p("pads")], output: [p("xp")] });
    initializers.push(int64s(p("pads"), [0, top, left, 0, 0, bottom, right, 0]));
    x = p("xp");
  }
  const taps: string[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const t = p(`${i}_${j}`);
      initializers.push(int64s(`start${t}`, [i, j]), int64s(`end${t}`, [i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1]));
      nodes.push(
        { opType: "Slice", input: [x, `start${t}`, `end${t}`, p("axes"), p("steps")], output: [`x${t}`] },
        { opType: "Reshape", input: [`x${t}`, p("xShape")], output: [`rows${t}`] },
        {
          opType: "Gemm",
          input: [`rows${t}`, p("dy2")],
          output: [`g${t}`],
          attribute: [{ name: "transA", type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
        },
        { opType: "Reshape", input: [`g${t}`, p("tapShape")], output: [`tap${t}`] },
      );
      taps.push(`tap${t}`);
    }
  }
  nodes.push(
    {
      opType: "Concat",
      input: taps,
      output: [p("taps")],
      attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: 0 }],
    },
    { opType: "Reshape", input: [p("taps"), p("wShape")], output: [out] },
  );
  return { nodes, initializers };
}

// ---------------------------------------------------------------------------------------------------------------
// Dispatch: tuned once per call signature

interface Choice {
  /** "wasm", or the name of the onnxruntime graph that won. */
  engine: string;
  session: SyncOnnxSession | null;
  /** ms per call of each candidate, measured on the first call of the signature. */
  ms: Record<string, number>;
}

const choices = new Map<string, Choice>();

/** Signatures remembered at most (each may hold a session): the oldest is forgotten first, e.g. across image sizes. */
export const MAX_TUNED_SIGNATURES = 256;

function remember(key: string, choice: Choice): void {
  choices.set(key, choice);
  for (const [old, c] of choices) {
    if (choices.size <= MAX_TUNED_SIGNATURES) break;
    c.session?.dispose();
    choices.delete(old);
  }
}

/** What the tuning chose, by call signature (for benchmarks and tests). */
export function onnxConvChoices(): Map<string, Readonly<Choice>> {
  return choices;
}

/**
 * `auto`: the fastest candidate per call signature; `onnx`: onnxruntime wherever a graph exists, the graph named
 * `graph` when the signature has one, else its first (tests); `off`: wasm only.
 */
export type OnnxConvMode = "auto" | "onnx" | "off";

let threads = 1;
let mode: OnnxConvMode = "auto";
let preferred: string | undefined;

/** Threads of the onnxruntime sessions (the wasm backend's count) and the dispatch mode. */
export function configureOnnxConv(options: { threads?: number; mode?: OnnxConvMode; graph?: string }): void {
  threads = options.threads ?? threads;
  mode = options.mode ?? mode;
  if (options.mode !== undefined || options.graph !== undefined) preferred = options.graph;
}

/** Frees every onnxruntime session and the kept host arrays, and forgets the tuning and the pinned engines. */
export function resetOnnxConv(): void {
  for (const c of choices.values()) c.session?.dispose();
  choices.clear();
  pinned.clear();
  staging.clear();
}

/**
 * Engines chosen so far, by call signature: what `pinOnnxConvEngines` takes back. The engines give float results
 * that differ in the last bits, so a process that must reproduce another's arithmetic exactly (a resumed training
 * run) pins the engines that process chose instead of timing again.
 */
export function onnxConvEngines(): Record<string, string> {
  const pins = Object.fromEntries(pinned);
  for (const [key, c] of choices) pins[key] = c.engine;
  return pins;
}

/** Signatures whose engine is given, not timed (see `onnxConvEngines`). */
const pinned = new Map<string, string>();

/** Uses `engines` (from `onnxConvEngines`) for those signatures instead of timing them; a later pin replaces one. */
export function pinOnnxConvEngines(engines: Readonly<Record<string, string>>): void {
  for (const [key, engine] of Object.entries(engines)) {
    if (choices.get(key)?.engine !== engine) {
      choices.get(key)?.session?.dispose();
      choices.delete(key);
    }
    pinned.set(key, engine);
  }
}

/**
 * Host arrays for the copies of heap tensors onnxruntime reads (it refuses the threaded wasm heap's shared memory),
 * kept by length and reused: a fresh array costs its allocation, zeroing and page faults besides the copy (16 MB:
 * ~2.7 ms against ~1.2 ms for a copy into a kept one, measured 2026-12-06), and churns the garbage collector. At
 * most `MAX_STAGING_LENGTHS` lengths are kept (the oldest dropped first), each with the arrays one call used.
 */
const staging = new Map<number, Float32Array[]>();
const MAX_STAGING_LENGTHS = 32;

function stage(source: Float32Array): Float32Array {
  const kept = staging.get(source.length)?.pop();
  const copy = kept ?? new Float32Array(source.length);
  copy.set(source);
  return copy;
}

function unstage(arrays: Float32Array[]): void {
  for (const a of arrays) {
    const kept = staging.get(a.length);
    if (kept) kept.push(a);
    else staging.set(a.length, [a]);
  }
  for (const length of staging.keys()) {
    if (staging.size <= MAX_STAGING_LENGTHS) break;
    staging.delete(length);
  }
}

/** Runs the plan's graph on host copies of its inputs (see `staging`); the output goes to a new heap tensor. */
function runOnnx(session: SyncOnnxSession, plan: Plan, backend: BackendWasm): Info {
  const copies = Object.entries(plan.inputs).map(
    ([name, t]) => [name, stage(backend.typedArrayFromHeap(t) as Float32Array), t.shape] as const,
  );
  try {
    const { y } = session.run(Object.fromEntries(copies.map(([name, data, dims]) => [name, { data, dims }])));
    if (!y) throw new Error("segkit: onnxruntime conv graph returned no output");
    const out = backend.makeOutput(plan.outShape, "float32");
    backend.typedArrayFromHeap(out).set(y);
    return out;
  } finally {
    unstage(copies.map(([, data]) => data));
  }
}

function session(build: () => Uint8Array, sessionThreads = threads): SyncOnnxSession | null {
  try {
    return createSyncOnnxSession(build(), { threads: sessionThreads });
  } catch {
    return null; // a graph onnxruntime rejects: that candidate drops out
  }
}

/**
 * First call of a signature: the pinned engine if any (see `pinOnnxConvEngines`), else time wasm and each
 * onnxruntime graph and keep the fastest.
 */
function tune(plan: Plan, args: KernelArgs, wasm: tf.KernelFunc): Info {
  const backend = args.backend as BackendWasm;
  const names = Object.keys(plan.graphs);
  const pin = mode === "auto" ? pinned.get(plan.key) : undefined;
  if (pin === "wasm") {
    remember(plan.key, { engine: pin, session: null, ms: {} });
    return wasm(args) as Info;
  }
  const given = pin ?? (mode === "onnx" ? (preferred && names.includes(preferred) ? preferred : names[0]) : undefined);
  const build = given === undefined ? undefined : plan.graphs[given];
  const s = build ? session(build) : null;
  if (given !== undefined && s) {
    remember(plan.key, { engine: given, session: s, ms: {} });
    return runOnnx(s, plan, backend);
  }
  // every candidate: a warm-up call (first-call setup: operator creation, weight packing), then TIMING_ROUNDS rounds
  // of one call each, the candidates in turn, so that a burst of load from other processes falls on all of them
  const candidates: { engine: string; session: SyncOnnxSession | null; run: () => Info }[] = [
    { engine: "wasm", session: null, run: () => wasm(args) as Info },
  ];
  for (const name of names) {
    const s = session(plan.graphs[name] as () => Uint8Array);
    if (s) candidates.push({ engine: name, session: s, run: () => runOnnx(s, plan, backend) });
  }
  const ms: Record<string, number> = {};
  for (const c of candidates) {
    backend.disposeData(c.run().dataId);
    ms[c.engine] = Number.POSITIVE_INFINITY;
  }
  const outs = new Map<string, Info>();
  for (let round = 0; round < TIMING_ROUNDS; round++) {
    for (const c of candidates) {
      const start = performance.now();
      const result = c.run();
      ms[c.engine] = Math.min(ms[c.engine] as number, performance.now() - start);
      const previous = outs.get(c.engine);
      if (previous) backend.disposeData(previous.dataId);
      outs.set(c.engine, result);
    }
  }
  const best = candidates.reduce((a, b) => ((ms[b.engine] as number) < (ms[a.engine] as number) ? b : a));
  for (const c of candidates) {
    if (c === best) continue;
    c.session?.dispose();
    backend.disposeData((outs.get(c.engine) as Info).dataId);
  }
  remember(plan.key, { engine: best.engine, session: best.session, ms });
  return outs.get(best.engine) as Info;
}

/** Timed calls per candidate on a signature's first call (the fastest counts). */
const TIMING_ROUNDS = 3;

/** Depth of dispatched calls in progress: a convolution inside a gradient kernel's composition runs on wasm. */
let depth = 0;

function dispatch(plan: (args: KernelArgs) => Plan | null, wasm: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const p = mode !== "off" && depth === 0 ? plan(args) : null;
    if (!p) return wasm(args);
    depth++;
    try {
      const choice = choices.get(p.key);
      if (!choice) return tune(p, args, wasm);
      return choice.session ? runOnnx(choice.session, p, args.backend as BackendWasm) : wasm(args);
    } finally {
      depth--;
    }
  };
}

/**
 * Kernel configs for the wasm backend that dispatch Conv2D, FusedConv2D, Conv2DBackpropInput and
 * Conv2DBackpropFilter between onnxruntime and `current` (the wasm kernels registered before these: the stock
 * forward convolutions, segkit's gradients), keeping each current kernel's setup. Empty when onnxruntime's
 * binding cannot load.
 */
export function onnxConvKernels(current: (name: string) => tf.KernelConfig | undefined): tf.KernelConfig[] {
  if (!onnxRuntimeAvailable()) return [];
  const plans: Record<string, (args: KernelArgs) => Plan | null> = {
    [tf.Conv2D]: forwardPlan,
    [tf.FusedConv2D]: forwardPlan,
    [tf.Conv2DBackpropInput]: inputGradPlan,
    [tf.Conv2DBackpropFilter]: filterGradPlan,
  };
  return Object.entries(plans).flatMap(([name, plan]) => {
    const config = current(name);
    if (!config) return [];
    const wasm = config.kernelFunc;
    return [{ ...config, kernelFunc: dispatch(plan, (args) => wasm(args)) }];
  });
}
