import onnxProto from "onnx-proto";
import { hasExternalWeights, tensorData, tensorProto } from "./proto.js";
import { pruneOnnx } from "./prune.js";
import { type OnnxInput, toOrtFeeds } from "./session.js";
import { partSession, zeroInputs } from "./split.js";

/**
 * Load-time rewrites of a SAM-style prompt decoder graph into equivalent graphs onnxruntime's CPU provider runs
 * faster (its own optimisations at `all` do not make them; the measured ViT-B decoder per click, CPU time: 40 ms
 * before, 30 ms with `upscaling`, 25 ms with both). Each one matches the exported structure exactly and
 * leaves the graph as it is when anything differs; outputs stay equal up to float rounding (tested on the official
 * architecture: src/sam/fixtures/models/sam-arch, and the ViT-B decoder in bench/sam).
 *
 * - `upscaling`: the mask decoder's `output_upscaling` (ConvTranspose 2x2 stride 2, LayerNorm2d, GELU, ConvTranspose
 *   2x2 stride 2, GELU) and the hypernetwork product, computed channels-last: each ConvTranspose whose kernel equals
 *   its stride is one MatMul per input pixel (no overlap), LayerNorm2d's channel reductions become last-axis ones
 *   (which onnxruntime fuses into LayerNormalization), and one Transpose puts the final masks' pixels in place. The
 *   NCHW graph spends about a third of a click in ConvTranspose's col2im and strided channel means.
 * - `attention`: the two-way transformer's cross attentions between a few tokens and the image's 64 x 64 pixels,
 *   with the pixel-side projections moved to the token side by associativity (`rewriteTokenToImage`,
 *   `rewriteImageToToken`): [pixels, D] x [D, heads * tokens] products instead of [pixels, D] x [D, D / 2] ones and
 *   no [pixels, D] head transposes (where the pixels' queries are computed once per image, the attention weights,
 *   [heads, pixels, tokens], are transposed to [pixels, heads * tokens]: 48 values per pixel in SAM). Applied where
 *   heads * tokens < the attention's width with one point (6 tokens, 8 heads: 48 < 128 in SAM); with 11 points or
 *   more it costs more than it saves, and stays correct.
 */

const { onnx } = onnxProto;
type Graph = onnxProto.onnx.GraphProto;
type Node = onnxProto.onnx.INodeProto;

type Value = NonNullable<ReturnType<typeof tensorData>>;

