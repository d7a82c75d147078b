import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { logitsToMask, logitsToProbabilities, resizeBilinear } from "./logits.js";

const close = (a: ArrayLike<number>, b: readonly number[], tol = 1e-6) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs((a[i] as number) - (b[i] as number)) <= tol, `${i}: ${a[i]}`);
};

describe("resizeBilinear", () => {
  it("enlarges with half-pixel centres, clamped at the edges (PyTorch align_corners=False values)", () => {
    // [0, 10] -> 4: x samples (x + 0.5) / 2 - 0.5 = -0.25 (-> 0), 0.25, 0.75, 1.25 (-> 1)
    close(resizeBilinear(Float32Array.of(0, 10), 2, 1, 1, 4, 1), [0, 2.5, 7.5, 10]);
    // rows the same way
    close(resizeBilinear(Float32Array.of(0, 10), 1, 2, 1, 1, 4), [0, 2.5, 7.5, 10]);
  });

  it("shrinks by sampling between pixels (no antialiasing)", () => {
    close(resizeBilinear(Float32Array.of(0, 1, 2, 3), 4, 1, 1, 2, 1), [0.5, 2.5]);
  });

  it("interpolates every channel of an HWC image in 2-D", () => {
    // 2x2, channels (v, -v): v = [[0, 4], [8, 12]] -> 3x3 samples 1/6, 5/6, 3/2 -> clamped (0, 0.5, 1)
    const src = Float32Array.of(0, 0, 4, -4, 8, -8, 12, -12);
    const out = resizeBilinear(src, 2, 2, 2, 3, 3);
    const v = [0, 2, 4, 4, 6, 8, 8, 10, 12];
    close(
      out,
      v.flatMap((x) => [x, -x]),
    );
  });

  it("returns a copy at the same size and rejects a wrong length", () => {
    const src = Float32Array.of(1, 2, 3);
    const out = resizeBilinear(src, 3, 1, 1, 3, 1);
    assert.deepEqual([...out], [1, 2, 3]);
    assert.notEqual(out, src);
    assert.throws(() => resizeBilinear(src, 2, 1, 1, 4, 1), RangeError);
  });
});

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
