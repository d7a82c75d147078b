import onnxProto from "onnx-proto";
import type * as ort from "onnxruntime-node";
import { SegkitError } from "../core/errors.js";
import { hasExternalWeights, hasSubgraphs } from "./proto.js";
import { pruneOnnx } from "./prune.js";
import {
  createOrtSession,
  type Float32Input,
  floatOutputs,
  type OnnxInput,
  type OnnxSessionOptions,
  toOrtFeeds,
} from "./session.js";

/**
 * A graph run many times with the same values on some inputs (a SAM decoder: one image's embeddings, a click per
 * run), split in two so that what depends only on those inputs runs once: the "static" part (from the static inputs
 * and constants) and the "varying" part (the rest, taking the static part's tensors it reads as inputs). The same
 * nodes compute the same values, so the outputs are those of the whole graph.
 *
 * Inputs are of three kinds: `varying` (new per run), `baked` (always the given value when the split is used: a
 * run with other values returns undefined; SAM's `mask_input` / `has_mask_input` without a previous mask) and
 * static (every other input). Tensors are tagged by what their values depend on: constants, static inputs,
 * only the shapes of varying tensors (through `Shape` / `Size`: SAM's batch and token counts, which the export
 * computes from the prompt's shape), or varying values. A static node may read shape-only tensors ("keys", e.g. the
 * `repeat_interleave` count of the image embeddings): their values are baked into the static part, and a run is
 * split only when its varying inputs' shapes give the same keys (computed once per shape by a small graph from
 * zero-filled inputs of those shapes: a shape-only tensor cannot depend on values). A `Shape` of a tensor whose
 * shape can depend on varying values (through an operator outside `SHAPE_FROM_SHAPES`) counts as varying.
 *
 * The static part runs again only when a static input's bytes change (compared with a copy on every run).
 */

const { onnx } = onnxProto;
type Graph = onnxProto.onnx.GraphProto;
type Node = onnxProto.onnx.INodeProto;

const CONST = 0;
const STATIC = 1;
const SHAPE = 2;
const VARYING = 3;

/** Operators whose output shape follows from their inputs' shapes and attributes only (not from input values). */
const SHAPE_FROM_SHAPES = new Set(
  (
    "Abs Add And ArgMax ArgMin Cast Ceil Clip Concat Conv ConvTranspose Cos Div Equal Erf Exp Flatten Floor Gather " +
    "Gelu Gemm Greater GreaterOrEqual Identity LayerNormalization LeakyRelu Less LessOrEqual Log MatMul Max Mean Min " +
    "Mod Mul Neg Not Or Pow Reciprocal Relu Round Sigmoid Sin Softmax Softplus Sqrt Sub Sum Tanh Transpose Where Xor"
  ).split(" "),
);
/** Operators whose output shape depends on the values of their inputs after the first only (axes, sizes, shapes). */
const SHAPE_FROM_LATER_VALUES = new Set(
  (
    "Compress Expand Pad ReduceL2 ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum Reshape Resize Slice Split " +
    "Squeeze Tile TopK Unsqueeze"
  ).split(" "),
);

export interface SplitOnnxOptions extends OnnxSessionOptions {
  /** Inputs that change from run to run. */
  varying: readonly string[];
  /** Inputs with a fixed value whenever the split is used. */
  baked: Readonly<Record<string, OnnxInput>>;
  /** The outputs runs fetch. */
  outputs: readonly string[];
  /**
   * Options for a second session of the varying part, used first (say, threads that spin while a run is on: faster
   * on an idle machine, much slower on a loaded one): runs go to it unless the session of the other options has been
   * clearly faster lately (by 15%; back when the alternative is faster again by 3%: `createChooser`).
   */
  alternative?: OnnxSessionOptions;
}

export interface SplitOnnxSession {
  /** The tensors the static part hands to the varying part. */
  readonly frontier: readonly string[];
  /**
   * `fetch` for these inputs (every input of the graph), or undefined when the split does not apply to them (other
   * values on baked inputs, varying shapes that give other keys): then run the whole graph. An empty `fetch` runs
   * only the static part, when its inputs are new (a warm-up for new static values), and returns `{}`.
   */
  run(
    inputs: Readonly<Record<string, OnnxInput>>,
    fetch: readonly string[],
  ): Promise<Record<string, Float32Input> | undefined>;
  dispose(): Promise<void>;
}

