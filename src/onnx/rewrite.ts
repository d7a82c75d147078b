import onnxProto from "onnx-proto";
import { tensorProto } from "./proto.js";
import { pruneOnnx } from "./prune.js";

/**
 * Load-time rewrites of a SAM-style prompt decoder graph into equivalent graphs onnxruntime's CPU provider runs
 * faster (its own optimisations at `all` do not make them). Each one matches the exported structure exactly and
 * leaves the graph as it is when anything differs; outputs stay equal up to float rounding (tested on the official
 * architecture: src/sam/fixtures/models/sam-arch, and the ViT-B decoder in bench/sam).
 *
 * - `upscaling`: the mask decoder's `output_upscaling` (ConvTranspose 2x2 stride 2, LayerNorm2d, GELU, ConvTranspose
 *   2x2 stride 2, GELU) and the hypernetwork product, computed channels-last: each ConvTranspose whose kernel equals
 *   its stride is one MatMul per input pixel (no overlap), LayerNorm2d's channel reductions become last-axis ones
 *   (which onnxruntime fuses into LayerNormalization), and one Transpose puts the final masks' pixels in place. The
 *   NCHW graph spends about a third of a click in ConvTranspose's col2im and strided channel means.
 */

const { onnx } = onnxProto;
type Graph = onnxProto.onnx.GraphProto;
type Node = onnxProto.onnx.INodeProto;
type Tensor = onnxProto.onnx.ITensorProto;

interface Value {
  dims: number[];
  data: Float32Array | BigInt64Array;
}

const T = onnx.TensorProto.DataType;
const AttrType = onnx.AttributeProto.AttributeType;

/** A float32 or int64 constant's value (initializer or Constant node); undefined for anything else. */
function tensorValue(t: Tensor): Value | undefined {
  const dims = (t.dims ?? []).map(Number);
  const raw = t.rawData?.length ? t.rawData : undefined;
  if (t.dataType === T.FLOAT) {
    const data = raw ? new Float32Array(raw.slice().buffer) : Float32Array.from(t.floatData ?? []);
    return { dims, data };
  }
  if (t.dataType === T.INT64) {
    const data = raw
      ? new BigInt64Array(raw.slice().buffer)
      : BigInt64Array.from(t.int64Data ?? [], (v) => BigInt(String(v)));
    return { dims, data };
  }
  return undefined;
}

function attribute(n: Node, name: string) {
  return n.attribute?.find((a) => a.name === name);
}

function ints(n: Node, name: string): number[] | undefined {
  return attribute(n, name)?.ints?.map(Number);
}

const intsAttr = (name: string, values: number[]) => ({ name, ints: values, type: AttrType.INTS });
const intAttr = (name: string, value: number) => ({ name, i: value, type: AttrType.INT });

/** The graph with lookups and the edits the rewrites make. */
class Editor {
  readonly values = new Map<string, Value>();
  readonly producer = new Map<string, Node>();
  readonly consumers = new Map<string, Node[]>();
  private count = 0;

  constructor(
    readonly model: onnxProto.onnx.ModelProto,
    readonly graph: Graph,
  ) {
    for (const t of graph.initializer) {
      const v = tensorValue(t);
      if (v) this.values.set(t.name ?? "", v);
    }
    for (const n of graph.node) {
      for (const o of n.output ?? []) this.producer.set(o, n);
      for (const i of n.input ?? []) this.consumers.set(i, [...(this.consumers.get(i) ?? []), n]);
      const t = n.opType === "Constant" ? attribute(n, "value")?.t : undefined;
      const v = t ? tensorValue(t) : undefined;
      if (v) this.values.set(n.output?.[0] ?? "", v);
    }
  }

  /** A new initializer holding `data`; returns its name. */
  constant(data: Float32Array | BigInt64Array, dims: number[] = [data.length]): string {
    const name = `segkit_rewrite_${this.count++}`;
    this.graph.initializer.push(tensorProto(name, { dims, data }));
    return name;
  }

  /** A new tensor name. */
  tensor(): string {
    return `segkit_rewrite_${this.count++}`;
  }

