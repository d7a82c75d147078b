import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { blendWeights, MIN_TILE_WEIGHT, validateTileOptions, windowGrid, windowStarts } from "./tiling.js";

describe("windowStarts", () => {
  it("spreads the fewest windows evenly from 0 to size - tile (hand-computed)", () => {
    // 300 / 128 at overlap 0.25: step <= 96 -> n = ceil(172 / 96) + 1 = 3, spaced 172 / 2 = 86
    assert.deepEqual(windowStarts(300, 128, 0.25), [0, 86, 172]);
    // 200: n = ceil(72 / 96) + 1 = 2
    assert.deepEqual(windowStarts(200, 128, 0.25), [0, 72]);
    // no overlap, exact fit: two windows edge to edge; one more pixel needs a third window
    assert.deepEqual(windowStarts(256, 128, 0), [0, 128]);
    assert.deepEqual(windowStarts(257, 128, 0), [0, 65, 129]); // step 64.5, rounded half up
    // overlap 0.5 over 5 tiles' worth: step <= 64 -> n = ceil(512 / 64) + 1 = 9, spaced 64
    assert.deepEqual(windowStarts(640, 128, 0.5), [0, 64, 128, 192, 256, 320, 384, 448, 512]);
    assert.deepEqual(windowStarts(128, 128, 0.25), [0]);
  });

  it("centres one window on an axis shorter than the tile (odd rest: one more pixel after)", () => {
    assert.deepEqual(windowStarts(100, 128, 0.25), [-14]); // 14 before, 14 after
    assert.deepEqual(windowStarts(101, 128, 0.25), [-13]); // 13 before, 14 after
    assert.deepEqual(windowStarts(1, 4, 0), [-1]);
  });

  it("always covers the axis, with steps no longer than tile * (1 - overlap) (rounded)", () => {
    for (const tile of [7, 16, 33]) {
      for (const overlap of [0, 0.1, 0.25, 0.5, 0.9]) {
        for (let size = tile; size < 5 * tile; size += 3) {
          const s = windowStarts(size, tile, overlap);
          assert.equal(s[0], 0);
          assert.equal(s.at(-1), size - tile);
          for (let i = 1; i < s.length; i++) {
            const step = (s[i] as number) - (s[i - 1] as number);
            assert.ok(step >= 1 && step <= Math.ceil(tile * (1 - overlap)), `${size} ${tile} ${overlap}: ${s}`);
          }
        }
      }
    }
  });

  it("rejects bad arguments", () => {
    assert.throws(() => windowStarts(0, 128, 0.25), RangeError);
    assert.throws(() => windowStarts(100, 12.5, 0.25), RangeError);
    assert.throws(() => windowStarts(100, 16, 1), RangeError);
  });
});

describe("windowGrid", () => {
  it("lists the windows row by row and covers every pixel of a 300 x 200 image", () => {
    const grid = windowGrid(300, 200, 128, 128, 0.25);
    assert.deepEqual(
      grid.map((r) => [r.x, r.y]),
      [
        [0, 0],
        [86, 0],
        [172, 0],
        [0, 72],
        [86, 72],
        [172, 72],
      ],
    );
    assert.ok(grid.every((r) => r.width === 128 && r.height === 128));
    const covered = new Uint8Array(300 * 200);
    for (const r of grid) {
      for (let y = r.y; y < r.y + r.height; y++) for (let x = r.x; x < r.x + r.width; x++) covered[y * 300 + x] = 1;
    }
    assert.ok(covered.every((c) => c === 1));
  });

  it("takes width and height separately (non-square tile, image narrower than the tile)", () => {
    assert.deepEqual(windowGrid(10, 40, 16, 24, 0), [
      { x: -3, y: 0, width: 16, height: 24 },
      { x: -3, y: 16, width: 16, height: 24 },
    ]);
  });
});

describe("blendWeights", () => {
  it("constant: all ones", () => {
    assert.deepEqual([...blendWeights(3, 2, "constant")], [1, 1, 1, 1, 1, 1]);
  });

  it("gaussian: sigma = side / 8, 1 at the centre pixels, floored at MIN_TILE_WEIGHT (hand-computed)", () => {
    // side 8: sigma 1, pixel centres at d = -3.5 .. 3.5; normalised by the centre value exp(-0.125)
    const w = blendWeights(8, 8, "gaussian");
    const g = (d: number) => Math.exp(-(d * d) / 2) / Math.exp(-0.125);
    assert.ok(Math.abs((w[3 * 8 + 4] as number) - 1) < 1e-6);
    assert.ok(Math.abs((w[4 * 8 + 3] as number) - 1) < 1e-6);
    assert.ok(Math.abs((w[3 * 8 + 1] as number) - g(2.5)) < 1e-6); // row 3 (d = -0.5), column 1 (d = -2.5)
    assert.ok(Math.abs((w[3 * 8 + 0] as number) - g(3.5)) < 1e-6); // exp(-6) = 0.00248, above the floor
    assert.equal(w[0], Math.fround(MIN_TILE_WEIGHT)); // g(3.5)^2 = 6e-6, floored
    // symmetric in both axes
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        assert.equal(w[y * 8 + x], w[(7 - y) * 8 + x]);
        assert.equal(w[y * 8 + x], w[y * 8 + (7 - x)]);
      }
    }
  });

  it("gaussian over a non-square window: each axis scaled by its own side", () => {
    const w = blendWeights(16, 4, "gaussian"); // rows: sigma 0.5; columns: sigma 2
    const gy = (d: number) => Math.exp(-(d * d) / (2 * 0.25)) / Math.exp(-0.25 / (2 * 0.25));
    const gx = (d: number) => Math.exp(-(d * d) / 8) / Math.exp(-0.25 / 8);
    assert.ok(Math.abs((w[0 * 16 + 7] as number) - gy(1.5) * gx(0.5)) < 1e-6);
    assert.ok(Math.abs((w[1 * 16 + 12] as number) - gy(0.5) * gx(4.5)) < 1e-6);
  });
});

describe("validateTileOptions", () => {
  it("fills defaults and rejects bad values", () => {
    assert.deepEqual(validateTileOptions({}), { overlap: 0.25, blend: "gaussian" });
    assert.deepEqual(validateTileOptions({ overlap: 0, blend: "constant" }), { overlap: 0, blend: "constant" });
    assert.throws(() => validateTileOptions({ overlap: 1 }), /tile overlap must be a number from 0 to below 1, got 1/);
    assert.throws(() => validateTileOptions({ blend: "cosine" as "gaussian" }), /unknown tile blend "cosine"/);
  });
});
