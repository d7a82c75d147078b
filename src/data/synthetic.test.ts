import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import type { Mask } from "../core/image.js";
import type { Sample } from "./dataset.js";
import { createSyntheticDataset, DEFAULT_SYNTHETIC_OPTIONS, syntheticSample } from "./synthetic.js";

const PET = 0;
const BACKGROUND = 1;
const BORDER = 2;

function classCounts(mask: Mask): number[] {
  const counts = [0, 0, 0];
  for (const v of mask.data) {
    assert.ok(v <= 2, `mask value ${v} is not 0, 1 or 2`);
    counts[v] = (counts[v] as number) + 1;
  }
  return counts;
}

function fingerprint(s: Sample): string {
  return createHash("sha256").update(s.image.data).update(s.mask.data).digest("hex").slice(0, 16);
}

/** Distance from (x, y) to the nearest pixel of class `cls` within `radius`, or Infinity. */
function nearest(mask: Mask, x: number, y: number, cls: (v: number) => boolean, radius: number): number {
  let best = Number.POSITIVE_INFINITY;
  for (let yy = Math.max(0, y - radius); yy <= Math.min(mask.height - 1, y + radius); yy++) {
    for (let xx = Math.max(0, x - radius); xx <= Math.min(mask.width - 1, x + radius); xx++) {
      if (cls(mask.data[yy * mask.width + xx] as number)) best = Math.min(best, Math.hypot(xx - x, yy - y));
    }
  }
  return best;
}

describe("createSyntheticDataset", () => {
  it("describes itself like the trimap oxford-pet data, with the default options", () => {
    assert.deepEqual(DEFAULT_SYNTHETIC_OPTIONS, { seed: 0, length: 200, size: 128 });
    const ds = createSyntheticDataset();
    assert.equal(ds.format, "synthetic");
    assert.deepEqual(ds.classNames, ["pet", "background", "border"]);
    assert.equal(ds.ignoreIndex, 255);
    assert.equal(ds.backgroundClass, 1);
    assert.equal(ds.palette?.length, 3);
    assert.equal(ds.length, 200);
    assert.deepEqual(ds.skipped, []);
    assert.deepEqual(ds.files(3), []);
    assert.equal(ds.id(7), "synthetic-0007");
    assert.equal(ds.id(199), "synthetic-0199");
    assert.equal(createSyntheticDataset({ length: 20000 }).id(12345), "synthetic-12345");
  });

  it("makes square RGB images and masks of the asked size", async () => {
    const def = await createSyntheticDataset().get(0);
    assert.equal(def.id, "synthetic-0000");
    assert.equal(def.image.width, 128);
    assert.equal(def.image.height, 128);
    assert.equal(def.image.data.length, 128 * 128 * 3);
    assert.equal(def.mask.data.length, 128 * 128);
    for (const size of [32, 50, 1024]) {
      const s = await createSyntheticDataset({ size, length: 1 }).get(0);
      assert.deepEqual([s.image.width, s.image.height, s.mask.width, s.mask.height], [size, size, size, size]);
      assert.ok(s.image.data instanceof Uint8Array);
      assert.equal(s.image.data.length, size * size * 3);
      assert.equal(s.mask.data.length, size * size);
    }
  });

  it("rejects bad options with a RangeError naming the option, and leaves the options alone", () => {
    const bad: [object, RegExp][] = [
      [{ size: 31 }, /size must be an integer from 32 to 1024, got 31/],
      [{ size: 1025 }, /size must be an integer from 32 to 1024, got 1025/],
      [{ size: 64.5 }, /size .* got 64\.5/],
      [{ size: Number.NaN }, /size .* got NaN/],
      [{ size: "64" }, /size .* got 64/],
      [{ length: 0 }, /length must be an integer from 1 to/],
      [{ length: -3 }, /length .* got -3/],
      [{ length: 2.5 }, /length .* got 2\.5/],
      [{ seed: -1 }, /seed must be an integer from 0 to 4294967295, got -1/],
      [{ seed: 2 ** 32 }, /seed .* got 4294967296/],
      [{ seed: 0.5 }, /seed .* got 0\.5/],
    ];
    for (const [options, message] of bad) {
      assert.throws(() => createSyntheticDataset(options), { name: "RangeError", message }, JSON.stringify(options));
    }
    assert.throws(() => syntheticSample(0, 0, 16), { name: "RangeError", message: /size/ });
    assert.throws(() => syntheticSample(0, -1, 64), { name: "RangeError", message: /index .* got -1/ });
    assert.throws(() => syntheticSample(-2, 0, 64), { name: "RangeError", message: /seed .* got -2/ });

    const options = Object.freeze({ seed: 9, length: 3, size: 40 });
    const ds = createSyntheticDataset(options);
    assert.deepEqual(options, { seed: 9, length: 3, size: 40 });
    assert.equal(ds.length, 3);
  });

  it("rejects sample indices outside 0..length-1", async () => {
    const ds = createSyntheticDataset({ length: 5, size: 32 });
    assert.throws(() => ds.id(5), { name: "RangeError", message: /sample 5 out of range 0\.\.4/ });
    assert.throws(() => ds.files(-1), RangeError);
    await assert.rejects(ds.get(5), { name: "RangeError", message: /sample 5 out of range/ });
    await assert.rejects(ds.get(1.5), RangeError);
    assert.equal((await ds.get(4)).id, "synthetic-0004");
  });
});

