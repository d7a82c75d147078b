/**
 * Conv + batch norm + ReLU blocks trained as one op on onnxruntime's native kernels, the activations kept there
 * between the forward and the backward pass. A U-Net training step on the wasm backend otherwise runs each block as
 * a dozen tfjs kernels (the convolution and its two gradients, the batch statistics, the normalisation, the ReLU
 * and their gradients), each reading and writing full-size tensors on the wasm heap, with the convolutions copied
 * to onnxruntime and back one by one (onnx-conv.ts). Here a block is two onnxruntime runs:
 *   forward  x [N,H,W,Ci], kernel [kh,kw,Ci,Co], gamma, beta  ->  a = relu(gamma * xhat + beta) [N,H,W,Co],
 *            xhat = (z - mean) * rstd, mean, variance (biased), rstd = 1 / sqrt(variance + eps), z = conv(x, kernel)
 *   backward dy, with x, xhat and a kept from the forward run (host arrays, never copied back to the heap):
 *            g = dy * (a > 0)    dbeta = sum(g)    dgamma = sum(g * xhat)
 *            dz = k1 * g + k2 * xhat + k3, k1 = gamma * rstd, k2 = -k1 * dgamma / M, k3 = -k1 * dbeta / M
 *            dx = conv(dz, kernel flipped, Ci/Co swapped)    dkernel = filter gradient of x and dz, tap by tap (onnx-conv.ts)
 * (sums over all axes but the channel one, M pixels per channel: the closed form of models/batch-norm.ts). The
 * graphs take and return NHWC tensors and run the convolutions in NCHW inside. Heap copies per block: x and a in the
 * forward pass, dy and dx in the backward one.
 *
 * OPT-IN (`configureFusedBlocks({ enabled: true })`): measured in bench:train (same run, 2 cores shared with other
 * jobs), a U-Net step at 128x128 with the blocks fused was about 15% SLOWER than without. onnxruntime's elementwise
 * ops and reductions over the leading axes are slow on these shapes ([8,128,128,16]: a Mul ~11 ms, a ReduceSum over
 * N,H,W ~28 ms, a Where ~33 ms, against ~3 ms for a Transpose of the same tensor), and a block runs about ten of
 * them each way; the batch statistics as MatMuls with a ones row, or the elementwise part left to the wasm kernels,
 * are what to try next.
 *
 * `trainingApply(model, x)` runs a model's training forward pass with every such block of it fused (a Conv2D
 * without bias, stride 1, read only by a trainable segkit BatchNormalization read only by a ReLU); any other layer runs as
 * `layer.apply(..., {training: true})`. The result equals `model.apply(x, {training: true})` up to float32
 * rounding, gradients and moving statistics included.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { BatchNormalization, updateMovingStatistics } from "../models/batch-norm.js";
import { createSyncOnnxSession, onnxRuntimeAvailable, type SyncOnnxSession } from "../onnx/native.js";
import { tensorProto } from "../onnx/proto.js";
import { convInfo } from "./conv-grads.js";
import {
  convAttributes,
  encode,
  filterGradTaps,
  type Initializer,
  int64s,
  ints,
  type Node,
  transpose,
} from "./onnx-conv.js";

const NCHW = [0, 3, 1, 2];
const NHWC = [0, 2, 3, 1];
const HWIO_TO_OIHW = [3, 2, 0, 1];
const INT = 2; // onnx AttributeType.INT

type Conv2DInfo = tf.backend_util.Conv2DInfo;

/** The sessions of one block signature (shapes, padding, epsilon). */
interface BlockSessions {
  forward: SyncOnnxSession;
  backward: SyncOnnxSession;
}

const scalar = (name: string, value: number): Initializer =>
  tensorProto(name, { dims: [], data: new Float32Array([value]) });

