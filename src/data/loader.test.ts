import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SegkitError } from "../core/errors.js";
import { createImage, createMask } from "../core/image.js";
import type { SkippedSample } from "../core/skipped.js";
import type { Dataset, Sample } from "./dataset.js";
import { type Batch, batches, splitDataset, splitIndices } from "./loader.js";

/** A dataset of n 4x4 samples; sample i has every pixel = i (image) and i % 3 (mask); `bad` ones throw. */
function toyDataset(n: number, bad: ReadonlySet<number> = new Set(), onGet?: (i: number) => void): Dataset {
  return {
    format: "toy",
    classNames: ["a", "b", "c"],
    ignoreIndex: 255,
    length: n,
    skipped: [],
    id: (i) => `s${i}`,
    files: (i) => [`/toy/${i}.png`],
    async get(i): Promise<Sample> {
      onGet?.(i);
      await Promise.resolve();
      if (bad.has(i)) throw new SegkitError("cannot decode: truncated", { file: `/toy/${i}.png` });
      return {
        id: `s${i}`,
        image: createImage(4, 4, new Uint8Array(48).fill(i)),
        mask: createMask(4, 4, new Uint8Array(16).fill(i % 3)),
      };
    },
  };
}

async function collect(it: AsyncIterable<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

describe("splitIndices", () => {
  it("is a deterministic partition", () => {
    const [a, b] = splitIndices(10, [0.8, 0.2], 42);
    assert.equal(a?.length, 8);
    assert.equal(b?.length, 2);
    assert.deepEqual(
      [...(a ?? []), ...(b ?? [])].sort((x, y) => x - y),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.deepEqual(splitIndices(10, [0.8, 0.2], 42), [a, b]);
    assert.notDeepEqual(splitIndices(10, [0.8, 0.2], 43), [a, b]);
  });

  it("leaves out the rest when fractions sum below 1, and rejects bad fractions", () => {
    const parts = splitIndices(100, [0.1, 0.25], 0);
    assert.deepEqual(
      parts.map((p) => p.length),
      [10, 25],
    );
    assert.throws(() => splitIndices(10, [0.7, 0.7], 0), /sum to at most 1/);
    assert.throws(() => splitIndices(10, [-0.1], 0), RangeError);
    assert.throws(() => splitIndices(10, [Number.NaN], 0), RangeError);
  });

  it("splits datasets into views", async () => {
    const [train, val] = splitDataset(toyDataset(5), [0.6, 0.4], 1);
    assert.equal(train?.length, 3);
    assert.equal(val?.length, 2);
    const ids = new Set([...Array(3).keys()].map((i) => train?.id(i)).concat([0, 1].map((i) => val?.id(i))));
    assert.equal(ids.size, 5);
    const first = await val?.get(0);
    assert.equal(first?.id, val?.id(0));
  });
});

describe("batches", () => {
  it("yields [B,H,W,3] images and [B,H,W] masks in order, last batch kept", async () => {
    const got = await collect(batches(toyDataset(5), { size: [2, 3], batchSize: 2 }));
    assert.deepEqual(
      got.map((b) => b.ids),
      [["s0", "s1"], ["s2", "s3"], ["s4"]],
    );
    const b = got[1] as Batch;
    assert.equal(b.images.length, 2 * 2 * 3 * 3);
    assert.equal(b.masks.length, 2 * 2 * 3);
    assert.deepEqual([...b.images.subarray(0, 18)], new Array(18).fill(2));
    assert.deepEqual([...b.masks.subarray(6)], new Array(6).fill(0)); // sample 3: 3 % 3
    const dropped = await collect(batches(toyDataset(5), { size: 2, batchSize: 2, keepLast: false }));
    assert.equal(dropped.length, 2);
  });

  it("shuffles by seed and epoch, the same way every time", async () => {
    const order = async (seed: number, epoch: number) =>
      (await collect(batches(toyDataset(20), { size: 2, batchSize: 20, shuffle: true, seed, epoch })))[0]?.ids;
    const a = await order(1, 0);
    assert.deepEqual(await order(1, 0), a);
    assert.notDeepEqual(await order(1, 1), a);
    assert.notDeepEqual(await order(2, 0), a);
    assert.deepEqual([...(a ?? [])].sort(), [...Array(20).keys()].map((i) => `s${i}`).sort());
  });

  it("reports bad samples with file and reason and goes on; strict stops", async () => {
    const skipped: SkippedSample[] = [];
    const got = await collect(
      batches(toyDataset(6, new Set([1, 4])), { size: 2, batchSize: 4, onSkip: (s) => skipped.push(s) }),
    );
    assert.deepEqual(
      got.map((b) => b.ids),
      [["s0", "s2", "s3", "s5"]],
    );
    assert.deepEqual(skipped, [
      { path: "/toy/1.png", reason: "cannot decode: truncated" },
      { path: "/toy/4.png", reason: "cannot decode: truncated" },
    ]);
    await assert.rejects(collect(batches(toyDataset(6, new Set([4])), { size: 2, strict: true })), (e: unknown) => {
      return e instanceof SegkitError && e.file === "/toy/4.png";
    });
  });

  it("keeps at most `prefetch` samples in flight", async () => {
    let started = 0;
    let maxAhead = 0;
    let consumed = 0;
    const ds = toyDataset(40, new Set(), () => {
      started++;
      maxAhead = Math.max(maxAhead, started - consumed);
    });
    for await (const b of batches(ds, { size: 2, batchSize: 1, prefetch: 5 })) consumed += b.size;
    assert.equal(consumed, 40);
    assert.ok(maxAhead <= 5 + 1, `ran ${maxAhead} samples ahead of the consumer`);
    assert.ok(maxAhead >= 5, `prefetch unused (${maxAhead})`);
  });

  it("augments deterministically per (seed, epoch, sample), independent of prefetch", async () => {
    const run = (prefetch: number, epoch: number) =>
      collect(batches(toyDataset(6), { size: 4, batchSize: 6, augment: true, seed: 3, epoch, prefetch }));
    const [a, b, c] = await Promise.all([run(1, 0), run(6, 0), run(6, 1)]);
    assert.deepEqual(a[0]?.images, b[0]?.images);
    assert.deepEqual(a[0]?.masks, b[0]?.masks);
    assert.notDeepEqual(a[0]?.images, c[0]?.images);
  });

  it("rejects nonsense sizes", async () => {
    await assert.rejects(collect(batches(toyDataset(2), { size: 0 })), RangeError);
    await assert.rejects(collect(batches(toyDataset(2), { size: 2, batchSize: 0 })), RangeError);
    await assert.rejects(collect(batches(toyDataset(2), { size: 2, batchSize: 2.5 })), RangeError);
    // An explicit undefined takes the default rather than breaking the loader.
    const got = await collect(batches(toyDataset(9), { size: 2, batchSize: undefined }));
    assert.deepEqual(
      got.map((b) => b.size),
      [8, 1],
    );
  });
});
