import assert from "node:assert/strict";
import { describe, it } from "node:test";
import onnxProto from "onnx-proto";
import { tensorProto, valueInfo } from "./proto.js";
import { createOnnxSession, type Float32Input, type OnnxInput } from "./session.js";
import { createChooser, createSplitOnnxSession } from "./split.js";

const { onnx } = onnxProto;
const model = (graph: onnxProto.onnx.IGraphProto): Uint8Array =>
  onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: "", version: 13 }], graph }).finish();

/**
 * x [2] static, m [2] baked, p [B, N] varying:
 * s = x * a, u = s + m (static); t = Reshape(u, [B, -1]) with B = Shape(p)[0] (static, reading a shape-only key);
 * out = ReduceSum(p, axis 1, keepdims) + t  ([B, 2]: varying).
 */
const graph = () =>
  model({
    name: "split",
    node: [
      { opType: "Mul", input: ["x", "a"], output: ["s"] },
      { opType: "Add", input: ["s", "m"], output: ["u"] },
      { opType: "Shape", input: ["p"], output: ["shape"] },
      { opType: "Gather", input: ["shape", "zero"], output: ["b"], attribute: [{ name: "axis", i: 0, type: 2 }] },
      { opType: "Concat", input: ["b", "minusOne"], output: ["dims"], attribute: [{ name: "axis", i: 0, type: 2 }] },
      { opType: "Reshape", input: ["u", "dims"], output: ["t"] },
      { opType: "ReduceSum", input: ["p", "one"], output: ["r"], attribute: [{ name: "keepdims", i: 1, type: 2 }] },
      { opType: "Add", input: ["r", "t"], output: ["out"] },
    ],
    initializer: [
      tensorProto("a", { dims: [2], data: Float32Array.of(10, 100) }),
      tensorProto("zero", { dims: [1], data: BigInt64Array.of(0n) }),
      tensorProto("minusOne", { dims: [1], data: BigInt64Array.of(-1n) }),
      tensorProto("one", { dims: [1], data: BigInt64Array.of(1n) }),
    ],
    input: [valueInfo("x", [2]), valueInfo("m", [2]), valueInfo("p", ["B", "N"])],
    output: [valueInfo("out", ["B", 2])],
  });

const f = (...v: number[]) => Float32Array.from(v);
const feeds = (x: Float32Array, p: Float32Array, dims: number[], m = f(0, 0)): Record<string, OnnxInput> => ({
  x: { data: x, dims: [2] },
  m: { data: m, dims: [2] },
  p: { data: p, dims },
});

