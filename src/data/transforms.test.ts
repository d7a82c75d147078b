import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createImage, createMask, type Mask, type RgbImage } from "../core/image.js";
import { createRng } from "../core/random.js";
import type { Sample } from "./dataset.js";
import {
  adjustColor,
  flipImage,
  flipMask,
  flipVertical,
  randomCropRect,
  rotate90,
  rotateSample,
  transformSample,
} from "./transforms.js";

const IGNORE = 255;

/**
 * An image whose red channel encodes its mask: class 1 pixels are red 220, class 0 red 30, in an asymmetric
 * L shape off-centre (a flip or rotation of only one of them is visible). Green/blue carry a gradient.
 */
function encodedSample(w = 96, h = 64): Sample {
  const image = new Uint8Array(w * h * 3);
  const mask = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const inL = (x >= 8 && x < 28 && y >= 6 && y < 50) || (x >= 8 && x < 60 && y >= 36 && y < 50);
      const k = inL ? 1 : 0;
      mask[y * w + x] = k;
      image.set([k ? 220 : 30, (x * 255) / w, (y * 255) / h], (y * w + x) * 3);
    }
  }
  return { id: "L", image: createImage(w, h, image), mask: createMask(w, h, mask) };
}

/**
 * Counts pixels where image and mask disagree, looking only where the mask is uniform in a 3x3 window
 * (resampling blurs edges by a pixel) and not ignored.
 */
function misaligned(image: RgbImage, mask: Mask): { bad: number; checked: number } {
  let bad = 0;
  let checked = 0;
  const { width: w, height: h } = mask;
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      const k = mask.data[y * w + x] as number;
      if (k === IGNORE) continue;
      let uniform = true;
      for (let dy = -1; dy <= 1 && uniform; dy++) {
        for (let dx = -1; dx <= 1; dx++) if (mask.data[(y + dy) * w + x + dx] !== k) uniform = false;
      }
      if (!uniform) continue;
      checked++;
      if (((image.data[(y * w + x) * 3] as number) > 125 ? 1 : 0) !== k) bad++;
    }
  }
  return { bad, checked };
}

const geometricOnly = { brightness: 0, contrast: 0, hflip: 0.5, rotate: 15, scale: [0.3, 1] as const };