function forwardGraph(info: Conv2DInfo, epsilon: number): Uint8Array {
  const { batchSize: n, outHeight: h, outWidth: w, outChannels: co, inChannels: ci } = info;
  const c = convAttributes(info);
  const mean = (input: string, output: string): Node => ({
    opType: "ReduceMean",
    input: [input],
    output: [output],
    attribute: [ints("axes", [0, 1, 2]), { name: "keepdims", type: INT, i: 0 }],
  });
  const op = (opType: string, input: string[], output: string): Node => ({ opType, input, output: [output] });
  const nodes: Node[] = [
    transpose("x", "xt", NCHW),
    transpose("w", "wt", HWIO_TO_OIHW),
    {
      opType: "Conv",
      input: ["xt", "wt"],
      output: ["zt"],
      attribute: [ints("pads", c.pads), ints("strides", c.strides), ints("dilations", c.dilations)],
    },
    transpose("zt", "z", NHWC),
    mean("z", "mean"),
    op("Sub", ["z", "mean"], "zc"),
    op("Mul", ["zc", "zc"], "zc2"),
    mean("zc2", "variance"),
    op("Add", ["variance", "eps"], "ve"),
    op("Sqrt", ["ve"], "sd"),
    op("Reciprocal", ["sd"], "rstd"),
    op("Mul", ["zc", "rstd"], "xhat"),
    op("Mul", ["xhat", "gamma"], "scaled"),
    op("Add", ["scaled", "beta"], "pre"),
    op("Relu", ["pre"], "a"),
  ];
  const out = [n, h, w, co];
  return encode(
    nodes,
    {
      x: { shape: info.inShape },
      w: { shape: [info.filterHeight, info.filterWidth, ci, co] },
      gamma: { shape: [co] },
      beta: { shape: [co] },
    },
    { a: out, xhat: out, mean: [co], variance: [co], rstd: [co] },
    [scalar("eps", epsilon)],
  );
}

function backwardGraph(info: Conv2DInfo): Uint8Array {
  const { batchSize: n, outHeight: h, outWidth: w, outChannels: co, inChannels: ci } = info;
  const pixels = n * h * w;
  const op = (opType: string, input: string[], output: string): Node => ({ opType, input, output: [output] });
  const sum = (input: string, output: string): Node => ({
    opType: "ReduceSum",
    input: [input, "axesNHW"],
    output: [output],
    attribute: [{ name: "keepdims", type: INT, i: 0 }],
  });
  const taps = filterGradTaps(info, "x", "dz", "dw", "t_");
  const { top, left, bottom, right } = info.padInfo;
  const [kh, kw] = [info.filterHeight, info.filterWidth];
  const fullPads = [kh - 1 - top, kw - 1 - left, kh - 1 - bottom, kw - 1 - right];
  const nodes: Node[] = [
    op("Greater", ["a", "zero"], "active"),
    op("Where", ["active", "dy", "zero"], "g"),
    sum("g", "dbeta"),
    op("Mul", ["g", "xhat"], "gx"),
    sum("gx", "dgamma"),
    op("Mul", ["gamma", "rstd"], "k1"),
    op("Mul", ["k1", "dgamma"], "k1dgamma"),
    op("Mul", ["k1dgamma", "minusInvM"], "k2"),
    op("Mul", ["k1", "dbeta"], "k1dbeta"),
    op("Mul", ["k1dbeta", "minusInvM"], "k3"),
    op("Mul", ["g", "k1"], "d1"),
    op("Mul", ["xhat", "k2"], "d2"),
    op("Add", ["d1", "d2"], "d12"),
    op("Add", ["d12", "k3"], "dz"),
    // dx: the "full" correlation of dz with the kernel flipped in space, Ci and Co swapped (stride 1: a plain Conv,
    // faster here than onnxruntime's ConvTranspose)
    transpose("dz", "dzt", NCHW),
    transpose("w", "wio", [2, 3, 0, 1]),
    op("Slice", ["wio", "flipStart", "flipEnd", "flipAxes", "flipSteps"], "wflip"),
    {
      opType: "Conv",
      input: ["dzt", "wflip"],
      output: ["dxt"],
      attribute: [ints("pads", fullPads)],
    },
    transpose("dxt", "dx", NHWC),
    ...taps.nodes,
  ];
  const act = { shape: [n, h, w, co] };
  const channel = { shape: [co] };
  const kernel = [info.filterHeight, info.filterWidth, ci, co];
  return encode(
    nodes,
    { dy: act, x: { shape: info.inShape }, xhat: act, a: act, w: { shape: kernel }, gamma: channel, rstd: channel },
    { dx: info.inShape, dw: kernel, dgamma: [co], dbeta: [co] },
    [
      scalar("zero", 0),
      scalar("minusInvM", -1 / pixels),
      int64s("axesNHW", [0, 1, 2]),
      int64s("flipStart", [-1, -1]),
      int64s("flipEnd", [-kh - 1, -kw - 1]),
      int64s("flipAxes", [2, 3]),
      int64s("flipSteps", [-1, -1]),
      ...taps.initializers,
    ],
  );
}

