import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { bilinearTaps, resizeBilinear, resizeBilinearAntialias } from "./resize.js";

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

describe("resizeBilinear precision float32 (torch's arithmetic) and crop", () => {
  // a 3x4 plane to 7x5 (up rows, up columns), against torch 1.13
  // F.interpolate(x, size=(7, 5), mode="bilinear", align_corners=False), x = arange(12) * 0.7310585 - 3.1 in float32
  const x = Float32Array.from([
    -3.0999999046325684, -2.368941307067871, -1.637882947921753, -0.9068245887756348, -0.1757659912109375,
    0.5552926063537598, 1.2863507270812988, 2.017409324645996, 2.7484679222106934, 3.4795265197753906,
    4.210585117340088, 4.941643238067627,
  ]);
  const torch = [
    -3.0999999046325684, -2.588258743286133, -2.0034122467041016, -1.4185653924942017, -0.9068245887756348,
    -2.6822521686553955, -2.17051100730896, -1.5856645107269287, -1.0008177757263184, -0.4890769124031067,
    -1.4290090799331665, -0.9172680377960205, -0.33242130279541016, 0.2524253726005554, 0.7641663551330566,
    -0.17576594650745392, 0.33597511053085327, 0.9208217263221741, 1.5056684017181396, 2.017409563064575,
    1.077477216720581, 1.589218258857727, 2.174064874649048, 2.758911609649658, 3.2706525325775146, 2.3307201862335205,
    2.842461109161377, 3.4273080825805664, 4.012155055999756, 4.523895740509033, 2.7484679222106934, 3.260209083557129,
    3.8450558185577393, 4.42990255355835, 4.941643238067627,
  ];

  it("both precisions match torch's F.interpolate to float32 rounding", () => {
    close(resizeBilinear(x, 4, 3, 1, 5, 7, { precision: "float32" }), torch, 1e-6);
    close(resizeBilinear(x, 4, 3, 1, 5, 7), torch, 1e-6);
  });

  it("float32 taps: the scale rounded to float32, weights float32, the last index repeated at the edge", () => {
    // 3 -> 7: output i samples (i + 0.5) * scale - 0.5 = -0.29, 0.14, 0.57, 1, 1.43, 1.86, 2.29
    const t = bilinearTaps(3, 7, "float32");
    assert.deepEqual([...t.i0], [0, 0, 0, 1, 1, 1, 2]);
    assert.deepEqual([...t.i1], [1, 1, 1, 2, 2, 2, 2]);
    // output 3 lands just past input 1: the scale fround(3 / 7) is 1.7e-8 above 3 / 7
    assert.equal(t.w1[3], Math.fround(Math.fround(3 / 7) * 3.5 - 0.5 - 1));
    assert.ok((t.w1[3] as number) > 0);
    // output 6: past the last pixel, both taps on it with weights 1 - l and l (sum 1 in float32)
    const l = Math.fround(Math.fround(3 / 7) * 6.5 - 0.5 - 2);
    assert.deepEqual([t.w0[6], t.w1[6]], [Math.fround(1 - l), l]);
    // the default taps: the exact position 1, and the position clamped to the last pixel
    const d = bilinearTaps(3, 7);
    assert.deepEqual([d.i0[3], d.w1[3], d.i0[6], d.w1[6]], [1, 0, 2, 0]);
  });

  it("crop is exactly its rectangle of the whole output (top-left by default), in both precisions", () => {
    for (const precision of ["float32", "float64"] as const) {
      const whole = resizeBilinear(x, 4, 3, 1, 5, 7, { precision });
      const part = resizeBilinear(x, 4, 3, 1, 5, 7, { precision, crop: { height: 4, width: 3 } });
      assert.equal(part.length, 12);
      for (let y = 0; y < 4; y++) assert.deepEqual(part.subarray(y * 3, y * 3 + 3), whole.subarray(y * 5, y * 5 + 3));
      // a rectangle elsewhere: columns 2..4, rows 3..5
      const mid = resizeBilinear(x, 4, 3, 1, 5, 7, { precision, crop: { x: 2, y: 3, height: 3, width: 3 } });
      for (let y = 0; y < 3; y++) {
        assert.deepEqual(mid.subarray(y * 3, y * 3 + 3), whole.subarray((y + 3) * 5 + 2, (y + 3) * 5 + 5));
      }
    }
  });
});

describe("resizeBilinearAntialias", () => {
  it("equals torch's F.interpolate(antialias=True) when shrinking, enlarging and both (max |diff| 1e-6)", () => {
    const ref = JSON.parse(readFileSync(join(import.meta.dirname, "fixtures", "resize-antialias.json"), "utf8")) as {
      cases: {
        height: number;
        width: number;
        outHeight: number;
        outWidth: number;
        input: number[];
        output: number[];
      }[];
    };
    for (const c of ref.cases) {
      const got = resizeBilinearAntialias(Float32Array.from(c.input), c.width, c.height, 3, c.outWidth, c.outHeight);
      assert.equal(got.length, c.output.length);
      let worst = 0;
      for (const [i, v] of got.entries()) worst = Math.max(worst, Math.abs(v - (c.output[i] as number)));
      assert.ok(worst <= 1e-6, `${c.width}x${c.height} -> ${c.outWidth}x${c.outHeight}: max |diff| ${worst}`);
    }
  });

  it("by hand: 4 -> 2, each output a triangle of half-width 2 over 3 inputs (weights 0.75, 0.75, 0.25, normalised)", () => {
    // output 0: centre 1, inputs 0..2 (int(1 - 2 + 0.5) = 0, int(1 + 2 + 0.5) = 3): weights 0.75, 0.75, 0.25 / 1.75
    const got = resizeBilinearAntialias(Float32Array.of(0, 4, 8, 12), 4, 1, 1, 2, 1);
    assert.ok(Math.abs((got[0] as number) - (0 * 0.75 + 4 * 0.75 + 8 * 0.25) / 1.75) < 1e-6);
    assert.ok(Math.abs((got[1] as number) - (4 * 0.25 + 8 * 0.75 + 12 * 0.75) / 1.75) < 1e-6);
  });
});