describe("syntheticSample", () => {
  it("is a pure function of (seed, index, size)", async () => {
    const a = syntheticSample(5, 3, 96);
    const b = syntheticSample(5, 3, 96);
    assert.deepEqual(a.image.data, b.image.data);
    assert.deepEqual(a.mask.data, b.mask.data);
    assert.notEqual(a.image.data, b.image.data, "each call returns fresh buffers");
    const viaDataset = await createSyntheticDataset({ seed: 5, size: 96 }).get(3);
    assert.deepEqual(viaDataset.image.data, a.image.data);
    assert.deepEqual(viaDataset.mask.data, a.mask.data);
  });

  it("gives the same bytes on every machine (fingerprints; change them only when the generator changes on purpose)", () => {
    assert.equal(fingerprint(syntheticSample(0, 0, 64)), "04461349dcaf135e");
    assert.equal(fingerprint(syntheticSample(12345, 7, 128)), "5182d6d5de0d6a52");
  });

  it("does not depend on the order of get calls", async () => {
    const forward = createSyntheticDataset({ seed: 11, length: 8, size: 48 });
    const shuffled = createSyntheticDataset({ seed: 11, length: 8, size: 48 });
    const inOrder: Sample[] = [];
    for (let i = 0; i < 8; i++) inOrder.push(await forward.get(i));
    const backwards = await Promise.all([7, 6, 5, 4, 3, 2, 1, 0].map((i) => shuffled.get(i)));
    backwards.reverse();
    for (let i = 0; i < 8; i++) {
      assert.equal(backwards[i]?.id, inOrder[i]?.id);
      assert.deepEqual(backwards[i]?.image.data, inOrder[i]?.image.data);
      assert.deepEqual(backwards[i]?.mask.data, inOrder[i]?.mask.data);
    }
  });

  it("differs between seeds and between indices", () => {
    const base = syntheticSample(0, 3, 64);
    for (const other of [syntheticSample(1, 3, 64), syntheticSample(0, 4, 64), syntheticSample(2 ** 32 - 1, 3, 64)]) {
      assert.notDeepEqual(other.image.data, base.image.data);
      assert.notDeepEqual(other.mask.data, base.mask.data);
    }
    // Plain deriveSeed(seed, i) would make (seed 0, index 1) and (seed 1, index 0) the same sample.
    assert.notDeepEqual(syntheticSample(0, 1, 64).image.data, syntheticSample(1, 0, 64).image.data);
  });

  it("has pet, background and border in every sample, in sensible proportions", () => {
    const total = [0, 0, 0];
    for (let i = 0; i < 50; i++) {
      const counts = classCounts(syntheticSample(0, i, 128).mask);
      assert.ok(
        counts.every((c) => c > 0),
        `sample ${i}: counts pet/background/border ${counts.join("/")}`,
      );
      for (let c = 0; c < 3; c++) total[c] = (total[c] as number) + (counts[c] as number);
    }
    const n = 50 * 128 * 128;
    const [pet, background, border] = total.map((c) => c / n) as [number, number, number];
    // Seed 0, 50 samples: about 0.22 pet, 0.73 background, 0.05 border.
    assert.ok(pet > 0.12 && pet < 0.35, `pet fraction ${pet}`);
    assert.ok(background > 0.6 && background < 0.85, `background fraction ${background}`);
    assert.ok(border > 0.03 && border < 0.08, `border fraction ${border}`);
  });

  it("has all three classes even at the smallest size", () => {
    for (let i = 0; i < 100; i++) {
      const counts = classCounts(syntheticSample(3, i, 32).mask);
      assert.ok(
        counts.every((c) => c > 0),
        `sample ${i}: counts ${counts.join("/")}`,
      );
    }
  });

  it("puts a thin border band between pet and background", () => {
    let borderPixels = 0;
    let nearBoth = 0;
    let widthSum = 0;
    for (let i = 0; i < 30; i++) {
      const { mask } = syntheticSample(7, i, 128);
      const { width, height, data } = mask;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const v = data[y * width + x] as number;
          // Pet and background never touch: the band separates them everywhere.
          const right = x + 1 < width ? (data[y * width + x + 1] as number) : v;
          const below = y + 1 < height ? (data[(y + 1) * width + x] as number) : v;
          assert.notEqual(v + right, PET + BACKGROUND, `sample ${i}: pet next to background at ${x},${y}`);
          assert.notEqual(v + below, PET + BACKGROUND, `sample ${i}: pet next to background at ${x},${y}`);
          if (v !== BORDER) continue;
          borderPixels++;
          const toPet = nearest(mask, x, y, (c) => c === PET, 8);
          const toBackground = nearest(mask, x, y, (c) => c === BACKGROUND, 8);
          const toEdge = Math.min(x + 1, y + 1, width - x, height - y); // the blob may go on outside the image
          // Band of at most 4 px along a pet outline: a non-border pixel within ~2-4 px, a pet pixel close by
          // (farther only at ear tips thinner than the band).
          assert.ok(Math.min(toPet, toBackground, toEdge) <= 4.5, `sample ${i}: thick band at ${x},${y}`);
          assert.ok(toPet <= 7.5, `sample ${i}: border pixel ${x},${y} is ${toPet} px from any pet pixel`);
          // Within about 4 px of a pet/background transition: both sides close by. Exceptions: the narrow gaps
          // and crevices where two blobs nearly touch, which are all border.
          if (toPet <= 4.5 && Math.min(toBackground, toEdge) <= 4.5) {
            nearBoth++;
            widthSum += toPet + Math.min(toBackground, toEdge) - 1;
          }
        }
      }
    }
    assert.ok(nearBoth / borderPixels > 0.98, `only ${nearBoth} of ${borderPixels} border pixels near both sides`);
    // Band widths are 2-4 px: pet-to-background gap across a border pixel, averaged.
    const meanWidth = widthSum / nearBoth;
    assert.ok(meanWidth >= 2 && meanWidth <= 4, `mean band width ${meanWidth}`);
  });
});
