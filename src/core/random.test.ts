import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createRng, deriveSeed, permutation } from "./random.js";

describe("random", () => {
  it("repeats a stream for a seed, in [0, 1)", () => {
    const a = createRng(5);
    const b = createRng(5);
    const xs = Array.from({ length: 1000 }, () => a.next());
    assert.deepEqual(
      xs,
      Array.from({ length: 1000 }, () => b.next()),
    );
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    assert.ok(Math.abs(mean - 0.5) < 0.03, `mean ${mean}`);
    assert.notEqual(createRng(6).next(), xs[0]);
  });

  it("draws integers in [lo, hi), each value reached", () => {
    const rng = createRng(1);
    const seen = new Set(Array.from({ length: 500 }, () => rng.int(3, 7)));
    assert.deepEqual([...seen].sort(), [3, 4, 5, 6]);
  });

  it("derives distinct seeds where the order of parts differs", () => {
    assert.notEqual(deriveSeed(0, 1), deriveSeed(1, 0));
    assert.notEqual(deriveSeed(3, 1, 2), deriveSeed(3, 2, 1));
    assert.equal(deriveSeed(3, 1, 2), deriveSeed(3, 1, 2));
    const many = new Set<number>();
    for (let s = 0; s < 50; s++) for (let i = 0; i < 50; i++) many.add(deriveSeed(s, i));
    assert.equal(many.size, 2500);
  });

  it("permutes 0..n-1", () => {
    const p = permutation(100, createRng(2));
    assert.deepEqual(
      [...p].sort((a, b) => a - b),
      Array.from({ length: 100 }, (_, i) => i),
    );
    assert.notDeepEqual(
      p,
      Array.from({ length: 100 }, (_, i) => i),
    );
  });
});