interface Analysis {
  model: onnxProto.onnx.ModelProto;
  tags: Map<string, number>;
  nodeTags: number[];
  frontier: string[];
  keys: string[];
  statics: string[];
}

/** Tags every tensor and node (see the module comment); undefined for graphs this cannot split. */
function analyse(bytes: Uint8Array, varying: readonly string[], baked: Readonly<Record<string, OnnxInput>>) {
  const model = onnx.ModelProto.decode(bytes);
  const g = model.graph as Graph | null;
  if (!g) return undefined;
  if (hasSubgraphs(g) || hasExternalWeights(g)) return undefined;
  // baked inputs become initializers
  for (const [name, value] of Object.entries(baked)) g.initializer.push(initializer(name, value));
  g.input = g.input.filter((i) => !((i.name ?? "") in baked));
  const tags = new Map<string, number>();
  /** Whether a tensor's shape can depend on varying values. */
  const shapeVaries = new Set<string>();
  for (const t of g.initializer) tags.set(t.name ?? "", CONST);
  const statics: string[] = [];
  for (const i of g.input) {
    const name = i.name ?? "";
    const v = varying.includes(name);
    tags.set(name, v ? VARYING : STATIC);
    if (!v) statics.push(name);
  }
  /** Tensors holding constant data (more than a few values: not shapes or axes) or derived from such data. */
  const data = new Set(g.initializer.filter((t) => numel(t.dims) > 16).map((t) => t.name ?? ""));
  const nodeTags: number[] = [];
  for (const n of g.node) {
    const inputs = (n.input ?? []).filter((x) => x !== "");
    if (inputs.some((x) => !tags.has(x))) return undefined; // not in topological order
    const ins = inputs.map((x) => tags.get(x) as number);
    let tag = Math.max(CONST, ...ins);
    const shapeOnly = n.opType === "Shape" || n.opType === "Size";
    const varies = inputs.some((x) => shapeVaries.has(x));
    if (shapeOnly && tag >= SHAPE) tag = varies ? VARYING : SHAPE;
    const constant = n.opType === "Constant" && numel(n.attribute?.find((a) => a.name === "value")?.t?.dims) > 16;
    const onData = !shapeOnly && (constant || inputs.some((x) => data.has(x)));
    if (onData) for (const o of n.output ?? []) data.add(o);
    // a static node reading keys; or constant data shaped by keys (SAM's dense positional encoding repeated per
    // prompt batch): computed once in the static part, not on every run
    if (tag === SHAPE && (ins.includes(STATIC) || onData)) tag = STATIC;
    const op = n.domain ? "" : (n.opType ?? "");
    const valuesShape = SHAPE_FROM_SHAPES.has(op) ? [] : SHAPE_FROM_LATER_VALUES.has(op) ? ins.slice(1) : ins;
    const outShapeVaries = !shapeOnly && (varies || valuesShape.includes(VARYING));
    nodeTags.push(tag);
    for (const o of n.output ?? []) {
      tags.set(o, tag);
      if (outShapeVaries) shapeVaries.add(o);
    }
  }
  const frontier = new Set<string>();
  const keys = new Set<string>();
  g.node.forEach((n, i) => {
    const tag = nodeTags[i] as number;
    for (const x of n.input ?? []) {
      if (tag >= SHAPE && tags.get(x) === STATIC) frontier.add(x);
      if (tag === STATIC && tags.get(x) === SHAPE) keys.add(x);
    }
  });
  for (const o of g.output) if (tags.get(o.name ?? "") === STATIC) frontier.add(o.name ?? "");
  return { model, tags, nodeTags, frontier: [...frontier], keys: [...keys], statics } satisfies Analysis;
}

/**
 * The split of `model` (ONNX bytes), or undefined when nothing in it depends only on the static inputs (or the
 * graph cannot be cut: subgraphs, external weights). The static part runs on the first `run`.
 */