const AttrType = onnx.AttributeProto.AttributeType;

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
      const v = tensorData(t);
      if (v) this.values.set(t.name ?? "", v);
    }
    for (const n of graph.node) {
      this.link(n, true);
      const t = n.opType === "Constant" ? attribute(n, "value")?.t : undefined;
      const v = t ? tensorData(t) : undefined;
      if (v) this.values.set(n.output?.[0] ?? "", v);
    }
  }

  /** Enters `n` in the producer and consumer maps (`add`), or takes it out. */
  private link(n: Node, add: boolean) {
    for (const o of n.output ?? []) {
      if (add) this.producer.set(o, n);
      else if (this.producer.get(o) === n) this.producer.delete(o);
    }
    for (const i of n.input ?? []) {
      const others = (this.consumers.get(i) ?? []).filter((c) => c !== n);
      this.consumers.set(i, add ? [...others, n] : others);
    }
  }

  /** A new initializer holding `data`; returns its name. */
  constant(data: Float32Array | BigInt64Array, dims: number[] = [data.length]): string {
    const name = `segkit_rewrite_${this.count++}`;
    this.graph.initializer.push(tensorProto(name, { dims, data }));
    return name;
  }

  /** New tensor names, one per key. */
  tensors<K extends string>(...keys: K[]): Record<K, string> {
    return Object.fromEntries(keys.map((k) => [k, `segkit_rewrite_${this.count++}`])) as Record<K, string>;
  }

  /**
   * Puts `nodes` where `at` is (inputs defined before it stay so) and removes the `remove` nodes; the producer and
   * consumer maps follow.
   */
  replace(at: Node, nodes: Node[], remove: Node[] = [at]) {
    const i = this.graph.node.indexOf(at);
    this.graph.node.splice(i, 0, ...nodes);
    this.graph.node = this.graph.node.filter((n) => !remove.includes(n));
    for (const n of remove) this.link(n, false);
    for (const n of nodes) this.link(n, true);
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
    const { y, yb } = e.tensors("y", "yb");
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
  const { m, hw, shape8, m8, mt, size, shape4 } = e.tensors("m", "hw", "shape8", "m8", "mt", "size", "shape4");
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

/** The projection `x @ w + b` feeding one side of an attention (MatMul then Add, weights constant). */
function projection(e: Editor, t: string) {
  const add = e.producer.get(t);
  if (add?.opType !== "Add") return undefined;
  for (const [m, b] of [
    [0, 1],
    [1, 0],
  ] as const) {
    const mm = e.producer.get(add.input?.[m] ?? "");
    const w = e.values.get(mm?.input?.[1] ?? "");
    const bias = e.values.get(add.input?.[b] ?? "");
    if (mm?.opType !== "MatMul" || w?.dims.length !== 2 || !(w.data instanceof Float32Array)) continue;
    if (!(bias?.data instanceof Float32Array) || bias.data.length !== w.dims[1]) continue;
    return {
      x: mm.input?.[0] as string,
      w: w.data,
      rows: w.dims[0] as number,
      cols: w.dims[1] as number,
      b: bias.data,
    };
  }
  return undefined;
}

/** `Transpose(Reshape(projection, [B, N, heads, d]), perm)`: the projection and the head count. */
function heads(e: Editor, t: string, perm: string) {
  const tr = e.producer.get(t);
  const rs = e.producer.get(tr?.input?.[0] ?? "");
  if (tr?.opType !== "Transpose" || ints(tr, "perm")?.join() !== perm || rs?.opType !== "Reshape") return undefined;
  const shape = e.producer.get(rs.input?.[1] ?? "");
  const h = shape?.opType === "Concat" && shape.input?.length === 4 ? e.values.get(shape.input[2] ?? "") : undefined;
  const p = projection(e, rs.input?.[0] ?? "");
  const count = h?.data.length === 1 ? Number(h.data[0]) : 0;
  return p && count > 0 && p.cols % count === 0 ? { ...p, heads: count, d: p.cols / count } : undefined;
}

const isShape = (n: Node) => n.opType === "Shape" || n.opType === "Size";

/** The one consumer of `n`'s output besides Shape / Size nodes (undefined when there are others). */
function next(e: Editor, n: Node | undefined): Node | undefined {
  const all = (e.consumers.get(n?.output?.[0] ?? "") ?? []).filter((c) => !isShape(c));
  return all.length === 1 ? all[0] : undefined;
}

/**
 * segment-anything's `Attention` (q, k, v and output projections, heads split by Reshape + Transpose, softmax of
 * q k^T / sqrt(d)) around each Softmax; undefined when the graph differs.
 */
function matchAttention(e: Editor, sm: Node) {
  const div = e.producer.get(sm.input?.[0] ?? "");
  const scale = e.values.get(div?.input?.[1] ?? "");
  const mm1 = e.producer.get(div?.input?.[0] ?? "");
  const mm2 = next(e, sm);
  const ot = next(e, mm2);
  const or = next(e, ot);
  const omm = next(e, or);
  const wo = e.values.get(omm?.input?.[1] ?? "");
  if (
    !div ||
    !mm1 ||
    !mm2 ||
    !ot ||
    !or ||
    !omm ||
    (div.opType !== "Div" && div.opType !== "Mul") ||
    scale?.data.length !== 1 ||
    mm1.opType !== "MatMul" ||
    mm2.opType !== "MatMul" ||
    mm2.input?.[0] !== sm.output?.[0] ||
    ![undefined, -1, 3].includes(attribute(sm, "axis") ? Number(attribute(sm, "axis")?.i) : undefined) ||
    ot.opType !== "Transpose" ||
    ints(ot, "perm")?.join() !== "0,2,1,3" ||
    or.opType !== "Reshape" ||
    omm.opType !== "MatMul" ||
    omm.input?.[0] !== or.output?.[0] ||
    !(wo?.data instanceof Float32Array) ||
    wo.dims.length !== 2 ||
    next(e, mm1) !== div ||
    next(e, div) !== sm ||
    // Shape nodes of the removed tensors may only size the removed nodes (the heads' recombination)
    !onlyFeed(
      e,
      [mm1, div, sm, mm2, ot, or].flatMap((n) => (e.consumers.get(n.output?.[0] ?? "") ?? []).filter(isShape)),
      [mm1, div, sm, mm2, ot, or, omm],
    )
  ) {
    return undefined;
  }
  const q = heads(e, mm1.input?.[0] ?? "", "0,2,1,3");
  const k = heads(e, mm1.input?.[1] ?? "", "0,2,3,1");
  const v = heads(e, mm2.input?.[1] ?? "", "0,2,1,3");
  const s = div.opType === "Div" ? 1 / Number(scale.data[0]) : Number(scale.data[0]);
  if (!q || !k || !v || q.heads !== k.heads || k.heads !== v.heads || q.d !== k.d || v.cols !== wo.dims[0]) {
    return undefined;
  }
  return { sm, div, mm1, mm2, ot, or, omm, q, k, v, wo: wo.data, out: wo.dims[1] as number, s };
}

type Attention = NonNullable<ReturnType<typeof matchAttention>>;

/**
 * Per-head blocks of a projection weight `w` [rows, heads * d]: `[heads, d, rows]` (`transposed`, w_h^T) or
 * `[heads, rows, d]` (w_h), times `scale`.
 */
function headBlocks(w: Float32Array, rows: number, heads: number, d: number, transposed: boolean, scale = 1) {
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++)
    for (let j = 0; j < d; j++)
      for (let r = 0; r < rows; r++) {
        const value = (w[r * heads * d + h * d + j] as number) * scale;
        out[transposed ? (h * d + j) * rows + r : (h * rows + r) * d + j] = value;
      }
  return out;
}

