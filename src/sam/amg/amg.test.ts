import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createMask, type Mask } from "../../core/image.js";
import { rleArea, rleEncode } from "../../masks/rle.js";
import {
  batchedMaskToBox,
  batchedNms,
  batchIterator,
  boxXYXYToXYWH,
  buildAllLayerPointGrids,
  buildPointGrid,
  calculateStabilityScore,
  generateCropBoxes,
  isBoxNearCropEdge,
  maskToBox,
  removeSmallRegions,
  uncropBox,
  uncropMask,
  uncropPoints,
  uncroppedMaskToRle,
} from "./amg.js";

/** A mask from rows of "0"/"1" characters. */
function maskOf(...rows: string[]): Mask {
  const h = rows.length;
  const w = rows[0]?.length ?? 0;
  return createMask(
    w,
    h,
    Uint8Array.from(rows.join(""), (c) => (c === "1" ? 1 : 0)),
  );
}
const rowsOf = (m: Mask) =>
  Array.from({ length: m.height }, (_, y) => Array.from(m.data.subarray(y * m.width, (y + 1) * m.width)).join(""));

describe("point grids", () => {
  test("n = 2 and n = 4: cell centres, x fastest", () => {
    assert.deepEqual(Array.from(buildPointGrid(2)), [0.25, 0.25, 0.75, 0.25, 0.25, 0.75, 0.75, 0.75]);
    const g4 = buildPointGrid(4);
    const side = [0.125, 0.375, 0.625, 0.875];
    assert.equal(g4.length, 32);
    for (let i = 0; i < 16; i++) assert.deepEqual([g4[2 * i], g4[2 * i + 1]], [side[i % 4], side[Math.floor(i / 4)]]);
    assert.deepEqual(Array.from(buildPointGrid(1)), [0.5, 0.5]);
  });

  test("numpy's linspace values to the last bit (n = 5, 7)", () => {
    const xs = (n: number) => Array.from(buildPointGrid(n).subarray(0, 2 * n)).filter((_, i) => i % 2 === 0);
    assert.deepEqual(xs(5), [0.1, 0.30000000000000004, 0.5, 0.7000000000000001, 0.9]);
    assert.deepEqual(
      xs(7),
      [
        0.07142857142857142, 0.2142857142857143, 0.3571428571428572, 0.5, 0.6428571428571429, 0.7857142857142858,
        0.9285714285714286,
      ],
    );
  });

  test("per layer: int(n / scale^i) points per side", () => {
    assert.deepEqual(
      buildAllLayerPointGrids(32, 2, 2).map((g) => g.length / 2),
      [1024, 256, 64],
    );
    assert.deepEqual(
      buildAllLayerPointGrids(5, 2, 2).map((g) => g.length / 2),
      [25, 4, 1],
    );
    assert.throws(() => buildPointGrid(0), /points per side/);
  });
});

describe("crop boxes", () => {
  test("1500 x 1000, one layer, by hand: overlap int(512/1500 * 1000) = 341, crops 921 x 671", () => {
    // crop_w = ceil((341 + 1500) / 2) = 921, crop_h = ceil((341 + 1000) / 2) = 671; x0 = 0, 580; y0 = 0, 330
    const { boxes, layers } = generateCropBoxes({ height: 1000, width: 1500 }, 1, 512 / 1500);
    assert.deepEqual(boxes, [
      [0, 0, 1500, 1000],
      [0, 0, 921, 671],
      [0, 330, 921, 1000],
      [580, 0, 1500, 671],
      [580, 330, 1500, 1000],
    ]);
    assert.deepEqual(layers, [0, 1, 1, 1, 1]);
  });

  test("two layers: overlap int(170.67) = 170, crops 503 x 378 every 333 / 208 px, ends clipped", () => {
    const { boxes, layers } = generateCropBoxes({ height: 1000, width: 1500 }, 2, 512 / 1500);
    assert.equal(boxes.length, 21);
    assert.deepEqual(layers.slice(5), Array(16).fill(2));
    assert.deepEqual(boxes[5], [0, 0, 503, 378]);
    assert.deepEqual(boxes[6], [0, 208, 503, 586]);
    assert.deepEqual(boxes[20], [999, 624, 1500, 1000]);
    assert.deepEqual(generateCropBoxes({ height: 7, width: 9 }, 0, 0.3).boxes, [[0, 0, 9, 7]]);
  });
});