/** Sessions by block signature; a handful per model (one per distinct block shape). */
const sessions = new Map<string, BlockSessions | null>();

/** Signatures remembered at most: the oldest is freed first (e.g. when the input size changes). */
const MAX_BLOCK_SIGNATURES = 64;

function blockSessions(info: Conv2DInfo, epsilon: number): BlockSessions | null {
  const key = `${info.inShape} ${info.filterHeight}x${info.filterWidth}x${info.inChannels}x${info.outChannels} p${Object.values(info.padInfo)} e${epsilon}`;
  const known = sessions.get(key);
  if (known !== undefined) return known;
  let made: BlockSessions | null = null;
  const forward = createSyncOnnxSession(forwardGraph(info, epsilon), { threads: fusedThreads });
  const backward = forward ? createSyncOnnxSession(backwardGraph(info), { threads: fusedThreads }) : null;
  if (forward && backward) made = { forward, backward };
  else forward?.dispose();
  sessions.set(key, made);
  for (const [old, s] of sessions) {
    if (sessions.size <= MAX_BLOCK_SIGNATURES) break;
    s?.forward.dispose();
    s?.backward.dispose();
    sessions.delete(old);
  }
  return made;
}

let fusedThreads = 2;
/** Off by default: on this 2-core machine the fused blocks measured slower than the unfused step (see below). */
let enabled = false;

/** Threads of the block sessions (the wasm backend's count) and whether `trainingApply` fuses at all. */
export function configureFusedBlocks(options: { threads?: number; enabled?: boolean }): void {
  fusedThreads = options.threads ?? fusedThreads;
  enabled = options.enabled ?? enabled;
}

/** Frees every block session. */
export function resetFusedBlocks(): void {
  for (const s of sessions.values()) {
    s?.forward.dispose();
    s?.backward.dispose();
  }
  sessions.clear();
}

/**
 * A float32 tensor's values in a fresh, unshared array (onnxruntime refuses a threaded wasm heap's shared memory):
 * one copy out of the wasm heap, or of the cpu backend's values.
 */
function hostCopy(t: tf.Tensor): Float32Array {
  const backend = tf.backend();
  if (tf.getBackend() === "wasm") return ((backend as BackendWasm).typedArrayFromHeap(t) as Float32Array).slice();
  const values = t.dataSync() as Float32Array;
  return values.buffer instanceof ArrayBuffer ? values : new Float32Array(values);
}

export interface ConvBnReluOptions {
  padding: "same" | "valid";
  epsilon: number;
}

/**
 * relu(batchNorm(conv2d(x, kernel), batch statistics) * gamma + beta) for training, stride 1, no bias, NHWC;
 * gradients to x, kernel, gamma and beta. Returns the batch mean and (biased) variance for the moving statistics
 * (kept: the caller disposes them). Null when onnxruntime cannot run it (no binding, a graph it rejects).
 */
