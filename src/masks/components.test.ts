import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createMask, type Mask } from "../core/image.js";
import { connectedComponents } from "./components.js";

/** A mask from rows of digit characters. */
function maskOf(...rows: string[]): Mask {
  return createMask(rows[0]?.length ?? 0, rows.length, Uint8Array.from(rows.join(""), Number));
}
const rowsOf = (labels: Int32Array, w: number) =>
  Array.from({ length: labels.length / w }, (_, y) => Array.from(labels.subarray(y * w, (y + 1) * w)).join(""));

describe("connectedComponents", () => {
  // a ring of 8 with a 1-pixel hole, a lone pixel at (5, 2) and a 2x2 block
  const m = maskOf("111000", "101000", "111001", "000000", "000011", "000011");

  test("8-connected (as cv2.connectedComponents): diagonal pixels connect, sizes per label", () => {
    const { labels, sizes } = connectedComponents(m);
    assert.deepEqual(sizes, [8, 1, 4]);
    assert.deepEqual(rowsOf(labels, 6), ["111000", "101000", "111002", "000000", "000033", "000033"]);
    assert.deepEqual(connectedComponents(maskOf("100", "010", "001")).sizes, [3]);
  });

  test("4-connected: a diagonal does not connect; labels in raster order of the first pixel", () => {
    const { labels, sizes } = connectedComponents(maskOf("100", "010", "001"), { connectivity: 4 });
    assert.deepEqual(sizes, [1, 1, 1]);
    assert.deepEqual(rowsOf(labels, 3), ["100", "020", "003"]);
  });

  test("8-connected numbering follows OpenCV's 2x2 blocks, 4-connected the raster order", () => {
    // (3, 0) comes first in raster order, (0, 1) first in block order (block (0, 0) before block (1, 0))
    const two = maskOf("0001", "1000");
    assert.deepEqual(rowsOf(connectedComponents(two).labels, 4), ["0002", "1000"]);
    assert.deepEqual(rowsOf(connectedComponents(two, { connectivity: 4 }).labels, 4), ["0001", "2000"]);
  });

  test("value: only the pixels equal to it are foreground", () => {
    const { labels, sizes } = connectedComponents(maskOf("1122", "1102", "0000"), { connectivity: 4, value: 2 });
    assert.deepEqual(sizes, [3]);
    assert.deepEqual(rowsOf(labels, 4), ["0011", "0001", "0000"]);
  });
});