describe("batches, boxes, uncropping", () => {
  test("batchIterator: ranges of batchSize, the last shorter", () => {
    assert.deepEqual(
      [...batchIterator(64, 150)],
      [
        [0, 64],
        [64, 128],
        [128, 150],
      ],
    );
    assert.deepEqual([...batchIterator(4, 0)], []);
    assert.throws(() => [...batchIterator(0, 3)], /batch size/);
  });

  test("mask boxes are inclusive maxima; empty mask -> zeros; XYWH is one short of the extent", () => {
    const m = maskOf("00000", "00100", "01100", "00000");
    assert.deepEqual(maskToBox(m), [1, 1, 2, 2]);
    assert.deepEqual(batchedMaskToBox([m, createMask(3, 2), maskOf("000", "001")]), [
      [1, 1, 2, 2],
      [0, 0, 0, 0],
      [2, 1, 2, 1],
    ]);
    assert.deepEqual(boxXYXYToXYWH([1, 1, 2, 2]), [1, 1, 1, 1]);
  });

  test("uncropping boxes, points and masks; the RLE of the padded mask without padding", () => {
    const crop = [2, 1, 5, 4] as [number, number, number, number];
    assert.deepEqual(uncropBox([0, 1, 2, 2], crop), [2, 2, 4, 3]);
    assert.deepEqual(Array.from(uncropPoints([0.5, 1.5, 1, 0], crop)), [2.5, 2.5, 3, 1]);
    const m = maskOf("110", "001", "011");
    const full = uncropMask(m, crop, 5, 6);
    assert.deepEqual(rowsOf(full), ["000000", "001100", "000010", "000110", "000000"]);
    assert.deepEqual(uncroppedMaskToRle(m, crop, 5, 6), rleEncode(full));
    // pixel (0, 0) set: the counts start with an empty zero run, as mask_to_rle_pytorch
    assert.deepEqual(uncroppedMaskToRle(maskOf("10", "01"), [0, 0, 2, 2], 2, 2).counts, [0, 1, 2, 1]);
    assert.deepEqual(uncroppedMaskToRle(createMask(2, 2), [1, 1, 3, 3], 3, 3).counts, [9]);
    assert.equal(rleArea(rleEncode(full)), 5);
    assert.throws(() => uncroppedMaskToRle(m, [4, 0, 7, 3], 5, 6), /does not fit/);
  });

  test("stability score: counts above +1 over counts above -1, in float32", () => {
    assert.equal(calculateStabilityScore([2, 0.5, -0.5, -2, 1.5, 3]), Math.fround(3 / 5));
    assert.ok(Number.isNaN(calculateStabilityScore([-3, -2])));
    assert.equal(calculateStabilityScore([0.6, 0.4, -0.6], 0, 0.5), Math.fround(1 / 2));
  });
});

describe("crop-edge rule (atol 20)", () => {
  const orig = [0, 0, 1500, 1000] as [number, number, number, number];
  const crop = [580, 0, 1500, 671] as [number, number, number, number];
  test("near a crop edge inside the image: dropped", () => {
    // crop frame x1 = 20 -> image x 600, within 20 of the crop's left edge 580
    assert.equal(isBoxNearCropEdge([20, 100, 200, 300], crop, orig), true);
    assert.equal(isBoxNearCropEdge([21, 100, 200, 300], crop, orig), false);
    // bottom: y2 = 651 -> within 20 of 671, which is not the image's bottom
    assert.equal(isBoxNearCropEdge([100, 100, 200, 651], crop, orig), true);
    assert.equal(isBoxNearCropEdge([100, 100, 200, 650], crop, orig), false);
  });
  test("edges shared with the image do not count", () => {
    // the crop's top (0) and right (1500) are image edges
    assert.equal(isBoxNearCropEdge([100, 0, 919, 300], crop, orig), false);
    assert.equal(isBoxNearCropEdge([100, 5, 200, 300], [0, 0, 1500, 1000], orig), false);
  });
});