export function convBnRelu(
  x: tf.Tensor4D,
  kernel: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  o: ConvBnReluOptions,
): { y: tf.Tensor4D; mean: tf.Tensor1D; variance: tf.Tensor1D } | null {
  if (!onnxRuntimeAvailable()) return null;
  const info = convInfo(x.shape, kernel.shape, { strides: 1, pad: o.padding }, false);
  const s = blockSessions(info, o.epsilon);
  if (!s) return null;
  const outShape = [info.batchSize, info.outHeight, info.outWidth, info.outChannels] as [
    number,
    number,
    number,
    number,
  ];
  let stats: [tf.Tensor1D, tf.Tensor1D] | undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, k, g, b] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor1D, tf.Tensor1D];
    const feeds = {
      x: { data: hostCopy(xi), dims: xi.shape },
      w: { data: hostCopy(k), dims: k.shape },
      gamma: { data: hostCopy(g), dims: g.shape },
      beta: { data: hostCopy(b), dims: b.shape },
    };
    const r = s.forward.run(feeds);
    const [a, xhat, mean, variance, rstd] = [r.a, r.xhat, r.mean, r.variance, r.rstd] as Float32Array[];
    stats = [tf.keep(tf.tensor1d(mean as Float32Array)), tf.keep(tf.tensor1d(variance as Float32Array))];
    return {
      value: tf.tensor4d(a as Float32Array, outShape),
      gradFunc: (dy: tf.Tensor) => {
        const grads = s.backward.run({
          dy: { data: hostCopy(dy), dims: outShape },
          x: feeds.x,
          xhat: { data: xhat as Float32Array, dims: outShape },
          a: { data: a as Float32Array, dims: outShape },
          w: feeds.w,
          gamma: feeds.gamma,
          rstd: { data: rstd as Float32Array, dims: [info.outChannels] },
        });
        return [
          tf.tensor4d(grads.dx as Float32Array, xi.shape),
          tf.tensor4d(grads.dw as Float32Array, k.shape),
          tf.tensor1d(grads.dgamma as Float32Array),
          tf.tensor1d(grads.dbeta as Float32Array),
        ];
      },
    };
  });
  const y = op(x, kernel, gamma, beta) as tf.Tensor4D;
  const [mean, variance] = stats as [tf.Tensor1D, tf.Tensor1D];
  return { y, mean, variance };
}

// ---------------------------------------------------------------------------------------------------------------
// A model's training forward pass with its conv + batch norm + ReLU blocks fused

type Layer = tf.layers.Layer;
interface ConvLayer extends Layer {
  kernel: tf.LayerVariable;
}

interface Block {
  conv: ConvLayer;
  bn: BatchNormalization;
  relu: Layer;
  padding: "same" | "valid";
}

/** The only layer reading `layer`'s output, if exactly one does (through one node). */
function soleReader(layer: Layer): Layer | undefined {
  return layer.outboundNodes.length === 1 ? layer.outboundNodes[0]?.outboundLayer : undefined;
}

const same = (v: unknown, n: number) => (Array.isArray(v) ? v.every((e) => e === n) : v === n);

/** The conv + batch norm + ReLU block starting at `layer`, if it is one this module fuses. */
function blockAt(layer: Layer): Block | undefined {
  if (layer.getClassName() !== "Conv2D" || layer.inboundNodes.length !== 1) return undefined;
  const c = layer.getConfig();
  const plain =
    c.useBias === false &&
    same(c.strides, 1) &&
    same(c.dilationRate, 1) &&
    c.activation === "linear" &&
    c.dataFormat === "channelsLast" &&
    (c.padding === "same" || c.padding === "valid");
  const bn = soleReader(layer);
  // a frozen batch norm runs in inference mode (models/weights.ts `freezeEncoder`)
  if (!plain || !(bn instanceof BatchNormalization) || !bn.trainable || bn.inboundNodes.length !== 1) return undefined;
  const bnConfig = bn.getConfig();
  if (!(bnConfig.axis === -1 || bnConfig.axis === 3) || !bnConfig.center || !bnConfig.scale) return undefined;
  const relu = soleReader(bn);
  if (relu?.inboundNodes.length !== 1) return undefined;
  const rc = relu.getConfig();
  const isRelu =
    (relu.getClassName() === "ReLU" && (rc.maxValue === null || rc.maxValue === undefined)) ||
    (relu.getClassName() === "Activation" && rc.activation === "relu");
  if (!isRelu) return undefined;
  return { conv: layer as ConvLayer, bn, relu, padding: c.padding as "same" | "valid" };
}

