import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SegkitError } from "../core/errors.js";
import { createMask } from "../core/image.js";
import { rleDecode } from "../masks/rle.js";
import {
  countInstances,
  filterInstances,
  instancesFromCoco,
  instancesFromMasks,
  instancesToCoco,
} from "./instances.js";

/** A 6 x 4 mask with the rectangle [x1, x2) x [y1, y2) set. */
function rect(x1: number, y1: number, x2: number, y2: number) {
  const m = createMask(6, 4);
  for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) m.data[y * 6 + x] = 1;
  return m;
}

describe("instances", () => {
  it("filterInstances keeps the chosen ones in order, optional lists in step", () => {
    const masks = [1, 2, 3].map((v) => {
      const m = createMask(4, 2);
      m.data[v] = 1;
      return m;
    });
    const inst = {
      ...instancesFromMasks(masks, { classIds: [5, 6, 7], scores: [0.9, 0.2, 0.6] }),
      iscrowd: [false, true, false],
      ids: [10, 11, 12],
    };
    const kept = filterInstances(inst, (k) => (inst.scores[k] as number) > 0.5);
    assert.deepEqual(kept.classIds, [5, 7]);
    assert.deepEqual(kept.scores, [0.9, 0.6]);
    assert.deepEqual(kept.iscrowd, [false, false]);
    assert.deepEqual(kept.ids, [10, 12]);
    assert.deepEqual(kept.boxes, [inst.boxes[0], inst.boxes[2]]);
    assert.deepEqual(
      Array.from(rleDecode(kept.masks[1] as (typeof kept.masks)[number]).data),
      Array.from(masks[2]?.data ?? []),
    );
    const plain = filterInstances(instancesFromMasks(masks, { classIds: [5, 6, 7] }), (k) => k > 0);
    assert.deepEqual([plain.classIds, "ids" in plain, "iscrowd" in plain], [[6, 7], false, false]);
  });

  it("from bitmaps to COCO annotations and back: masks, boxes, areas, classes, scores", () => {
    const inst = instancesFromMasks([rect(1, 0, 3, 2), rect(2, 1, 6, 4)], { classIds: [3, 7], scores: [0.9, 0.4] });
    assert.deepEqual(inst.boxes, [
      [1, 0, 3, 2],
      [2, 1, 6, 4],
    ]);
    const coco = instancesToCoco(inst);
    assert.deepEqual(
      coco.map((a) => [a.category_id, a.bbox, a.area, a.iscrowd, a.score]),
      [
        [3, [1, 0, 2, 2], 4, 0, 0.9],
        [7, [2, 1, 4, 3], 12, 0, 0.4],
      ],
    );
    const back = instancesFromCoco(coco, { width: 6, height: 4 });
    assert.deepEqual(
      back.masks.map((m) => [...rleDecode(m).data]),
      [[...rect(1, 0, 3, 2).data], [...rect(2, 1, 6, 4).data]],
    );
    assert.deepEqual(back.boxes, inst.boxes);
    assert.deepEqual(back.scores, [0.9, 0.4]);
    assert.deepEqual(back.iscrowd, [false, false]);
  });

  it("polygons as pycocotools rasterises them; ground truth scores 1; crowd kept", () => {
    const inst = instancesFromCoco(
      [
        { category_id: 1, segmentation: [[0, 0, 2, 0, 2, 2, 0, 2]], iscrowd: 0 },
        { category_id: 2, segmentation: { size: [4, 6], counts: [20, 4] }, iscrowd: 1 },
      ],
      { width: 6, height: 4 },
    );
    assert.deepEqual([...rleDecode(inst.masks[0] ?? { size: [0, 0], counts: [] }).data], [...rect(0, 0, 2, 2).data]);
    assert.deepEqual(inst.boxes, [
      [0, 0, 2, 2],
      [5, 0, 6, 4],
    ]);
    assert.deepEqual(inst.scores, [1, 1]);
    assert.deepEqual(inst.iscrowd, [false, true]);
  });

  it("lists of the wrong length, masks of another size and RLE of another size are errors naming the file", () => {
    const inst = instancesFromMasks([rect(0, 0, 1, 1)], { classIds: [1] });
    assert.throws(
      () => countInstances({ ...inst, scores: [] }, "p.json"),
      (e: unknown) =>
        e instanceof SegkitError && /scores has 0 entries for 1 masks/.test(e.message) && e.file === "p.json",
    );
    assert.throws(() => countInstances({ ...inst, width: 5 }), /mask 0 is 6x4, the image 5x4/);
    assert.throws(
      () =>
        instancesFromCoco(
          [{ category_id: 1, segmentation: { size: [3, 6], counts: [18] } }],
          { width: 6, height: 4 },
          "g.json",
        ),
      (e: unknown) => e instanceof SegkitError && /RLE size \[3, 6\] is not the image's \[4, 6\]/.test(e.message),
    );
  });
});