describe("batched NMS (torchvision semantics)", () => {
  // IoU([0,0,10,10], [1,1,11,11]) = 81 / 119 = 0.68
  const boxes = [
    [0, 0, 10, 10],
    [1, 1, 11, 11],
    [20, 20, 30, 30],
    [0, 0, 10, 10],
  ];
  test("by score, ties by index; a box goes when IoU > threshold with a kept one", () => {
    assert.deepEqual(batchedNms(boxes, [0.8, 0.9, 0.5, 0.9], 0.7), [1, 3, 2]);
    assert.deepEqual(batchedNms(boxes, [0.8, 0.9, 0.5, 0.9], 0.6), [1, 2]);
    assert.deepEqual(batchedNms(boxes, [1, 1, 1, 1], 0.7), [0, 1, 2]);
  });
  test("IoU equal to the threshold stays; categories never suppress each other; empty boxes neither", () => {
    // 70 / 100 = 0.7 (0.699999988 in float32): not > 0.7
    assert.deepEqual(
      batchedNms(
        [
          [0, 0, 10, 10],
          [0, 0, 10, 7],
        ],
        [2, 1],
        0.7,
      ),
      [0, 1],
    );
    assert.deepEqual(batchedNms(boxes, [0.8, 0.9, 0.5, 0.9], 0.6, [0, 1, 0, 0]), [1, 3, 2]);
    assert.deepEqual(
      batchedNms(
        [
          [0, 0, 0, 0],
          [0, 0, 0, 0],
        ],
        [1, 2],
        0,
      ),
      [1, 0],
    );
    assert.throws(() => batchedNms(boxes, [1], 0.5), /one score/);
  });
});

describe("small regions (8-connected, as cv2.connectedComponents)", () => {
  // a ring of 8 with a 1-pixel hole, a lone pixel at (5, 2) and a 2x2 block; background 22 pixels
  const m = maskOf("111000", "101000", "111001", "000000", "000011", "000011");
  test("holes below the area are filled", () => {
    const r = removeSmallRegions(m, 2, "holes");
    assert.equal(r.changed, true);
    assert.deepEqual(rowsOf(r.mask), ["111000", "111000", "111001", "000000", "000011", "000011"]);
  });
  test("the reference also fills a small outer background (22 < 30)", () => {
    assert.deepEqual(rowsOf(removeSmallRegions(m, 30, "holes").mask), Array(6).fill("111111"));
  });
  test("islands below the area are removed; all small keeps the largest", () => {
    const r = removeSmallRegions(m, 5, "islands");
    assert.equal(r.changed, true);
    assert.deepEqual(rowsOf(r.mask), ["111000", "101000", "111000", "000000", "000000", "000000"]);
    assert.deepEqual(rowsOf(removeSmallRegions(m, 100, "islands").mask), rowsOf(r.mask));
  });
  test("nothing small: the same mask, unchanged", () => {
    const r = removeSmallRegions(m, 1, "islands");
    assert.equal(r.changed, false);
    assert.equal(r.mask, m);
  });
  test("ties keep the component OpenCV labels first: 2x2 block order", () => {
    // (3, 0) comes first in raster order, (0, 1) first in block order (block (0, 0) before block (1, 0))
    const r = removeSmallRegions(maskOf("0001", "1000"), 5, "islands");
    assert.deepEqual(rowsOf(r.mask), ["0000", "1000"]);
  });
});
