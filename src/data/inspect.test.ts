import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SegkitError } from "../core/errors.js";
import { createImage, createMask } from "../core/image.js";
import type { Dataset } from "./dataset.js";
import { inspectDataset } from "./inspect.js";

describe("inspectDataset", () => {
  it("counts pixels per class and ignored, sizes, and failed samples", async () => {
    // Three samples: 2x1 [0, 1], 3x1 [1, 1, 255], and one that fails to decode.
    const masks = [Uint8Array.from([0, 1]), Uint8Array.from([1, 1, 255])];
    const ds: Dataset = {
      format: "toy",
      classNames: ["a", "b", "c"],
      ignoreIndex: 255,
      length: 3,
      skipped: [{ path: "/x/lonely.png", reason: "no mask for it in /x/masks" }],
      id: (i) => `s${i}`,
      files: (i) => [`/x/${i}.png`],
      async get(i) {
        const m = masks[i];
        if (!m) throw new SegkitError("cannot decode: bad huffman code", { file: "/x/2.png" });
        return { id: `s${i}`, image: createImage(m.length, 1), mask: createMask(m.length, 1, m) };
      },
    };
    const seen: number[] = [];
    const r = await inspectDataset(ds, { concurrency: 2, onProgress: (d) => seen.push(d) });
    assert.equal(r.pairs, 2);
    assert.equal(r.listed, 3);
    assert.deepEqual(
      r.classes.map((c) => [c.name, c.pixels, c.pixelFraction]),
      [
        ["a", 1, 1 / 5],
        ["b", 3, 3 / 5],
        ["c", 0, 0],
      ],
    );
    assert.equal(r.ignoredPixels, 1);
    assert.equal(r.ignoredFraction, 1 / 5);
    assert.deepEqual(r.width, { min: 2, median: 2.5, max: 3 });
    assert.deepEqual(r.height, { min: 1, median: 1, max: 1 });
    assert.deepEqual(r.skipped, [
      { path: "/x/lonely.png", reason: "no mask for it in /x/masks" },
      { path: "/x/2.png", reason: "cannot decode: bad huffman code" },
    ]);
    assert.deepEqual(
      seen.sort((a, b) => a - b),
      [1, 2, 3],
    );
    await assert.rejects(
      inspectDataset(ds, { strict: true }),
      (e: unknown) => e instanceof SegkitError && e.file === "/x/2.png",
    );
  });
});