export async function createSplitOnnxSession(
  model: Uint8Array,
  options: SplitOnnxOptions,
): Promise<SplitOnnxSession | undefined> {
  const { varying, baked, outputs, alternative, ...sessionOptions } = options;
  const a = analyse(model, varying, baked);
  if (!a) return undefined;
  // what the static part computes (the varying part may also read static inputs themselves); nothing: no split
  const computed = a.frontier.filter((name) => !a.statics.includes(name));
  if (computed.length === 0) return undefined;
  const graph = a.model.graph as Graph;
  const copy = () => onnx.GraphProto.decode(onnx.GraphProto.encode(graph).finish());

  // keys: the shape-only tensors static nodes read, from zero-filled varying inputs of each run's shapes
  let keysSession: ort.InferenceSession | undefined;
  if (a.keys.length) {
    const g = copy();
    g.output = a.keys.map((name) => onnx.ValueInfoProto.create({ name }));
    keysSession = await partSession(a.model, g, a.keys, sessionOptions);
  }
  const keysFor = async (inputs: Readonly<Record<string, OnnxInput>>) => {
    if (!keysSession) return {};
    const feeds: Record<string, OnnxInput> = {};
    for (const name of keysSession.inputNames) {
      const t = inputs[name] as OnnxInput;
      const size = t.dims.reduce((x, y) => x * y, 1);
      // biome-ignore lint/suspicious/noExplicitAny: the same typed array class, zero-filled
      feeds[name] = { ...t, data: new (t.data.constructor as any)(size) };
    }
    return keysSession.run(toOrtFeeds(feeds));
  };

  let staticSession: ort.InferenceSession | undefined;
  let varyingSessions: ort.InferenceSession[] = [];
  const chooser = createChooser([0.85, 0.97]);
  let bakedKeys: Record<string, ort.Tensor> = {};
  /** Checked shapes of the varying inputs: whether they give the baked keys. */
  const shapesOk = new Map<string, boolean>();
  let last: { statics: Buffer[]; frontier: Record<string, ort.Tensor> } | undefined;
  let broken = false;

  /** Builds both parts on the first run, with the keys of its shapes. */
  const build = async (inputs: Readonly<Record<string, OnnxInput>>) => {
    bakedKeys = await keysFor(inputs);
    const s = copy();
    for (const [name, t] of Object.entries(bakedKeys)) s.initializer.push(initializer(name, ortInput(t)));
    s.node = s.node.filter((n) => !(n.output ?? []).some((o) => o in bakedKeys));
    s.input = s.input.filter((i) => !varying.includes(i.name ?? ""));
    s.output = computed.map((name) => onnx.ValueInfoProto.create({ name }));
    staticSession = await partSession(a.model, s, computed, sessionOptions);
    const frontier = await staticSession.run(toOrtFeeds(pick(inputs, staticSession.inputNames)));
    const v = copy();
    v.node = v.node.filter((_, i) => (a.nodeTags[i] as number) !== STATIC);
    v.input = [
      ...v.input.filter((i) => varying.includes(i.name ?? "") || a.frontier.includes(i.name ?? "")),
      ...computed.map((name) => typedValueInfo(name, frontier[name] as ort.Tensor)),
    ];
    const built: ort.InferenceSession[] = [];
    try {
      for (const o of alternative ? [{ ...sessionOptions, ...alternative }, sessionOptions] : [sessionOptions]) {
        built.push(await partSession(a.model, v, outputs, o));
      }
    } catch (err) {
      for (const s of built) await s.release();
      throw err;
    }
    varyingSessions = built;
    return frontier;
  };

  // both parts built now when the declared shapes allow (zero-filled inputs, the varying dims 1), else on first use
  const zeros = zeroInputs(graph, varying);
  if (zeros) {
    try {
      await build(zeros);
      shapesOk.set(JSON.stringify(varying.map((name) => zeros[name]?.dims)), true);
    } catch {
      await staticSession?.release();
      staticSession = undefined;
    }
  }

  return {
    frontier: computed,
    async run(inputs, fetch) {
      for (const [name, value] of Object.entries(baked)) {
        const given = inputs[name];
        if (!given || !sameBytes(given, value)) return undefined;
      }
      const shapes = JSON.stringify(varying.map((name) => inputs[name]?.dims));
      let frontier: Record<string, ort.Tensor>;
      if (broken) return undefined;
      if (!staticSession) {
        try {
          frontier = await build(inputs);
        } catch {
          broken = true; // the whole graph runs instead
          return undefined;
        }
        shapesOk.set(shapes, true);
      } else {
        let ok = shapesOk.get(shapes);
        if (ok === undefined) {
          const keys = await keysFor(inputs);
          ok = Object.entries(bakedKeys).every(([k, t]) => sameBytes(ortInput(keys[k] as ort.Tensor), ortInput(t)));
          if (shapesOk.size >= 64) shapesOk.clear();
          shapesOk.set(shapes, ok);
        }
        if (!ok) return undefined;
        const same = last?.statics.every((b, i) => b.equals(bytesOf(inputs[a.statics[i] as string] as OnnxInput)));
        frontier =
          same && last ? last.frontier : await staticSession.run(toOrtFeeds(pick(inputs, staticSession.inputNames)));
      }
      if (last?.frontier !== frontier) {
        // copies: a caller may change its arrays in place
        last = { statics: a.statics.map((n) => Buffer.from(bytesOf(inputs[n] as OnnxInput))), frontier };
      }
      if (fetch.length === 0) return {};
      const way = varyingSessions.length > 1 ? chooser.pick() : 0;
      const session = varyingSessions[way] as ort.InferenceSession;
      const feeds = {
        ...toOrtFeeds(
          pick(
            inputs,
            session.inputNames.filter((n) => !(n in frontier)),
          ),
        ),
      };
      for (const name of session.inputNames) if (name in frontier) feeds[name] = frontier[name] as ort.Tensor;
      const t = performance.now();
      const out = await session.run(feeds, [...fetch]);
      chooser.record(way, performance.now() - t);
      return floatOutputs(out);
    },
    async dispose() {
      last = undefined;
      const sessions = [keysSession, staticSession, ...varyingSessions];
      keysSession = staticSession = undefined; // a second dispose releases nothing
      varyingSessions = [];
      for (const s of sessions) await s?.release();
    },
  };
}