/**
 * Tokens attending to the image (few queries, many keys): the keys' and values' projections moved to the query
 * side. scores_h = s q_h (x_k W_k,h + b_k,h)^T = (s q_h W_k,h^T) x_k^T + a per-query constant (which softmax
 * drops); out_h = P_h (x_v W_v,h + b_v,h) = (P_h x_v) W_v,h + b_v,h (rows of P sum to 1). The products with the
 * image are [heads * tokens, D] x [D, pixels] and back, instead of projecting every pixel.
 */
function rewriteTokenToImage(e: Editor, a: Attention) {
  const { k, v, s } = a;
  const D = k.rows;
  const { qk, qk2, scores, p, px, pxh, o } = e.tensors("qk", "qk2", "scores", "p", "px", "pxh", "o");
  e.usesMicrosoftOps();
  e.replace(
    a.mm1,
    [
      // queries by head [B, H, tokens, d] x s W_k,h^T [H, d, D] -> [B, H, tokens, D] -> [B, H * tokens, D]
      {
        opType: "MatMul",
        input: [a.mm1.input?.[0] ?? "", e.constant(headBlocks(k.w, D, k.heads, k.d, true, s), [k.heads, k.d, D])],
        output: [qk],
      },
      { opType: "Reshape", input: [qk, e.constant(BigInt64Array.of(0n, -1n, BigInt(D)))], output: [qk2] },
      // scores [B, H * tokens, D] x x_k^T [B, D, pixels] -> [B, H * tokens, pixels], softmax over the pixels
      {
        opType: "FusedMatMul",
        domain: "com.microsoft",
        input: [qk2, k.x],
        output: [scores],
        attribute: [intAttr("transB", 1)],
      },
      { opType: "Softmax", input: [scores], output: [p], attribute: [intAttr("axis", -1)] },
      // P x_v: [B, H * tokens, pixels] x [B, pixels, D] -> [B, H * tokens, D] -> [B, H, tokens, D]
      { opType: "MatMul", input: [p, v.x], output: [px] },
      {
        opType: "Reshape",
        input: [px, e.constant(BigInt64Array.of(0n, BigInt(v.heads), -1n, BigInt(v.rows)))],
        output: [pxh],
      },
      // (P x_v) W_v,h + b_v,h: [B, H, tokens, D] x [H, D, d] -> [B, H, tokens, d], what the attention's P V gave
      {
        opType: "MatMul",
        input: [pxh, e.constant(headBlocks(v.w, v.rows, v.heads, v.d, false), [v.heads, v.rows, v.d])],
        output: [o],
      },
      { opType: "Add", input: [o, e.constant(v.b, [v.heads, 1, v.d])], output: [a.mm2.output?.[0] ?? ""] },
    ],
    [a.mm1, a.div, a.sm, a.mm2],
  );
}