  /** Puts `nodes` where `at` is (inputs defined before it stay so) and removes the `remove` nodes. */
  replace(at: Node, nodes: Node[], remove: Node[] = [at]) {
    const i = this.graph.node.indexOf(at);
    this.graph.node.splice(i, 0, ...nodes);
    this.graph.node = this.graph.node.filter((n) => !remove.includes(n));
  }

  usesMicrosoftOps() {
    if (!this.model.opsetImport.some((o) => o.domain === "com.microsoft")) {
      this.model.opsetImport.push({ domain: "com.microsoft", version: 1 });
    }
  }
}

/** A ConvTranspose whose kernel equals its stride (no overlap, no padding): its weight, bias and kernel size. */
function patchConvTranspose(e: Editor, n: Node) {
  if (n.opType !== "ConvTranspose" || (n.domain ?? "") !== "") return undefined;
  const w = e.values.get(n.input?.[1] ?? "");
  if (w?.dims.length !== 4 || !(w.data instanceof Float32Array)) return undefined;
  const [cin, cout, k, k2] = w.dims as [number, number, number, number];
  const bias = n.input?.[2] ? e.values.get(n.input[2]) : { dims: [cout], data: new Float32Array(cout) };
  const is = (name: string, want: number) => (ints(n, name) ?? [want, want]).every((v) => v === want);
  const group = attribute(n, "group");
  if (
    k !== k2 ||
    !is("kernel_shape", k) ||
    !is("strides", k) ||
    !(ints(n, "strides")?.length === 2) ||
    !is("pads", 0) ||
    !is("dilations", 1) ||
    !is("output_padding", 0) ||
    attribute(n, "output_shape") ||
    (group && Number(group.i) !== 1) ||
    !(bias?.data instanceof Float32Array) ||
    bias.data.length !== cout
  ) {
    return undefined;
  }
  // [Cin, Cout, k, k] -> [Cin, k * k * Cout]: output pixel (a, b) of the patch, channels last
  const wr = new Float32Array(cin * k * k * cout);
  for (let i = 0; i < cin; i++)
    for (let o = 0; o < cout; o++)
      for (let a = 0; a < k * k; a++) wr[(i * k * k + a) * cout + o] = w.data[(i * cout + o) * k * k + a] as number;
  const br = new Float32Array(k * k * cout);
  for (let a = 0; a < k * k; a++) br.set(bias.data, a * cout);
  return { k, cout, wr, br, cin };
}

const ELEMENTWISE = new Set(
  "Add Sub Mul Div Pow Sqrt Erf Tanh Sigmoid Relu Gelu Neg Abs Exp Log Reciprocal Identity".split(" "),
);

/**
 * The nodes between `start` (an NCHW tensor with `channels` channels) and the tensors where `stop` says the region
 * ends: elementwise operators (constants scalar or per channel, [C, 1, 1]) and channel means (ReduceMean over axis
 * 1, keepdims), which are layout-free once constants and axes move to the last axis. Undefined when something else
 * reads a tensor of the region.
 */
function channelRegion(e: Editor, start: string, channels: number, stop: (n: Node, input: string) => boolean) {
  const region = new Set([start]);
  const nodes: Node[] = [];
  const ends: Node[] = [];
  /** Shape / Size nodes reading the region: their values change with the layout (see `onlyFeed`). */
  const shapes: Node[] = [];
  const outputs = new Set(e.graph.output.map((o) => o.name ?? ""));
  if (outputs.has(start)) return undefined;
  // nodes in graph (topological) order: every region tensor a node reads is known when it is reached
  for (const n of e.graph.node) {
    const reads = (n.input ?? []).filter((i) => region.has(i));
    if (!reads.length) continue;
    if (reads.length === 1 && stop(n, reads[0] as string)) {
      ends.push(n);
      continue;
    }
    const op = (n.domain ?? "") === "" ? (n.opType ?? "") : "";
    if (op === "Shape" || op === "Size") {
      shapes.push(n);
      continue;
    }
    if (op === "ReduceMean") {
      const axes = ints(n, "axes") ?? (n.input?.[1] ? [...(e.values.get(n.input[1])?.data ?? [])].map(Number) : []);
      const keep = attribute(n, "keepdims");
      if (axes.length !== 1 || axes[0] !== 1 || (keep && Number(keep.i) !== 1)) return undefined;
    } else if (ELEMENTWISE.has(op)) {
      for (const i of n.input ?? []) {
        if (region.has(i)) continue;
        const v = e.values.get(i);
        const perChannel = v?.dims.length === 3 && v.dims[0] === channels && v.dims[1] === 1 && v.dims[2] === 1;
        if (!v || (v.data.length !== 1 && !perChannel) || v.dims.length > 3) return undefined;
      }
    } else {
      return undefined;
    }
    nodes.push(n);
    for (const o of n.output ?? []) {
      if (outputs.has(o)) return undefined;
      region.add(o);
    }
  }
  return { nodes, ends, region, shapes };
}