describe("createSplitOnnxSession", () => {
  it("runs the static part once per static value; the outputs are the whole graph's (hand values)", async () => {
    const bytes = graph();
    const whole = await createOnnxSession(bytes, { threads: 1 });
    const split = await createSplitOnnxSession(bytes, {
      threads: 1,
      varying: ["p"],
      baked: { m: { data: f(0, 0), dims: [2] } },
      outputs: ["out"],
    });
    assert.ok(split);
    try {
      assert.deepEqual(split.frontier, ["t"]);
      const x = f(1, 2);
      const check = async (input: Record<string, OnnxInput>, want: number[]) => {
        const got = await split.run(input, ["out"]);
        assert.deepEqual([...(got?.out?.data ?? [])], want);
        assert.deepEqual(got, await whole.run(input, ["out"]));
      };
      // out = sum(p) + [10 x0, 100 x1]
      await check(feeds(x, f(1, 2, 3), [1, 3]), [16, 206]);
      await check(feeds(x, f(5), [1, 1]), [15, 205]); // another N: the same key (B = 1)
      x[0] = 3; // the static input changed in place: the static part runs again
      await check(feeds(x, f(5), [1, 1]), [35, 205]);
      await check(feeds(f(0, 1), f(1, 1), [1, 2]), [2, 102]);
      // an empty fetch: the static part only (for new static values), nothing returned
      assert.deepEqual(await split.run(feeds(f(2, 3), f(7), [1, 1]), []), {});
      await check(feeds(f(2, 3), f(1), [1, 1]), [21, 301]);
      // another value on the baked input, or a batch of 2 (another key): not split
      assert.equal(await split.run(feeds(x, f(5), [1, 1], f(1, 0)), ["out"]), undefined);
      assert.equal(await split.run(feeds(x, f(1, 2), [2, 1]), ["out"]), undefined);
      assert.deepEqual([...((await whole.run(feeds(x, f(1, 2), [2, 1]), ["out"])).out?.data ?? [])], [31, 202]);
    } finally {
      await split.dispose();
      await whole.dispose();
    }
  });

  it("with an alternative varying session: the same outputs from either (every 8th run goes to the other)", async () => {
    const bytes = graph();
    const split = await createSplitOnnxSession(bytes, {
      threads: 1,
      varying: ["p"],
      baked: { m: { data: f(0, 0), dims: [2] } },
      outputs: ["out"],
      alternative: { threads: 2, spinning: "run" },
    });
    assert.ok(split);
    try {
      for (let k = 0; k < 17; k++) {
        const got: Record<string, Float32Input> | undefined = await split.run(feeds(f(1, 2), f(k, 1), [1, 2]), ["out"]);
        assert.deepEqual([...(got?.out?.data ?? [])], [k + 11, k + 201]);
      }
    } finally {
      await split.dispose();
    }
  });

  it("undefined when nothing depends on static inputs alone, or a Shape's input shape follows varying values", async () => {
    const none = await createSplitOnnxSession(graph(), {
      threads: 1,
      varying: ["p", "x"],
      baked: {},
      outputs: ["out"],
    });
    assert.equal(none, undefined);
    // t = Reshape(x * a, Shape(Reshape(p, q))): q varying, so that Shape follows q's values, not only its shape
    const valueShaped = model({
      name: "valueShaped",
      node: [
        { opType: "Mul", input: ["x", "a"], output: ["s"] },
        { opType: "Cast", input: ["q"], output: ["qi"], attribute: [{ name: "to", i: 7, type: 2 }] },
        { opType: "Reshape", input: ["p", "qi"], output: ["pq"] },
        { opType: "Shape", input: ["pq"], output: ["shape"] },
        { opType: "Reshape", input: ["s", "shape"], output: ["t"] },
        { opType: "Add", input: ["t", "pq"], output: ["out"] },
      ],
      initializer: [tensorProto("a", { dims: [2], data: Float32Array.of(10, 100) })],
      input: [valueInfo("x", [2]), valueInfo("p", [2]), valueInfo("q", [2])],
      output: [valueInfo("out", ["A", "B"])],
    });
    const split = await createSplitOnnxSession(valueShaped, {
      threads: 1,
      varying: ["p", "q"],
      baked: {},
      outputs: ["out"],
    });
    assert.ok(split);
    try {
      assert.deepEqual(split.frontier, ["s"]); // t is varying: computed per run
      const input = (q: number[]): Record<string, OnnxInput> => ({
        x: { data: f(1, 2), dims: [2] },
        p: { data: f(3, 4), dims: [2] },
        q: { data: Float32Array.from(q), dims: [2] },
      });
      const a = await split.run(input([1, 2]), ["out"]);
      assert.deepEqual(
        [a?.out?.dims, [...(a?.out?.data ?? [])]],
        [
          [1, 2],
          [13, 204],
        ],
      );
      const b = await split.run(input([2, 1]), ["out"]);
      assert.deepEqual(
        [b?.out?.dims, [...(b?.out?.data ?? [])]],
        [
          [2, 1],
          [13, 204],
        ],
      );
    } finally {
      await split.dispose();
    }
  });

  it("computes constant data shaped by keys once, in the static part (SAM's positional encoding per batch)", async () => {
    // e = Expand(pe, [B, 20]) with B = Shape(p)[0]: constants and a key only, 20 values; out = ReduceSum(p) + e
    const pe = Float32Array.from({ length: 20 }, (_, i) => i);
    const bytes = model({
      name: "shapedData",
      node: [
        { opType: "Shape", input: ["p"], output: ["shape"] },
        { opType: "Gather", input: ["shape", "zero"], output: ["b"], attribute: [{ name: "axis", i: 0, type: 2 }] },
        { opType: "Concat", input: ["b", "twenty"], output: ["dims"], attribute: [{ name: "axis", i: 0, type: 2 }] },
        { opType: "Expand", input: ["pe", "dims"], output: ["e"] },
        { opType: "ReduceSum", input: ["p", "one"], output: ["r"], attribute: [{ name: "keepdims", i: 1, type: 2 }] },
        { opType: "Add", input: ["r", "e"], output: ["out"] },
      ],
      initializer: [
        tensorProto("pe", { dims: [1, 20], data: pe }),
        tensorProto("zero", { dims: [1], data: BigInt64Array.of(0n) }),
        tensorProto("twenty", { dims: [1], data: BigInt64Array.of(20n) }),
        tensorProto("one", { dims: [1], data: BigInt64Array.of(1n) }),
      ],
      input: [valueInfo("x", [2]), valueInfo("p", ["B", "N"])],
      output: [valueInfo("out", ["B", 20])],
    });
    const split = await createSplitOnnxSession(bytes, { threads: 1, varying: ["p"], baked: {}, outputs: ["out"] });
    assert.ok(split);
    try {
      assert.deepEqual(split.frontier, ["e"]);
      const run = (p: number[], dims: number[]) =>
        split.run({ x: { data: f(0, 0), dims: [2] }, p: { data: Float32Array.from(p), dims } }, ["out"]);
      const got = await run([1, 2], [1, 2]);
      assert.deepEqual(
        [...(got?.out?.data ?? [])],
        [...pe].map((v) => v + 3),
      );
      assert.equal(await run([1, 2], [2, 1]), undefined); // a batch of 2: another key, the whole graph runs
    } finally {
      await split.dispose();
    }
  });
});

