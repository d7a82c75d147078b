import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { logitsToMask, logitsToProbabilities } from "./logits.js";

const close = (a: ArrayLike<number>, b: readonly number[], tol = 1e-6) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs((a[i] as number) - (b[i] as number)) <= tol, `${i}: ${a[i]}`);
};

describe("logitsToMask", () => {
  it("argmax over the channels, the first on ties", () => {
    const m = logitsToMask(Float32Array.of(1, 2, 0, 5, 5, 1, -1, -2, -0.5), 3, 1, 3);
    assert.deepEqual([...m.data], [1, 0, 2]);
    assert.equal(m.width, 3);
    assert.equal(m.height, 1);
  });

  it("one channel: class 1 where the logit is >= 0 (sigmoid >= 0.5)", () => {
    assert.deepEqual([...logitsToMask(Float32Array.of(-1e-6, 0, 3, -3), 2, 2, 1).data], [0, 1, 1, 0]);
  });
});

describe("logitsToProbabilities", () => {
  it("softmax into class planes (CHW)", () => {
    // pixel 0: (0, ln 3) -> (0.25, 0.75); pixel 1: (1000, 0) -> (1, 0) without overflow
    close(logitsToProbabilities(Float32Array.of(0, Math.log(3), 1000, 0), 2, 1, 2), [0.25, 1, 0.75, 0]);
  });

  it("one channel: the planes 1 - sigmoid and sigmoid", () => {
    const p = 1 / (1 + Math.exp(-2));
    close(logitsToProbabilities(Float32Array.of(0, 2), 2, 1, 1), [0.5, 1 - p, 0.5, p]);
  });
});