/** Whether everything computed from `nodes`' outputs is read only by the `removed` nodes (dead once they go). */
function onlyFeed(e: Editor, nodes: Node[], removed: Node[]): boolean {
  const outputs = new Set(e.graph.output.map((o) => o.name ?? ""));
  const queue = nodes.flatMap((n) => n.output ?? []);
  const seen = new Set<string>();
  while (queue.length) {
    const t = queue.shift() as string;
    if (seen.has(t)) continue;
    seen.add(t);
    if (outputs.has(t)) return false;
    for (const n of e.consumers.get(t) ?? []) if (!removed.includes(n)) queue.push(...(n.output ?? []));
  }
  return true;
}

/** Moves a region's channel axis last: per-channel constants [C, 1, 1] -> [C], channel means over axis -1. */
function channelsLast(e: Editor, r: { nodes: Node[]; region: Set<string> }) {
  for (const n of r.nodes) {
    if (n.opType === "ReduceMean") {
      const axes = attribute(n, "axes");
      if (axes) axes.ints = [-1];
      else if (n.input) n.input[1] = e.constant(BigInt64Array.of(-1n));
      continue;
    }
    n.input = (n.input ?? []).map((i) => {
      const v = e.values.get(i);
      return !r.region.has(i) && v && v.dims.length === 3 ? e.constant(v.data, [v.data.length]) : i;
    });
  }
}