/**
 * Which of two equivalent ways to run next, starting with way 0. Every 8th run, and the one before it, go to the way
 * not in use: the first of the two warms it (its weights are not in the caches), and the second's time divided by
 * the last run of the way in use is a ratio timed under the same load. Once there are 3 such ratios, when the median
 * of the last 5 (the upper one of 4) is below `leave[w]` (`w` the way in use), the other way becomes the one in use.
 * While the other way is far slower (median above 1.25), it is tried every 32nd run only.
 */
export function createChooser(leave: readonly [number, number]): {
  pick(): number;
  record(way: number, ms: number): void;
} {
  let use = 0;
  let runs = 0;
  let every = 8;
  let last = Number.NaN;
  let warmed = false;
  const ratios: number[] = [];
  return {
    pick() {
      runs++;
      const phase = runs % every;
      return phase === 0 || phase === every - 1 ? 1 - use : use;
    },
    record(way, ms) {
      if (way === use) {
        last = ms;
        return;
      }
      warmed = !warmed;
      if (warmed || !(last > 0)) return;
      ratios.push(ms / last);
      if (ratios.length > 5) ratios.shift();
      const median = [...ratios].sort((x, y) => x - y)[ratios.length >> 1] as number;
      const known = ratios.length >= 3;
      if (known && median < (leave[use] as number)) {
        use = way;
        last = ms;
        ratios.length = 0;
      }
      every = known && median > 1.25 ? 32 : 8;
    },
  };
}

/** Number of values of a tensor of `dims` (1 for a scalar, 0 when absent). */
function numel(dims: onnxProto.onnx.ITensorProto["dims"]): number {
  return dims ? dims.reduce<number>((a, d) => a * Number(d), 1) : 0;
}

