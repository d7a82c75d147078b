import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SegkitError } from "../core/errors.js";
import { createImage } from "../core/image.js";
import { writeImagePng } from "../io/write.js";
import { rleDecode } from "../masks/rle.js";
import { subset } from "./dataset.js";
import { openDataset } from "./formats.js";

describe("coco with task instance", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "segkit-coco-inst-"));
    await writeImagePng(join(dir, "a.png"), createImage(6, 4));
    await writeImagePng(join(dir, "b.png"), createImage(6, 4));
    const coco = {
      images: [
        { id: 7, file_name: "a.png", width: 6, height: 4 },
        { id: 9, file_name: "b.png", width: 6, height: 4 },
      ],
      categories: [
        { id: 3, name: "cat" },
        { id: 18, name: "dog" },
      ],
      annotations: [
        // a 2 x 2 square by polygon, its bbox given
        {
          id: 1,
          image_id: 7,
          category_id: 18,
          segmentation: [[0, 0, 2, 0, 2, 2, 0, 2]],
          bbox: [0, 0, 2, 2],
          iscrowd: 0,
        },
        // the last column as a crowd RLE (column-major: 20 zeros, 4 ones), no bbox
        { id: 2, image_id: 7, category_id: 3, segmentation: { size: [4, 6], counts: [20, 4] }, iscrowd: 1 },
      ],
    };
    await writeFile(join(dir, "annotations.json"), JSON.stringify(coco));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("samples carry their instances: category ids, masks, boxes, crowd; the class map as before", async () => {
    const ds = await openDataset(dir, { format: "coco", task: "instance" });
    const s = await ds.get(0);
    const inst = s.instances;
    assert.ok(inst);
    assert.deepEqual(
      [inst.width, inst.height, inst.classIds, inst.iscrowd, inst.scores],
      [6, 4, [18, 3], [false, true], [1, 1]],
    );
    assert.deepEqual(inst.boxes, [
      [0, 0, 2, 2],
      [5, 0, 6, 4],
    ]);
    const square = [1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert.deepEqual([...rleDecode(inst.masks[0] ?? { size: [0, 0], counts: [] }).data], square);
    // classes: background, then the categories by id (cat = 1, dog = 2)
    assert.deepEqual([s.mask.data[0], s.mask.data[5], s.mask.data[2]], [2, 1, 0]);
    assert.deepEqual(await ds.getInstances?.(0), inst);
    assert.deepEqual(ds.categories, [
      { id: 3, name: "cat" },
      { id: 18, name: "dog" },
    ]);
    assert.deepEqual((await ds.get(1)).instances?.masks, []);
    assert.deepEqual(await subset(ds, [1, 0]).getInstances?.(1), inst);
  });

  it("without the task: no instances; the task is refused by formats that have no instances", async () => {
    const ds = await openDataset(dir, { format: "coco" });
    // the category behind each class (none for the background), kept by views and by model cards
    const ids = [null, { id: 3 }, { id: 18 }];
    assert.deepEqual([ds.classCategories, subset(ds, [1]).classCategories], [ids, ids]);
    assert.equal((await ds.get(0)).instances, undefined);
    assert.equal(ds.getInstances, undefined);
    await assert.rejects(
      openDataset(dir, { format: "folder", task: "instance" }),
      (e: unknown) => e instanceof SegkitError && /option task does not apply to format folder/.test(e.message),
    );
  });
});
