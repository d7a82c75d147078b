import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createImage, createMask } from "../core/image.js";
import type { Dataset, Sample } from "./dataset.js";
import { cropPatch, patchDataset, scoredPixels } from "./patches.js";

const IGNORE = 255;

/**
 * A 9 x 7 image whose pixel (x, y) holds R = x, G = y, B = 7, and whose "field of view" is the 3 x 2 block
 * x 5..7, y 2..3 (mask 1 at (6, 3), 0 elsewhere in it; 255 = ignored outside).
 */
function fovSample(id: string): Sample {
  const [w, h] = [9, 7];
  const image = createImage(w, h);
  const mask = createMask(w, h, new Uint8Array(w * h).fill(IGNORE));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      image.data.set([x, y, 7], (y * w + x) * 3);
      if (x >= 5 && x <= 7 && y >= 2 && y <= 3) mask.data[y * w + x] = x === 6 && y === 3 ? 1 : 0;
    }
  }
  return { id, image, mask };
}

function dataset(samples: Sample[]): Dataset {
  return {
    format: "test",
    classNames: ["background", "vessel"],
    ignoreIndex: IGNORE,
    skipped: [],
    length: samples.length,
    id: (i) => (samples[i] as Sample).id,
    files: () => [],
    get: async (i) => samples[i] as Sample,
  };
}

describe("patches", () => {
  it("lists the scored pixels (the field of view) by flat index", () => {
    // rows 2 and 3 of a 9-wide image, columns 5..7
    assert.deepEqual([...scoredPixels(fovSample("a").mask, IGNORE)], [23, 24, 25, 32, 33, 34]);
  });

  it("cuts a window centred on a pixel, padding past the image black and ignored", () => {
    const p = cropPatch(fovSample("a"), [7, 1], [3, 4], IGNORE); // 3 high, 4 wide: x 5..8, y 0..2
    assert.deepEqual([p.image.width, p.image.height], [4, 3]);
    // rows y = 0, 1, 2 of columns 5..8: R = x, G = y
    assert.deepEqual(
      Array.from({ length: 12 }, (_, k) => [p.image.data[k * 3], p.image.data[k * 3 + 1]]),
      [5, 6, 7, 8]
        .map((x) => [x, 0])
        .concat(
          [5, 6, 7, 8].map((x) => [x, 1]),
          [5, 6, 7, 8].map((x) => [x, 2]),
        ),
    );
    assert.deepEqual([...p.mask.data], [255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 255]);
    const corner = cropPatch(fovSample("a"), [0, 0], [2, 2], IGNORE); // x -1..0, y -1..0
    assert.deepEqual([...corner.image.data], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);
    assert.deepEqual([...corner.mask.data], [255, 255, 255, 255]);
  });

  it("centres every patch inside the field of view, the same patches for the same seed and epoch", async () => {
    const ds = dataset([fovSample("a"), fovSample("b")]);
    const draw = async (seed: number, epoch: number) => {
      const view = patchDataset(ds, { size: [5, 5], perImage: 40, seed, epoch });
      assert.equal(view.length, 80);
      const centres: string[] = [];
      for (let j = 0; j < view.length; j++) {
        const p = await view.get(j);
        assert.equal(view.id(j), `${j < 40 ? "a" : "b"}#${j % 40}`);
        assert.equal(p.id, view.id(j));
        // the patch centre (2, 2) shows the image pixel it was cut around: R = x, G = y
        const c = (2 * 5 + 2) * 3;
        const [x, y] = [p.image.data[c] as number, p.image.data[c + 1] as number];
        assert.ok(x >= 5 && x <= 7 && y >= 2 && y <= 3, `centre (${x}, ${y}) outside the field of view`);
        assert.notEqual(p.mask.data[2 * 5 + 2], IGNORE);
        centres.push(`${x},${y}`);
      }
      return centres;
    };
    const first = await draw(3, 1);
    assert.deepEqual(await draw(3, 1), first);
    assert.notDeepEqual(await draw(3, 2), first);
    assert.notDeepEqual(await draw(4, 1), first);
    // uniform over the 6 pixels: each drawn in 80 draws
    assert.equal(new Set(first).size, 6);
  });

  it("draws anywhere in an image without ignored pixels and rejects bad sizes", async () => {
    const s = fovSample("c");
    const all = { ...s, mask: createMask(9, 7) };
    const view = patchDataset(dataset([all]), { size: [1, 1], perImage: 100, seed: 0, epoch: 0 });
    const seen = new Set<number>();
    for (let j = 0; j < 100; j++) seen.add((await view.get(j)).image.data[0] as number);
    assert.ok(seen.size >= 8, `x of the centres: ${[...seen]}`); // columns 0..8
    assert.throws(() => patchDataset(dataset([all]), { size: [0, 4], perImage: 1, seed: 0, epoch: 0 }), RangeError);
    await assert.rejects(view.get(100), RangeError);
  });
});