/** Zero-filled inputs of the declared types and dims (a varying symbolic dim 1); undefined when that is not known. */
export function zeroInputs(g: Graph, varying: readonly string[]): Record<string, OnnxInput> | undefined {
  const T = onnx.TensorProto.DataType;
  const out: Record<string, OnnxInput> = {};
  for (const i of g.input) {
    const name = i.name ?? "";
    const t = i.type?.tensorType;
    const dims = (t?.shape?.dim ?? []).map((d) => Number(d.dimValue ?? 0) || (varying.includes(name) ? 1 : 0));
    if (!t?.shape || dims.includes(0)) return undefined;
    const size = dims.reduce((x, y) => x * y, 1);
    if (t.elemType === T.FLOAT) out[name] = { data: new Float32Array(size), dims };
    else if (t.elemType === T.INT64) out[name] = { data: new BigInt64Array(size), dims };
    else if (t.elemType === T.INT32) out[name] = { data: new Int32Array(size), dims };
    else if (t.elemType === T.BOOL) out[name] = { type: "bool", data: new Uint8Array(size), dims };
    else return undefined;
  }
  return out;
}

function pick(inputs: Readonly<Record<string, OnnxInput>>, names: readonly string[]): Record<string, OnnxInput> {
  const out: Record<string, OnnxInput> = {};
  for (const name of names) {
    const t = inputs[name];
    if (!t) throw new SegkitError(`input \`${name}\` missing`);
    out[name] = t;
  }
  return out;
}

function bytesOf(t: OnnxInput): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

function sameBytes(a: OnnxInput, b: OnnxInput): boolean {
  return (
    a.data.constructor === b.data.constructor &&
    a.dims.length === b.dims.length &&
    a.dims.every((d, i) => d === b.dims[i]) &&
    Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(bytesOf(b))
  );
}

/** An onnxruntime tensor (float32, int64, int32 or bool) as segkit's input form. */
function ortInput(t: ort.Tensor): OnnxInput {
  const dims = [...t.dims];
  if (t.type === "bool") return { type: "bool", data: t.data as Uint8Array, dims };
  if (t.type === "float32" || t.type === "int64" || t.type === "int32") {
    return { data: t.data as Float32Array | BigInt64Array | Int32Array, dims } as OnnxInput;
  }
  throw new SegkitError(`cannot split a graph at a ${t.type} tensor`);
}

function initializer(name: string, t: OnnxInput): onnxProto.onnx.ITensorProto {
  const T = onnx.TensorProto.DataType;
  const type =
    "type" in t ? T.BOOL : t.data instanceof BigInt64Array ? T.INT64 : t.data instanceof Int32Array ? T.INT32 : T.FLOAT;
  return { name, dims: t.dims, dataType: type, rawData: Uint8Array.from(bytesOf(t)) };
}

function typedValueInfo(name: string, t: ort.Tensor): onnxProto.onnx.IValueInfoProto {
  const T = onnx.TensorProto.DataType;
  const elemType = { float32: T.FLOAT, int64: T.INT64, int32: T.INT32, bool: T.BOOL }[t.type as string];
  if (elemType === undefined) throw new SegkitError(`cannot split a graph at a ${t.type} tensor`);
  return { name, type: { tensorType: { elemType, shape: { dim: t.dims.map((d) => ({ dimValue: d })) } } } };
}

/**
 * A session of what `outputs` (declared outputs of `graph`) need of `graph` in `model` (`pruneOnnx`), declaring only
 * the inputs a node reads.
 */
export function partSession(
  model: onnxProto.onnx.IModelProto,
  graph: Graph,
  outputs: readonly string[],
  options: Parameters<typeof createOrtSession>[1],
): Promise<ort.InferenceSession> {
  const bytes = pruneOnnx(onnx.ModelProto.encode({ ...model, graph }).finish(), outputs);
  if (!bytes) throw new SegkitError("the graph cannot be cut");
  const cut = onnx.ModelProto.decode(bytes);
  const g = cut.graph as Graph;
  const read = new Set(g.node.flatMap((n: Node) => n.input ?? []));
  g.input = g.input.filter((i) => read.has(i.name ?? "") || g.output.some((o) => o.name === i.name));
  return createOrtSession(onnx.ModelProto.encode(cut).finish(), options);
}