/** The names of the conv layers whose conv + batch norm + ReLU blocks `trainingApply` fuses, in model order. */
export function fusedBlocks(model: tf.LayersModel): string[] {
  return model.layers.filter((layer) => blockAt(layer) !== undefined).map((layer) => layer.name);
}

/** Whether `trainingApply` would fuse anything now: enabled, on the wasm backend, with onnxruntime. */
function fusing(): boolean {
  return enabled && tf.getBackend() === "wasm" && onnxRuntimeAvailable();
}

/** Runs one fused block on `x`; null when onnxruntime cannot (the caller runs the layers). */
function runBlock(block: Block, x: tf.Tensor): tf.Tensor | null {
  const { bn } = block;
  const out = convBnRelu(
    x as tf.Tensor4D,
    block.conv.kernel.read() as tf.Tensor4D,
    bn.gamma.read() as tf.Tensor1D,
    bn.beta.read() as tf.Tensor1D,
    { padding: block.padding, epsilon: bn.epsilon },
  );
  if (!out) return null;
  updateMovingStatistics(bn, out.mean, out.variance);
  tf.dispose([out.mean, out.variance]);
  return out.y;
}

/**
 * `model.apply(x, {training: true})` with its conv + batch norm + ReLU blocks fused (see the module comment) when
 * the backend is wasm and onnxruntime's binding loads; otherwise, or for a model with several inputs or outputs,
 * `model.apply` itself. The caller disposes the result (inside a tape, as any training forward pass).
 */
export function trainingApply(model: tf.LayersModel, x: tf.Tensor): tf.Tensor {
  const whole = () => model.apply(x, { training: true }) as tf.Tensor;
  if (!fusing() || model.inputs.length !== 1 || model.outputs.length !== 1) return whole();
  const values = new Map<number, tf.Tensor>([[(model.inputs[0] as tf.SymbolicTensor).id, x]]);
  const skip = new Set<Layer>();
  for (const layer of model.layers) {
    if (layer.getClassName() === "InputLayer" || skip.has(layer)) continue;
    const node = layer.inboundNodes[0];
    if (!node || layer.inboundNodes.length !== 1) return whole();
    const inputs = node.inputTensors.map((s) => values.get(s.id));
    if (inputs.some((t) => t === undefined)) return whole();
    const block = blockAt(layer);
    const fused = block ? runBlock(block, inputs[0] as tf.Tensor) : null;
    if (block && fused) {
      skip.add(block.bn).add(block.relu);
      const output = block.relu.inboundNodes[0]?.outputTensors[0];
      if (!output) throw new Error(`segkit: layer ${block.relu.name} has no output`);
      values.set(output.id, fused);
      continue;
    }
    const out = layer.apply(inputs.length === 1 ? (inputs[0] as tf.Tensor) : (inputs as tf.Tensor[]), {
      training: true,
    });
    const outs = Array.isArray(out) ? out : [out];
    node.outputTensors.forEach((s, i) => {
      values.set(s.id, outs[i] as tf.Tensor);
    });
  }
  const y = values.get((model.outputs[0] as tf.SymbolicTensor).id);
  if (!y) throw new Error(`segkit: trainingApply did not reach the output of ${model.name}`);
  return y;
}
