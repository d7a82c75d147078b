import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import sharp from "sharp";
import { SegkitError } from "../core/errors.js";
import { createImage, createMask } from "../core/image.js";
import type { Instances } from "../masks/instances.js";
import { rleDecode } from "../masks/rle.js";
import type { Dataset } from "./dataset.js";
import { openDataset } from "./formats.js";
import { instanceTargetDataset } from "./instance-targets.js";
import { regionInstanceDataset, regionInstances } from "./region-instances.js";

// 5 x 4, ISBI's classes: 0 = cell, 1 = membrane. Four cells: A (top left, 4 px), B (right, 7 px), C (0,3) and
// D (2,3), 1 px each; D touches B only at a corner ((2,3)-(3,2)), so with 4-connectivity it is a cell of its own.
const W = 5;
const H = 4;
const LABELS = [
  [0, 0, 1, 0, 0],
  [0, 0, 1, 0, 0],
  [1, 1, 1, 0, 0],
  [0, 1, 0, 1, 0],
];
const map = () => createMask(W, H, Uint8Array.from(LABELS.flat()));

/** Each instance's pixels as [x, y] pairs in raster order. */
const pixels = (inst: Instances) =>
  inst.masks.map((rle) => {
    const d = rleDecode(rle).data;
    return [...d.keys()].filter((p) => d[p]).map((p) => [p % W, Math.floor(p / W)]);
  });

const CELLS = [
  [
    [0, 0],
    [1, 0],
    [0, 1],
    [1, 1],
  ],
  [
    [3, 0],
    [4, 0],
    [3, 1],
    [4, 1],
    [3, 2],
    [4, 2],
    [4, 3],
  ],
  [[0, 3]],
  [[2, 3]],
];

describe("regionInstances", () => {
  it("makes each 4-connected region of the class one instance, in raster order of its first pixel", () => {
    const inst = regionInstances(map(), 0);
    assert.equal(inst.width, W);
    assert.equal(inst.height, H);
    assert.deepEqual(pixels(inst), CELLS);
    assert.deepEqual(inst.boxes, [
      [0, 0, 2, 2],
      [3, 0, 5, 4],
      [0, 3, 1, 4],
      [2, 3, 3, 4],
    ]);
    assert.deepEqual(inst.classIds, [1, 1, 1, 1]);
    assert.deepEqual(inst.scores, [1, 1, 1, 1]);
    assert.equal(inst.iscrowd, undefined);
  });

  it("takes the category id, and gives none for a class absent from the map", () => {
    assert.deepEqual(regionInstances(map(), 1, 7).classIds, [7, 7]); // membranes: the cross, and (3,3) alone
    const none = regionInstances(map(), 2);
    assert.deepEqual([none.masks.length, none.width, none.height], [0, W, H]);
  });
});

/** A one-sample semantic dataset over LABELS (classes cell, membrane). */
function semantic(): Dataset {
  const sample = { id: "s0", image: createImage(W, H), mask: map() };
  return {
    format: "test",
    classNames: ["cell", "membrane"],
    ignoreIndex: 255,
    backgroundClass: 0,
    length: 1,
    skipped: [],
    id: () => "s0",
    files: () => [],
    get: async () => sample,
  };
}

describe("regionInstanceDataset", () => {
  it("gives samples their class map and the regions as instances of one category named after the class", async () => {
    const ds = regionInstanceDataset(semantic(), { classIndex: 0 });
    assert.deepEqual(ds.categories, [{ id: 1, name: "cell" }]);
    assert.deepEqual(ds.classNames, ["cell", "membrane"]);
    const s = await ds.get(0);
    assert.deepEqual([...s.mask.data], LABELS.flat());
    assert.deepEqual(pixels(s.instances as Instances), CELLS);
    assert.deepEqual(pixels(await (ds.getInstances as (i: number) => Promise<Instances>)(0)), CELLS);
  });

  it("feeds instanceTargetDataset: boundary where a cell meets a membrane, interior inside", async () => {
    const targets = instanceTargetDataset(regionInstanceDataset(semantic(), { classIndex: 0 }));
    // classes background 0 (the membranes), boundary 1, cell interior 2; the image border is not an edge
    assert.deepEqual(
      [...(await targets.get(0)).mask.data],
      [...[2, 1, 0, 1, 2], ...[1, 1, 0, 1, 2], ...[0, 0, 0, 1, 2], ...[1, 0, 1, 0, 1]],
    );
  });

  it("rejects a class the dataset does not have", () => {
    assert.throws(() => regionInstanceDataset(semantic(), { classIndex: 2 }), SegkitError);
  });
});

describe("isbi2012 with task instance", () => {
  it("reads the cells between the membranes (label 255) as instances", async () => {
    const root = await mkdtemp(join(tmpdir(), "segkit-isbi-inst-"));
    try {
      for (const d of ["image", "label"]) await mkdir(join(root, "train", d), { recursive: true });
      const raw = { raw: { width: W, height: H, channels: 1 as const } };
      const stored = Buffer.from(LABELS.flat().map((c) => (c === 0 ? 255 : 0))); // stored 0 = membrane
      await sharp(Buffer.alloc(W * H, 128), raw)
        .png()
        .toFile(join(root, "train", "image", "0.png"));
      await sharp(stored, raw)
        .png()
        .toFile(join(root, "train", "label", "0.png"));
      const ds = await openDataset(root, { format: "isbi2012", task: "instance" });
      assert.deepEqual(ds.categories, [{ id: 1, name: "cell" }]);
      assert.deepEqual(pixels((await ds.get(0)).instances as Instances), CELLS);
      assert.equal((await openDataset(root, { format: "isbi2012" })).getInstances, undefined);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