/**
 * The image attending to tokens (many queries, few keys): the output projection moved to the values,
 * out = sum_h P_h (v_h W_o,h) + b_o, [pixels, heads * tokens] x [heads * tokens, D]; and, when `queries` (the
 * image side's query projection is not precomputed per image), the query projection moved to the keys:
 * scores_h = x_q (s W_q,h k_h^T) + s b_q,h k_h^T, [pixels, D] x [D, heads * tokens]; scores and probabilities stay
 * pixel-major, [B, pixels, heads, tokens]. Otherwise the graph's own probabilities, [B, heads, pixels, tokens], are
 * transposed to pixel-major (heads * tokens values per pixel); no [pixels, D] tensor is transposed either way.
 */
function rewriteImageToToken(e: Editor, a: Attention, queries: boolean) {
  const { q, v } = a;
  const H = BigInt(v.heads);
  const D = a.out;
  const { vo, vo2, p2 } = e.tensors("vo", "vo2", "p2");
  const nodes: Node[] = [
    {
      opType: "MatMul",
      input: [a.mm2.input?.[1] ?? "", e.constant(a.wo, [v.heads, v.d, D])], // W_o's rows are head-major
      output: [vo],
    },
    { opType: "Reshape", input: [vo, e.constant(BigInt64Array.of(0n, -1n, BigInt(D)))], output: [vo2] },
  ];
  if (queries) {
    const { kq, kq2, kq3, kb, kb2, sc, sc2, sc4, pr } = e.tensors(
      "kq",
      "kq2",
      "kq3",
      "kb",
      "kb2",
      "sc",
      "sc2",
      "sc4",
      "pr",
    );
    const kht = a.mm1.input?.[1] ?? ""; // [B, H, d, tokens]
    nodes.push(
      // W_q,h (s k_h^T): [H, D, d] x [B, H, d, tokens] -> [B, H, D, tokens] -> [B, D, H * tokens]
      {
        opType: "MatMul",
        input: [e.constant(headBlocks(q.w, q.rows, q.heads, q.d, false, a.s), [q.heads, q.rows, q.d]), kht],
        output: [kq],
      },
      { opType: "Transpose", input: [kq], output: [kq2], attribute: [intsAttr("perm", [0, 2, 1, 3])] },
      { opType: "Reshape", input: [kq2, e.constant(BigInt64Array.of(0n, BigInt(q.rows), -1n))], output: [kq3] },
      // s b_q,h k_h^T: [H, 1, d] x [B, H, d, tokens] -> [B, 1, H * tokens]
      {
        opType: "MatMul",
        input: [
          e.constant(
            q.b.map((x) => x * a.s),
            [q.heads, 1, q.d],
          ),
          kht,
        ],
        output: [kb],
      },
      { opType: "Reshape", input: [kb, e.constant(BigInt64Array.of(0n, 1n, -1n))], output: [kb2] },
      { opType: "MatMul", input: [q.x, kq3], output: [sc] },
      { opType: "Add", input: [sc, kb2], output: [sc2] },
      { opType: "Reshape", input: [sc2, e.constant(BigInt64Array.of(0n, 0n, H, -1n))], output: [sc4] },
      { opType: "Softmax", input: [sc4], output: [pr], attribute: [intAttr("axis", -1)] },
      { opType: "Reshape", input: [pr, e.constant(BigInt64Array.of(0n, 0n, -1n))], output: [p2] },
    );
  } else {
    const { pt } = e.tensors("pt");
    nodes.push(
      {
        opType: "Transpose",
        input: [a.sm.output?.[0] ?? ""],
        output: [pt],
        attribute: [intsAttr("perm", [0, 2, 1, 3])],
      },
      { opType: "Reshape", input: [pt, e.constant(BigInt64Array.of(0n, 0n, -1n))], output: [p2] },
    );
  }
  nodes.push({ opType: "MatMul", input: [p2, vo2], output: [a.omm.output?.[0] ?? ""] });
  e.replace(
    queries ? a.mm1 : a.mm2,
    nodes,
    queries ? [a.mm1, a.div, a.sm, a.mm2, a.ot, a.or, a.omm] : [a.mm2, a.ot, a.or, a.omm],
  );
}

