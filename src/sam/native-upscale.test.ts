// The native click upscaling against upscaleAndThreshold's full pass (its logits thresholded and counted): the same
// masks, counts and stability, bit for bit, on confident, noisy, threshold-valued, huge and non-finite logits at
// several sizes, SAM's padded frame and SAM 2's stretch; and the addon's argument checks.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nativeKernels, nativeKernelsStatus } from "../backend/addon.js";
import { createRng } from "../core/random.js";
import { nativeUpscaler } from "./native-upscale.js";
import { upscaleAndThreshold } from "./postprocess.js";
import { preprocessShape } from "./transforms.js";

const status = nativeKernelsStatus();
// CI builds the addon at `npm ci` (native.test.ts fails there if it did not); elsewhere these tests may skip
const skip = status.loaded ? false : `native kernels not built: ${status.reason}`;

const PLANE = 256 * 256;

/** Low-res planes of every kind a decoder gives, and some it should not. */
function planes(seed: number): Float32Array {
  const rng = createRng(seed).next;
  const blobs = new Float32Array(PLANE).fill(-12);
  for (let k = 0; k < 3; k++) {
    // the first at the top left, inside every image's part of the frame
    const [cx, cy, s, a] = k === 0 ? [12, 10, 8, 20] : [rng() * 256, rng() * 256, 4 + rng() * 30, 15 + rng() * 10];
    for (let i = 0; i < PLANE; i++) {
      const [c, r] = [i % 256, Math.floor(i / 256)];
      blobs[i] = (blobs[i] as number) + a * Math.exp(-((c - cx) ** 2 + (r - cy) ** 2) / (2 * s * s));
    }
  }
  const nonFinite = Float32Array.from(blobs);
  for (let k = 0; k < 40; k++) {
    nonFinite[Math.floor(rng() * PLANE)] = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY][
      k % 3
    ] as number;
  }
  const kinds = [
    blobs,
    Float32Array.from({ length: PLANE }, () => (rng() - 0.6) * 6), // noise: nearly every output in doubt
    Float32Array.from({ length: PLANE }, (_, i) => [-1, 0, 1, -1.0001, -5][i % 5] as number), // the levels themselves
    Float32Array.from(blobs, (v) => v * 1e4),
    new Float32Array(PLANE).fill(-20),
    new Float32Array(PLANE).fill(20),
    nonFinite,
  ];
  const low = new Float32Array(kinds.length * PLANE);
  for (const [k, p] of kinds.entries()) low.set(p, k * PLANE);
  return low;
}

describe("nativeUpscaler", { skip }, () => {
  const sizes: [string, { height: number; width: number }, boolean][] = [
    ["640x480", { height: 480, width: 640 }, false],
    ["97x333", { height: 333, width: 97 }, false],
    ["2000x1500", { height: 1500, width: 2000 }, false],
    ["1x1", { height: 1, width: 1 }, false],
    ["500x300 stretched (SAM 2)", { height: 300, width: 500 }, true],
  ];
  for (const [k, [name, size, stretch]] of sizes.entries()) {
    it(`${name}: upscaleAndThreshold's masks, counts and stability, bit for bit`, () => {
      const up = nativeUpscaler();
      assert.ok(up);
      const frame = stretch ? "stretch" : preprocessShape(size.height, size.width);
      const low = planes(k + 1);
      const want = upscaleAndThreshold(low, frame, size, { logits: true }); // the full pass, every output computed
      const got = up(low, frame, size);
      // one thread: the same (the planes' counts are summed over threads)
      assert.deepEqual(nativeUpscaler(1)?.(low, frame, size), got);
      assert.equal(got.masks.length, 7);
      for (const [c, mask] of got.masks.entries()) assert.deepEqual(mask, want.masks[c], `plane ${c}: mask`);
      assert.deepEqual([got.intersections, got.unions], [want.intersections, want.unions]);
      assert.deepEqual(got.stability, want.stability);
      // (not vacuous: the blobs plane has some of each, the constant planes none and all)
      const area = size.height * size.width;
      assert.deepEqual([got.unions[4], got.unions[5]], [0, area]);
      const [inside, around] = [got.intersections[0] as number, got.unions[0] as number];
      if (area > 1) assert.ok(inside > 0 && around < area, `blobs: ${inside} and ${around} of ${area}`);
    });
  }

  it("checks its arguments: sizes, mask arrays, tap indices", () => {
    const k = nativeKernels();
    assert.ok(k);
    const low = new Float32Array(PLANE);
    const taps = (n: number, v = 0) => [new Int32Array(3 * n).fill(v), new Float64Array(3 * n)] as const;
    const [ix, wx] = taps(4);
    const [iy, wy] = taps(2);
    const levels = Float64Array.of(0, -1, 1);
    const call = (
      masks: unknown,
      over: { low?: Float32Array; iy?: Int32Array; counts?: Float64Array; threads?: number } = {},
    ) =>
      k.upscaleThreshold(
        over.low ?? low,
        ix,
        wx,
        over.iy ?? iy,
        wy,
        levels,
        masks as Uint8Array[],
        over.counts ?? new Float64Array(2),
        over.threads ?? 0,
      );
    call([new Uint8Array(8)]); // fits
    assert.throws(() => call([new Uint8Array(7)]), /do not match in size/);
    assert.throws(() => call(new Uint8Array(8)), /do not match in size/);
    assert.throws(() => call([new Uint8Array(8), new Uint8Array(8)]), /do not match in size/);
    assert.throws(() => call([new Float32Array(8)]), /expected Uint8Arrays/);
    assert.throws(() => call([new Uint8Array(8)], { low: new Float32Array(PLANE + 1) }), /do not match in size/);
    assert.throws(() => call([new Uint8Array(8)], { counts: new Float64Array(3) }), /do not match in size/);
    assert.throws(() => call([new Uint8Array(8)], { iy: taps(2, 256)[0] }), /tap indices/);
    assert.throws(() => call([new Uint8Array(8)], { iy: taps(2, -1)[0] }), /tap indices/);
    assert.throws(() => call([new Uint8Array(8)], { threads: -1 }), /threads/);
  });
});
