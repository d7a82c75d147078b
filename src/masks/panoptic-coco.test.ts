// COCO panoptic writing: segments_info of a hand-made fused map (ids, categories, boxes, areas counted by hand), and
// the RGB PNG of its ids read back by the reader `segkit eval --task panoptic` uses.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { readPanopticPng } from "../data/coco-panoptic.js";
import { encodeIdMap } from "../io/instance-map.js";
import { panopticSegmentsInfo } from "./panoptic-coco.js";
import type { FusedSegment } from "./panoptic-fusion.js";

// a 5 x 4 map: thing 1 (category 7) an L, thing 2 (category 9) one pixel, stuff 3 (class 2) the right side,
// void (0) the rest
const W = 5;
const MAP = [
  [1, 1, 0, 3, 3],
  [1, 0, 0, 3, 3],
  [1, 1, 1, 3, 3],
  [0, 0, 2, 0, 3],
];
const ids = Uint32Array.from(MAP.flat());
const segments: FusedSegment[] = [
  { id: 1, isthing: true, categoryId: 7, area: 6, score: 0.9, instance: 0 },
  { id: 2, isthing: true, categoryId: 9, area: 1, score: 0.6, instance: 3 },
  { id: 3, isthing: false, classIndex: 2, area: 7 },
];
const categoryOf = (s: FusedSegment) => (s.isthing ? s.categoryId : 100 + s.classIndex);

describe("panopticSegmentsInfo", () => {
  it("ids, categories, iscrowd 0, bbox [x, y, w, h] and area of each segment, in the segments' order", () => {
    assert.deepEqual(panopticSegmentsInfo({ ids, segments }, W, categoryOf), [
      { id: 1, category_id: 7, iscrowd: 0, bbox: [0, 0, 3, 3], area: 6 },
      { id: 2, category_id: 9, iscrowd: 0, bbox: [2, 3, 1, 1], area: 1 },
      { id: 3, category_id: 102, iscrowd: 0, bbox: [3, 0, 2, 4], area: 7 },
    ]);
  });

  it("leaves out a segment with no pixels; an id of the map not among the segments and a wrong width are errors", () => {
    const empty: FusedSegment = { id: 4, isthing: true, categoryId: 7, area: 0, score: 0.8, instance: 1 };
    const info = panopticSegmentsInfo({ ids, segments: [...segments, empty] }, W, categoryOf);
    assert.deepEqual(
      info.map((s) => s.id),
      [1, 2, 3],
    );
    assert.throws(
      () => panopticSegmentsInfo({ ids, segments: segments.slice(0, 2) }, W, categoryOf),
      /segment id 3 is in the map but not among the segments/,
    );
    assert.throws(() => panopticSegmentsInfo({ ids, segments }, 3, categoryOf), /20 pixels is not 3 pixels wide/);
  });

  it("the RGB PNG of the ids (id = R + 256 G + 256^2 B) reads back through readPanopticPng, large ids included", async () => {
    const dir = await mkdtemp(join(tmpdir(), "segkit-panoptic-coco-"));
    try {
      const big = ids.map((id) => (id === 3 ? 0x0a0b0c : id === 2 ? 256 : id));
      const file = join(dir, "map.png");
      await writeFile(file, encodeIdMap({ width: W, height: 4, ids: big }, "rgb"));
      const back = await readPanopticPng(file);
      assert.equal(back.width, W);
      assert.equal(back.height, 4);
      assert.deepEqual([...back.ids], [...big]);
      assert.throws(() => encodeIdMap({ width: 1, height: 1, ids: Uint32Array.of(0x1000000) }, "rgb"), /256\^3/);
      assert.throws(() => encodeIdMap({ width: 1, height: 1, ids: Uint32Array.of(65536) }, "16bit"), /65535/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
