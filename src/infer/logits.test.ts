import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createRng } from "../core/random.js";
import { resizeBilinear } from "../masks/resize.js";
import { logitsToMask, logitsToProbabilities, resizeLogitsToMask } from "./logits.js";

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

describe("resizeLogitsToMask", () => {
  it("argmax of the bilinearly resized logits (hand-computed: 2x1 -> 4x1)", () => {
    // x = 1 reads source x 0.25: (0.25, 0.75) -> class 1; x = 2 reads 0.75: (0.75, 0.25) -> class 0
    assert.deepEqual([...resizeLogitsToMask(Float32Array.of(0, 1, 1, 0), 2, 1, 2, 4, 1).data], [1, 1, 0, 0]);
  });

  it("gives exactly logitsToMask(resizeBilinear(...)): up, down, same size, 1, 3 and 12 channels, ties", () => {
    const rng = createRng(7);
    for (const [w, h, c, ow, oh] of [
      [8, 6, 3, 37, 29],
      [40, 30, 12, 13, 7],
      [16, 12, 12, 16, 12],
      [5, 9, 1, 23, 4],
      [32, 32, 12, 480, 360],
    ] as const) {
      // quarter steps: many exact ties between channels after the resize
      const logits = Float32Array.from({ length: w * h * c }, () => rng.int(-8, 8) / 4);
      const want = logitsToMask(resizeBilinear(logits, w, h, c, ow, oh), ow, oh, c);
      const got = resizeLogitsToMask(logits, w, h, c, ow, oh);
      assert.equal(got.width, ow);
      assert.equal(got.height, oh);
      assert.deepEqual(got.data, want.data, `${w}x${h}x${c} -> ${ow}x${oh}`);
    }
  });
});