export type DecoderRewrite = "upscaling" | "attention";

/**
 * `attention` (see the module comment) on every attention whose one side is small (tokens) and the other large (the
 * image's pixels) at the graph's declared shapes with one point, and whose large side is computed per prompt (the
 * split runs what depends on the image alone once per image: block 1's image-side projections stay as they are).
 * The sizes come from one run of the graph on zero-filled inputs.
 */
async function rewriteAttention(e: Editor, varying: readonly string[]): Promise<boolean> {
  const found = e.graph.node.filter((n) => n.opType === "Softmax").map((n) => matchAttention(e, n));
  const all = found.filter((a): a is Attention => a !== undefined);
  const zeros = zeroInputs(e.graph, varying);
  if (!all.length || !zeros) return false;
  const probe = onnx.GraphProto.decode(onnx.GraphProto.encode(e.graph).finish());
  const names = [...new Set(all.flatMap((a) => [a.q.x, a.k.x]))];
  probe.output = names.map((name) => onnx.ValueInfoProto.create({ name }));
  let rows: Record<string, number>;
  try {
    const session = await partSession(e.model, probe, names, { threads: 1 });
    try {
      const used = Object.fromEntries(session.inputNames.map((n) => [n, zeros[n] as OnnxInput]));
      const out = await session.run(toOrtFeeds(used));
      rows = Object.fromEntries(names.map((n) => [n, out[n]?.dims.length === 3 ? Number(out[n]?.dims[1]) : 0]));
    } finally {
      await session.release();
    }
  } catch {
    return false; // a graph that cannot be cut or that onnxruntime cannot run on zeros: left as it is
  }
  // tensors whose values follow the varying inputs (shapes aside)
  const moving = new Set(varying);
  for (const n of e.graph.node) {
    if (n.opType !== "Shape" && n.opType !== "Size" && n.input?.some((i) => moving.has(i))) {
      for (const o of n.output ?? []) moving.add(o);
    }
  }
  let applied = false;
  for (const a of all) {
    const nq = rows[a.q.x] ?? 0;
    const nk = rows[a.k.x] ?? 0;
    if (!nq || !nk) continue;
    if (nq * a.q.heads < a.q.cols && nk > nq && (moving.has(a.k.x) || moving.has(a.v.x))) {
      rewriteTokenToImage(e, a);
      applied = true;
    } else if (nk * a.k.heads < a.k.cols && nq > nk) {
      rewriteImageToToken(e, a, moving.has(a.q.x));
      applied = true;
    }
  }
  return applied;
}

/**
 * The decoder graph `bytes` with the rewrites that apply (see the module comment), cut to its outputs; undefined when
 * none applies.
 */
export async function rewriteDecoder(
  bytes: Uint8Array,
  varying: readonly string[],
): Promise<{ bytes: Uint8Array; applied: DecoderRewrite[] } | undefined> {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph as Graph | null;
  if (!graph || hasExternalWeights(graph)) {
    return undefined;
  }
  const e = new Editor(model, graph);
  const applied: DecoderRewrite[] = [];
  if (rewriteUpscaling(e)) applied.push("upscaling");
  if (await rewriteAttention(e, varying)) applied.push("attention");
  if (!applied.length) return undefined;
  const encoded = onnx.ModelProto.encode(model).finish();
  const cut = pruneOnnx(
    encoded,
    graph.output.map((o) => o.name ?? ""),
  );
  return cut ? { bytes: cut, applied } : undefined;
}
