import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  countPixels,
  maskToRle,
  paintClass,
  polygonMask,
  rleToMask,
  stampDisc,
  strokeSegment,
  subtract,
  union,
} from "./mask-edit.js";

describe("studio mask editing", () => {
  it("stamps discs by pixel centre: 21 pixels for a 5 px brush, 9 for 3 px, 1 for 1 px", () => {
    const m = new Uint8Array(30 * 20);
    assert.equal(stampDisc(m, 30, 20, 10.5, 10.5, 5, 1), 21);
    assert.equal(stampDisc(m, 30, 20, 10.5, 10.5, 5, 1), 0);
    assert.equal(stampDisc(m, 30, 20, 10.5, 10.5, 3, 0), 9);
    assert.equal(countPixels(m), 12);
    assert.equal(m[10 * 30 + 10], 0);
    assert.equal(m[10 * 30 + 12], 1);
    assert.equal(stampDisc(new Uint8Array(4), 2, 2, 0.01, 0.01, 1, 1), 1);
    // clipped at the border: a quarter of the 5 px disc plus the axis pixels
    assert.equal(stampDisc(new Uint8Array(100), 10, 10, 0.5, 0.5, 5, 1), 8);
  });

  it("strokes a horizontal line of a 1 px brush into one row", () => {
    const m = new Uint8Array(10 * 5);
    strokeSegment(m, 10, 5, { x: 1.5, y: 2.5 }, { x: 7.5, y: 2.5 }, 1, 1);
    assert.deepEqual([...m.subarray(20, 30)], [0, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    assert.equal(countPixels(m), 7);
  });

  it("round-trips masks through compressed RLE and checks the size", () => {
    const m = new Uint8Array(6 * 4);
    m[0] = 1;
    m[7] = 1;
    m[23] = 1;
    const rle = maskToRle(m, 6, 4);
    assert.deepEqual(rle.size, [4, 6]);
    assert.deepEqual(rleToMask(rle, 6, 4), m);
    assert.throws(() => rleToMask(rle, 4, 6), /size \[4, 6\] on an image of 4x6/);
  });

  it("fills a polygon as COCO does and unites masks", () => {
    const square = polygonMask(
      [
        { x: 1, y: 1 },
        { x: 4, y: 1 },
        { x: 4, y: 3 },
        { x: 1, y: 3 },
      ],
      6,
      5,
    );
    assert.equal(countPixels(square), 6);
    assert.equal(square[1 * 6 + 1], 1);
    assert.equal(square[0], 0);
    const dot = new Uint8Array(30);
    dot[0] = 1;
    assert.equal(countPixels(union(square, dot)), 7);
  });
});

describe("studio semantic painting", () => {
  type Item = { id: string; classId: number; mask: Uint8Array };
  const m = (...bits: number[]) => Uint8Array.from(bits);
  const create = (mask: Uint8Array): Item => ({ id: "new", classId: 3, mask });

  it("merges the class's masks, takes the pixels from other classes, and erases from the class only", () => {
    const list: Item[] = [
      { id: "a", classId: 1, mask: m(1, 1, 0, 0) },
      { id: "b", classId: 2, mask: m(0, 0, 1, 0) },
      { id: "c", classId: 1, mask: m(0, 0, 0, 1) },
    ];
    const painted = paintClass(list, 1, m(0, 0, 1, 0), false, create);
    assert.deepEqual(
      painted.map((i) => [i.id, [...i.mask]]),
      [
        ["a", [1, 1, 1, 1]],
        ["b", [0, 0, 0, 0]],
      ],
    );
    const erased = paintClass(painted, 1, m(1, 0, 0, 0), true, create);
    assert.deepEqual(
      erased.map((i) => [i.id, [...i.mask]]),
      [
        ["a", [0, 1, 1, 1]],
        ["b", [0, 0, 0, 0]],
      ],
    );
    assert.equal(erased[1], painted[1]); // untouched by an erase
    const added = paintClass(list, 3, m(1, 0, 0, 0), false, create);
    assert.deepEqual(
      added.map((i) => [i.id, [...i.mask]]),
      [
        ["a", [0, 1, 0, 0]],
        ["b", [0, 0, 1, 0]],
        ["c", [0, 0, 0, 1]],
        ["new", [1, 0, 0, 0]],
      ],
    );
    assert.equal(added[1], list[1]); // no overlap: the same item
    assert.equal(subtract(m(1, 0), m(0, 1)).length, 2);
  });
});