describe("createChooser", () => {
  /** `n` runs with way 0 taking `ms[0]` and way 1 `ms[1]`: the 1-based run numbers that went to way 1. */
  const runs = (c: ReturnType<typeof createChooser>, n: number, ms: [number, number], from: number) => {
    const other: number[] = [];
    for (let k = 0; k < n; k++) {
      const way = c.pick();
      c.record(way, ms[way] as number);
      if (way === 1) other.push(from + k);
    }
    return other;
  };

  it("keeps way 0 while way 1 is not faster by the margin, trying way 1 on two runs in every 8", () => {
    const c = createChooser([0.85, 0.97]);
    assert.deepEqual(runs(c, 24, [10, 10], 1), [7, 8, 15, 16, 23, 24]);
    // ratio 0.9: above 0.85 (the median of [1, 1, 0.9, 0.9, 0.9] at run 48; way 0 stays in use after it)
    assert.deepEqual(runs(c, 40, [10, 9], 25), [31, 32, 39, 40, 47, 48, 55, 56, 63, 64]);
  });

  it("switches on the median of the last paired ratios, tries a far slower way every 32nd run, and switches back", () => {
    const c = createChooser([0.85, 0.97]);
    // way 1 twice as fast: ratios 0.5 at runs 8, 16, 24 (runs 7, 15, 23 only warm it), then way 1 is in use
    assert.deepEqual(runs(c, 24, [10, 5], 1), [7, 8, 15, 16, 23, 24]);
    // way 0 tried at runs 31-32, 39-40, 47-48 (ratio 2 > 1.25), then only every 32nd run: 63-64, 95-96
    const in1 = runs(c, 72, [10, 5], 25);
    assert.deepEqual(
      Array.from({ length: 72 }, (_, k) => k + 25).filter((r) => !in1.includes(r)),
      [31, 32, 39, 40, 47, 48, 63, 64, 95, 96],
    );
    // way 0 now 5% faster than way 1 (0.95 < 0.97): tried at 127-128 and 159-160 (every 32nd run while the median of
    // [2, 2, 2, 2, 0.95] and [2, 2, 2, 0.95, 0.95] is 2), at 192 the median is 0.95 and way 0 is in use again
    const in1Again = runs(c, 100, [9.5, 10], 97);
    assert.deepEqual(
      Array.from({ length: 100 }, (_, k) => k + 97).filter((r) => !in1Again.includes(r)),
      [127, 128, 159, 160, 191, 192, 193, 194, 195, 196],
    );
    assert.deepEqual(runs(c, 16, [9.5, 10], 197), [199, 200, 207, 208]);
  });

  it("the first run of a trial only warms the other way: a cold first run does not hide that it is faster", () => {
    // way 1 takes 9 ms warm (0.9 of way 0's 10: below a margin of 0.95) but 30 ms on the first run of each trial
    const c = createChooser([0.95, 0.97]);
    let first = true;
    const other: number[] = [];
    for (let r = 1; r <= 24; r++) {
      const way = c.pick();
      c.record(way, way === 0 ? 10 : first ? 30 : 9);
      if (way === 1) {
        other.push(r);
        first = !first;
      }
    }
    assert.deepEqual(other, [7, 8, 15, 16, 23, 24]);
    assert.equal(c.pick(), 1); // run 25: way 1 is in use
  });
});