describe("transformSample", () => {
  it("keeps image and mask aligned under flip, scale-crop and rotation (200 draws)", async () => {
    const sample = encodedSample();
    let flips = 0;
    for (let seed = 0; seed < 200; seed++) {
      const out = await transformSample(sample, {
        width: 64,
        height: 64,
        augment: geometricOnly,
        rng: createRng(seed),
        ignoreIndex: IGNORE,
      });
      const { bad, checked } = misaligned(out.image, out.mask);
      assert.ok(checked > 500, `seed ${seed}: only ${checked} pixels checked`);
      assert.equal(bad, 0, `seed ${seed}: ${bad} of ${checked} pixels misaligned`);
      // Count draws where the L's vertical bar ended up on the right: the flip really happens.
      let left = 0;
      let right = 0;
      out.mask.data.forEach((k, i) => {
        if (k !== 1) return;
        if (i % 64 < 32) left++;
        else right++;
      });
      if (right > left) flips++;
    }
    assert.ok(flips > 40 && flips < 160, `flipped in ${flips} of 200 draws`);
  });

  it("draws the 8 flips and quarter turns equally often, image and mask aligned", async () => {
    const sample = encodedSample(64, 64);
    const seen = new Map<string, number>();
    for (let seed = 0; seed < 400; seed++) {
      const out = await transformSample(sample, {
        width: 64,
        height: 64,
        augment: { hflip: 0.5, vflip: 0.5, rot90: 0.5, scale: [1, 1], rotate: 0, brightness: 0, contrast: 0 },
        rng: createRng(seed),
        ignoreIndex: IGNORE,
      });
      assert.equal(misaligned(out.image, out.mask).bad, 0, `seed ${seed}`);
      const key = out.mask.data.join("");
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    const counts = [...seen.values()];
    assert.equal(counts.length, 8);
    assert.ok(
      counts.every((n) => n > 25 && n < 75),
      `draws per variant: ${counts}`,
    );
  });

  it("the alignment check catches a flip applied to the image only", () => {
    const s = encodedSample();
    const { bad } = misaligned(flipImage(s.image), s.mask);
    assert.ok(bad > 100, `a one-sided flip gave only ${bad} mismatches`);
    assert.equal(misaligned(flipImage(s.image), flipMask(s.mask)).bad, 0);
  });

  it("never creates mask values (only input classes and the ignore index)", async () => {
    const s = encodedSample();
    for (let seed = 0; seed < 30; seed++) {
      const out = await transformSample(s, {
        width: 40,
        height: 56,
        augment: {},
        rng: createRng(seed),
        ignoreIndex: IGNORE,
      });
      for (const v of new Set(out.mask.data)) assert.ok(v === 0 || v === 1 || v === IGNORE, `value ${v}`);
      assert.equal(out.image.width, 40);
      assert.equal(out.image.height, 56);
      assert.equal(out.mask.data.length, 40 * 56);
    }
  });

  it("is deterministic for a seed and differs across seeds", async () => {
    const s = encodedSample();
    const run = (seed: number) =>
      transformSample(s, { width: 64, height: 64, augment: {}, rng: createRng(seed), ignoreIndex: IGNORE });
    const [a, b, c] = await Promise.all([run(7), run(7), run(8)]);
    assert.deepEqual(a?.image.data, b?.image.data);
    assert.deepEqual(a?.mask.data, b?.mask.data);
    assert.notDeepEqual(a?.image.data, c?.image.data);
  });

  it("without augmentation only resizes", async () => {
    const s = encodedSample(4, 2);
    const out = await transformSample(s, { width: 4, height: 2, ignoreIndex: IGNORE });
    assert.deepEqual(out.image.data, s.image.data);
    assert.deepEqual(out.mask.data, s.mask.data);
  });

  it("rejects augmentation without an rng", async () => {
    await assert.rejects(
      transformSample(encodedSample(), { width: 8, height: 8, augment: {}, ignoreIndex: IGNORE }),
      /augmentation needs an rng/,
    );
  });
});

describe("geometric helpers", () => {
  it("flips rows left-right", () => {
    const img = createImage(3, 1, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]));
    assert.deepEqual([...flipImage(img).data], [7, 8, 9, 4, 5, 6, 1, 2, 3]);
    assert.deepEqual([...flipMask(createMask(3, 1, Uint8Array.from([0, 1, 2]))).data], [2, 1, 0]);
  });

  it("flips upside down and turns a quarter clockwise, image and mask alike", () => {
    // 3 wide, 2 high: pixel values 1..6 row by row (image gray, mask the same values)
    const px = [1, 2, 3, 4, 5, 6];
    const sample = {
      image: createImage(3, 2, Uint8Array.from(px.flatMap((v) => [v, v, v]))),
      mask: createMask(3, 2, Uint8Array.from(px)),
    };
    const v = flipVertical(sample);
    assert.deepEqual([...v.mask.data], [4, 5, 6, 1, 2, 3]);
    assert.deepEqual(
      [...v.image.data],
      [4, 5, 6, 1, 2, 3].flatMap((k) => [k, k, k]),
    );
    // clockwise: the left column read bottom to top becomes the top row; 2 wide, 3 high
    const r = rotate90(sample);
    assert.deepEqual([r.mask.width, r.mask.height, r.image.width, r.image.height], [2, 3, 2, 3]);
    assert.deepEqual([...r.mask.data], [4, 1, 5, 2, 6, 3]);
    assert.deepEqual(
      [...r.image.data],
      [4, 1, 5, 2, 6, 3].flatMap((k) => [k, k, k]),
    );
  });

  it("rotates by 0 and 180 degrees exactly, and fills revealed corners", () => {
    const img = createImage(2, 2, Uint8Array.from([10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40]));
    const mask = createMask(2, 2, Uint8Array.from([0, 1, 2, 3]));
    const same = rotateSample(img, mask, 0, IGNORE);
    assert.deepEqual([...same.image.data], [...img.data]);
    assert.deepEqual([...same.mask.data], [0, 1, 2, 3]);
    const half = rotateSample(img, mask, 180, IGNORE);
    assert.deepEqual([...half.mask.data], [3, 2, 1, 0]);
    assert.deepEqual([...half.image.data], [40, 40, 40, 30, 30, 30, 20, 20, 20, 10, 10, 10]);
    // 90 degrees on 3x3: output (x, y) samples input (y, 2 - x), exactly (bilinear weights are 0 and 1).
    const m3 = createMask(3, 3, Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8]));
    const i3 = createImage(3, 3, Uint8Array.from([...m3.data].flatMap((v) => [v * 10, v * 10 + 1, v * 10 + 2])));
    const q = rotateSample(i3, m3, 90, IGNORE);
    const expected = [6, 3, 0, 7, 4, 1, 8, 5, 2]; // in(y, 2 - x) for x, y row-major
    assert.deepEqual([...q.mask.data], expected);
    assert.deepEqual(
      [...q.image.data],
      expected.flatMap((v) => [v * 10, v * 10 + 1, v * 10 + 2]),
    );
    // 45 degrees on a 9x9 mask: the corners come from outside the image and are ignored.
    const m9 = createMask(9, 9, new Uint8Array(81).fill(1));
    const r = rotateSample(createImage(9, 9), m9, 45, IGNORE);
    assert.equal(r.mask.data[0], IGNORE);
    assert.equal(r.mask.data[4 * 9 + 4], 1);
  });

  it("draws crop rectangles inside the image with the requested area", () => {
    const rng = createRng(1);
    for (let t = 0; t < 500; t++) {
      const r = randomCropRect(500, 375, [0.25, 0.5], [3 / 4, 4 / 3], rng);
      assert.ok(r.x >= 0 && r.y >= 0 && r.x + r.width <= 500 && r.y + r.height <= 375, JSON.stringify(r));
      const area = (r.width * r.height) / (500 * 375);
      assert.ok(area > 0.24 && area < 0.51, `area fraction ${area}`);
    }
  });

  it("adjusts brightness and contrast around the mean, clamped", () => {
    const img = createImage(2, 1, Uint8Array.from([0, 100, 200, 100, 200, 255]));
    // mean = 142.5; contrast 2: v' = 2v - 142.5, brightness 0.1 adds 25.5
    assert.deepEqual([...adjustColor(img, 0.1, 2).data], [0, 83, 255, 83, 255, 255]);
    assert.deepEqual([...adjustColor(img, 0, 1).data], [...img.data]);
  });
});
