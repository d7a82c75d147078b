import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createImage, createMask, type Mask, type RgbImage } from "../core/image.js";
import { createRng } from "../core/random.js";
import { type Rect, resizeImage, resizeMask } from "./resize.js";

function mask(width: number, height: number, values: number[]): Mask {
  return createMask(width, height, Uint8Array.from(values));
}

function crop(m: Mask, r: Rect): Mask {
  const out = new Uint8Array(r.width * r.height);
  for (let y = 0; y < r.height; y++) {
    for (let x = 0; x < r.width; x++) out[y * r.width + x] = m.data[(r.y + y) * m.width + r.x + x] as number;
  }
  return createMask(r.width, r.height, out);
}

function valuesOf(m: Mask): Set<number> {
  return new Set(m.data);
}

/** An RGB image whose channel c at (x, y) is `f(x, y, c)`. */
function image(width: number, height: number, f: (x: number, y: number, c: number) => number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = f(x, y, c);
    }
  }
  return createImage(width, height, data);
}

function channel(img: RgbImage, c: number): number[] {
  return Array.from({ length: img.width * img.height }, (_, i) => img.data[i * 3 + c] as number);
}

describe("resizeMask", () => {
  it("downsamples 4x4 -> 2x2 by pixel centres", () => {
    // output x samples floor((x + 0.5) * 4 / 2) = 1, 3
    const m = mask(
      4,
      4,
      Array.from({ length: 16 }, (_, i) => i),
    );
    const out = resizeMask(m, 2, 2);
    assert.deepEqual([out.width, out.height, [...out.data]], [2, 2, [5, 7, 13, 15]]);
  });

  it("upsamples 2x2 -> 4x4 into 2x2 blocks", () => {
    const out = resizeMask(mask(2, 2, [1, 2, 3, 4]), 4, 4);
    assert.deepEqual([...out.data], [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  });

  it("samples 3x3 -> 2x2 at floor(0.75) = 0 and floor(2.25) = 2", () => {
    const out = resizeMask(mask(3, 3, [0, 1, 2, 3, 4, 5, 6, 7, 8]), 2, 2);
    assert.deepEqual([...out.data], [0, 2, 6, 8]);
  });

  it("resizes each axis on its own (5x1 -> 2x3)", () => {
    // x: floor((x + 0.5) * 2.5) = 1, 3; y: always row 0
    const out = resizeMask(mask(5, 1, [10, 11, 12, 13, 14]), 2, 3);
    assert.deepEqual([out.width, out.height, [...out.data]], [2, 3, [11, 13, 11, 13, 11, 13]]);
  });

  it("returns the input itself at the same size with no rect", () => {
    const m = mask(2, 2, [1, 2, 3, 4]);
    assert.equal(resizeMask(m, 2, 2), m);
  });

  it("crops with a rect of the output size", () => {
    const m = mask(
      4,
      3,
      Array.from({ length: 12 }, (_, i) => i),
    );
    const out = resizeMask(m, 2, 2, { x: 1, y: 1, width: 2, height: 2 });
    assert.deepEqual([...out.data], [5, 6, 9, 10]);
    assert.notEqual(out, m);
  });

  it("with a rect equals crop then resize", () => {
    const rng = createRng(11);
    for (let trial = 0; trial < 60; trial++) {
      const w = rng.int(1, 24);
      const h = rng.int(1, 24);
      const m = mask(
        w,
        h,
        Array.from({ length: w * h }, () => rng.int(0, 256)),
      );
      const rw = rng.int(1, w + 1);
      const rh = rng.int(1, h + 1);
      const r: Rect = { x: rng.int(0, w - rw + 1), y: rng.int(0, h - rh + 1), width: rw, height: rh };
      const ow = rng.int(1, 40);
      const oh = rng.int(1, 40);
      const direct = resizeMask(m, ow, oh, r);
      const twoStep = resizeMask(crop(m, r), ow, oh);
      assert.deepEqual([...direct.data], [...twoStep.data], `trial ${trial}: ${w}x${h} rect ${JSON.stringify(r)}`);
    }
  });

  it("never produces a value its input (or rect) does not hold", () => {
    const rng = createRng(5);
    const labels = [3, 17, 200, 255];
    const sizes = [1, 2, 3, 5, 7, 8, 13, 16, 31, 64];
    for (const w of [1, 4, 9, 17]) {
      for (const h of [1, 6, 11]) {
        const m = mask(
          w,
          h,
          Array.from({ length: w * h }, () => labels[rng.int(0, labels.length)] as number),
        );
        const present = valuesOf(m);
        for (const ow of sizes) {
          for (const oh of sizes) {
            const out = resizeMask(m, ow, oh);
            assert.deepEqual([out.width, out.height, out.data.length], [ow, oh, ow * oh]);
            const stray = out.data.find((v) => !present.has(v));
            assert.equal(stray, undefined, `${w}x${h} -> ${ow}x${oh}: value ${stray}`);
            const rw = rng.int(1, w + 1);
            const rh = rng.int(1, h + 1);
            const r: Rect = { x: rng.int(0, w - rw + 1), y: rng.int(0, h - rh + 1), width: rw, height: rh };
            const inRect = valuesOf(crop(m, r));
            const strayInRect = resizeMask(m, ow, oh, r).data.find((v) => !inRect.has(v));
            assert.equal(strayInRect, undefined, `${w}x${h} rect ${JSON.stringify(r)} -> ${ow}x${oh}`);
          }
        }
      }
    }
  });

  it("keeps every label of a mask when enlarging", () => {
    const m = mask(3, 2, [0, 1, 2, 3, 4, 5]);
    const out = resizeMask(m, 7, 5);
    assert.deepEqual(valuesOf(out), valuesOf(m));
  });

  it("rejects a rect outside the mask", () => {
    const m = mask(4, 4, new Array(16).fill(1));
    for (const r of [
      { x: -1, y: 0, width: 2, height: 2 },
      { x: 3, y: 0, width: 2, height: 2 },
      { x: 0, y: 3, width: 1, height: 2 },
      { x: 0, y: 0, width: 0, height: 2 },
      { x: 0.5, y: 0, width: 2, height: 2 },
    ]) {
      assert.throws(() => resizeMask(m, 2, 2, r), RangeError, JSON.stringify(r));
    }
  });
});

describe("resizeImage: area", () => {
  it("averages 2x2 blocks for 4x4 -> 2x2", async () => {
    // R = 10 * index, G = 255 - R, B = index parity * 100
    const src = image(4, 4, (x, y, c) => {
      const i = y * 4 + x;
      return c === 0 ? i * 10 : c === 1 ? 255 - i * 10 : (i % 2) * 100;
    });
    const out = await resizeImage(src, 2, 2, "area");
    assert.deepEqual([out.width, out.height], [2, 2]);
    // blocks {0,1,4,5}, {2,3,6,7}, {8,9,12,13}, {10,11,14,15}: mean index 2.5, 4.5, 10.5, 12.5
    assert.deepEqual(channel(out, 0), [25, 45, 105, 125]);
    assert.deepEqual(channel(out, 1), [230, 210, 150, 130]);
    assert.deepEqual(channel(out, 2), [50, 50, 50, 50]);
  });

  it("weights 3x3 -> 2x2 by covered area (2/3, 1/3)", async () => {
    const src = image(3, 3, (x, y, c) => {
      if (c === 0) return 90 * x + 30 * y; // linear: output = value at the mean coordinate (1/3 or 5/3)
      if (c === 1) return x === 1 && y === 1 ? 255 : 0; // centre: 1/3 * 1/3 of it in every output pixel
      return x === 0 && y === 0 ? 90 : 0; // corner: 2/3 * 2/3 of it in output (0, 0) only
    });
    const out = await resizeImage(src, 2, 2, "area");
    assert.deepEqual(channel(out, 0), [40, 160, 80, 200]);
    assert.deepEqual(channel(out, 1), [28, 28, 28, 28]);
    assert.deepEqual(channel(out, 2), [40, 0, 0, 0]);
  });

  it("reduces each axis on its own (4x2 -> 2x1)", async () => {
    const src = image(4, 2, (x, y) => x * 20 + y * 100);
    const out = await resizeImage(src, 2, 1, "area");
    // (0 + 20 + 100 + 120) / 4 = 60, (40 + 60 + 140 + 160) / 4 = 100
    assert.deepEqual(channel(out, 0), [60, 100]);
  });

  it("keeps a flat image flat at any smaller size", async () => {
    const src = image(13, 9, (_x, _y, c) => [255, 128, 1][c] as number);
    for (const [w, h] of [
      [1, 1],
      [5, 3],
      [12, 9],
      [7, 8],
    ] as const) {
      const out = await resizeImage(src, w, h, "area");
      assert.deepEqual([out.width, out.height], [w, h]);
      for (let i = 0; i < out.data.length; i++) assert.equal(out.data[i], [255, 128, 1][i % 3]);
    }
  });

  it("falls back to bilinear when enlarging", async () => {
    const src = image(3, 2, () => 77);
    const out = await resizeImage(src, 6, 5, "area");
    assert.deepEqual([out.width, out.height, out.data.length], [6, 5, 90]);
    assert.ok(out.data.every((v) => v === 77));
  });
});

describe("resizeImage: bilinear", () => {
  it("keeps a flat image flat and gives the requested size", async () => {
    const colour = [12, 200, 99];
    const src = image(10, 7, (_x, _y, c) => colour[c] as number);
    for (const [w, h] of [
      [1, 1],
      [3, 2],
      [10, 3],
      [20, 14],
      [33, 5],
      [4, 21],
    ] as const) {
      const out = await resizeImage(src, w, h, "bilinear");
      assert.deepEqual([out.width, out.height, out.data.length], [w, h, w * h * 3]);
      for (let i = 0; i < out.data.length; i++) assert.equal(out.data[i], colour[i % 3], `${w}x${h} byte ${i}`);
    }
  });

  it("is the default method", async () => {
    const out = await resizeImage(
      image(4, 4, () => 5),
      8,
      2,
    );
    assert.deepEqual([out.width, out.height], [8, 2]);
    assert.ok(out.data.every((v) => v === 5));
  });

  it("keeps a horizontal ramp a non-decreasing ramp within its range", async () => {
    const src = image(16, 4, (x) => x * 16);
    for (const [w, h] of [
      [7, 3],
      [40, 4],
    ] as const) {
      const out = await resizeImage(src, w, h, "bilinear");
      for (let y = 0; y < h; y++) {
        for (let x = 1; x < w; x++) {
          const a = out.data[(y * w + x - 1) * 3] as number;
          const b = out.data[(y * w + x) * 3] as number;
          assert.ok(b >= a, `${w}x${h} row ${y}: ${a} then ${b}`);
        }
      }
      assert.ok((out.data[0] as number) < 40 && (out.data[(w - 1) * 3] as number) > 200, "ends stay near the ends");
    }
  });

  it("interpolates (not nearest): in-between values when enlarging, gray when shrinking a checkerboard", async () => {
    const two = await resizeImage(
      image(2, 1, (x) => x * 200),
      8,
      1,
    );
    const inBetween = channel(two, 0).filter((v) => v > 20 && v < 180);
    assert.ok(inBetween.length >= 2, `enlarged: ${channel(two, 0)}`);
    const checker = await resizeImage(
      image(8, 8, (x, y) => ((x + y) % 2) * 255),
      2,
      2,
    );
    for (const v of channel(checker, 0)) assert.ok(v > 64 && v < 192, `checkerboard shrunk to ${channel(checker, 0)}`);
  });

  it("returns the input itself at the same size", async () => {
    const src = image(3, 3, () => 1);
    assert.equal(await resizeImage(src, 3, 3), src);
    assert.equal(await resizeImage(src, 3, 3, "area"), src);
  });
});