/** `upscaling` (see the module comment); whether it applied. */
function rewriteUpscaling(e: Editor): boolean {
  const ct1 = e.graph.node.find((n) => patchConvTranspose(e, n));
  if (!ct1) return false;
  const p1 = patchConvTranspose(e, ct1);
  const reshape = e.producer.get(ct1.input?.[0] ?? "");
  const transpose = e.producer.get(reshape?.input?.[0] ?? "");
  if (
    !p1 ||
    reshape?.opType !== "Reshape" ||
    transpose?.opType !== "Transpose" ||
    ints(transpose, "perm")?.join() !== "0,2,1"
  ) {
    return false;
  }
  const rows = transpose.input?.[0] as string; // [B, h * w, Cin], pixels row-major
  const nchwShape = reshape.input?.[1] as string; // [B, Cin, h, w]
  let ct2: Node | undefined;
  const r1 = channelRegion(e, ct1.output?.[0] ?? "", p1.cout, (n, input) => {
    const stop = n.opType === "ConvTranspose" && n.input?.[0] === input;
    if (stop) ct2 = n;
    return stop;
  });
  const p2 = ct2 && patchConvTranspose(e, ct2);
  if (!r1 || !ct2 || !p2 || r1.ends.length !== 1 || p2.cin !== p1.cout) return false;
  const r2 = channelRegion(
    e,
    ct2.output?.[0] ?? "",
    p2.cout,
    (n, input) => n.opType === "Reshape" && n.input?.[0] === input,
  );
  const flat = r2?.ends[0];
  const product = e.consumers.get(flat?.output?.[0] ?? "");
  const mm = product?.[0];
  const masks = e.consumers.get(mm?.output?.[0] ?? "");
  const out = masks?.[0];
  if (
    !r2 ||
    !flat ||
    r2.ends.length !== 1 ||
    product?.length !== 1 ||
    mm?.opType !== "MatMul" ||
    mm.input?.[1] !== flat.output?.[0] ||
    masks?.length !== 1 ||
    out?.opType !== "Reshape" ||
    !onlyFeed(e, [...r1.shapes, ...r2.shapes], [mm, flat, out])
  ) {
    return false;
  }

  // each ConvTranspose: [B, pixels, Cin] x [Cin, k*k*Cout] + bias, its rows split into k*k pixels: [B, pixels*k*k, Cout]
  const patches = (ct: Node, p: NonNullable<ReturnType<typeof patchConvTranspose>>, input: string) => {
    const y = e.tensor();
    const yb = e.tensor();
    return [
      { opType: "MatMul", input: [input, e.constant(p.wr, [p.cin, p.wr.length / p.cin])], output: [y] },
      { opType: "Add", input: [y, e.constant(p.br)], output: [yb] },
      {
        opType: "Reshape",
        input: [yb, e.constant(BigInt64Array.of(0n, -1n, BigInt(p.cout)))],
        output: [ct.output?.[0] ?? ""],
      },
    ];
  };
  e.replace(ct1, patches(ct1, p1, rows));
  e.replace(ct2, patches(ct2, p2, ct2.input?.[0] ?? ""));
  channelsLast(e, r1);
  channelsLast(e, r2);
  // masks = hyper [B, M, C] x upscaled^T: [B, M, pixels] with pixels in (i, j, a, b, c, d) order (i, j the input
  // pixel, (a, b) and (c, d) the two patches) -> (i, a, c) rows, (j, b, d) columns
  const k1 = BigInt(p1.k);
  const k2 = BigInt(p2.k);
  const [m, hw, shape8, m8, mt, size, shape4] = Array.from({ length: 7 }, () => e.tensor()) as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  e.usesMicrosoftOps();
  e.replace(
    mm,
    [
      {
        opType: "FusedMatMul",
        domain: "com.microsoft",
        input: [mm.input?.[0] ?? "", flat.input?.[0] ?? ""],
        output: [m],
        attribute: [intAttr("transB", 1)],
      },
      {
        opType: "Slice",
        input: [nchwShape, e.constant(BigInt64Array.of(2n)), e.constant(BigInt64Array.of(4n))],
        output: [hw],
      },
      {
        opType: "Concat",
        input: [e.constant(BigInt64Array.of(0n, 0n)), hw, e.constant(BigInt64Array.of(k1, k1, k2, k2))],
        output: [shape8],
        attribute: [intAttr("axis", 0)],
      },
      { opType: "Reshape", input: [m, shape8], output: [m8] },
      { opType: "Transpose", input: [m8], output: [mt], attribute: [intsAttr("perm", [0, 1, 2, 4, 6, 3, 5, 7])] },
      { opType: "Mul", input: [hw, e.constant(BigInt64Array.of(k1 * k2))], output: [size] },
      {
        opType: "Concat",
        input: [e.constant(BigInt64Array.of(0n, 0n)), size],
        output: [shape4],
        attribute: [intAttr("axis", 0)],
      },
      { opType: "Reshape", input: [mt, shape4], output: [out.output?.[0] ?? ""] },
    ],
    [mm, flat, out],
  );
  return true;
}

export type DecoderRewrite = "upscaling";

/**
 * The decoder graph `bytes` with the rewrites that apply (see the module comment), cut to its outputs; undefined when
 * none applies.
 */
export function rewriteDecoder(bytes: Uint8Array): { bytes: Uint8Array; applied: DecoderRewrite[] } | undefined {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph as Graph | null;
  if (!graph || graph.initializer.some((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL)) {
    return undefined;
  }
  const e = new Editor(model, graph);
  const applied: DecoderRewrite[] = [];
  if (rewriteUpscaling(e)) applied.push("upscaling");
  if (!applied.length) return undefined;
  const encoded = onnx.ModelProto.encode(model).finish();
  const cut = pruneOnnx(
    encoded,
    graph.output.map((o) => o.name ?? ""),
  );
  return cut ? { bytes: cut, applied } : undefined;
}
