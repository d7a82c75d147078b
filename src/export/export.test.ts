import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SegkitError } from "../core/errors.js";
import { createMask, type Mask } from "../core/image.js";
import type { Dataset } from "../data/dataset.js";
import { openDataset } from "../data/formats.js";
import { createSyntheticDataset } from "../data/synthetic.js";
import { writeImagePng } from "../io/write.js";
import { CocoInstancesSchema, cocoCategories, maskToAnnotations } from "./coco.js";
import { exportDataset } from "./dataset.js";
import { yoloClassOf, yoloLines } from "./yolo.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "segkit-export-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** 5 wide, 4 high: class 1 in columns 1..2 of rows 0..1, class 2 at (4, 3), the rest background 0. */
const small = (): Mask =>
  createMask(5, 4, Uint8Array.from([0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]));

const synthetic = (): Dataset => createSyntheticDataset({ seed: 3, length: 4, size: 48 });

/** The masks of `b` relabelled to `a`'s class indices by class name, sample by sample. */
async function relabelled(a: Dataset, b: Dataset, idPrefix = "images/"): Promise<{ want: Mask; got: Mask }[]> {
  assert.equal(b.length, a.length);
  const toA = b.classNames.map((n) => a.classNames.indexOf(n));
  const out = [];
  for (let i = 0; i < a.length; i++) {
    const want = (await a.get(i)).mask;
    const got = (await b.get(i)).mask;
    assert.equal(b.id(i), `${idPrefix}${a.id(i)}`);
    out.push({ want, got: { ...got, data: got.data.map((v) => toA[v] ?? 255) } });
  }
  return out;
}

describe("COCO annotations of a mask", () => {
  it("maps classes to category ids 1.. without the background", () => {
    const { categories, categoryOf } = cocoCategories(["pet", "background", "border"], 1);
    assert.deepEqual(categories, [
      { id: 1, name: "pet" },
      { id: 2, name: "border" },
    ]);
    assert.deepEqual(categoryOf, [1, undefined, 2]);
  });

  it("writes one crowd RLE per class present (hand-computed counts)", () => {
    const { annotations } = maskToAnnotations(small(), { categoryOf: [undefined, 1, 2] });
    // class 1, column-major runs: 4 zeros (column 0), 2 ones, 2 zeros, 2 ones, then 10 zeros -> [4, 2, 2, 2, 10],
    // stored as 4, 2, 2, then differences from two before: 2 - 2 = 0, 10 - 2 = 8 -> "42208"
    assert.deepEqual(annotations, [
      { category_id: 1, segmentation: { size: [4, 5], counts: "42208" }, area: 4, bbox: [1, 0, 2, 2], iscrowd: 1 },
      // class 2 is the last pixel: [19, 1] -> "c01"
      { category_id: 2, segmentation: { size: [4, 5], counts: "c01" }, area: 1, bbox: [4, 3, 1, 1], iscrowd: 1 },
    ]);
  });

  it("splits components with instances, and orders polygons by filled area", () => {
    const two = createMask(6, 2, Uint8Array.from([1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1]));
    const inst = maskToAnnotations(two, { categoryOf: [undefined, 1], instances: true }).annotations;
    assert.deepEqual(
      inst.map((a) => [a.area, a.bbox, a.iscrowd]),
      [
        [2, [0, 0, 1, 2], 0],
        [4, [4, 0, 2, 2], 0],
      ],
    );
    const poly = maskToAnnotations(two, { categoryOf: [undefined, 1], instances: true, polygons: true }).annotations;
    assert.deepEqual(
      poly.map((a) => [a.area, a.segmentation]),
      [
        [4, [[4, 0, 6, 0, 6, 2, 4, 2]]],
        [2, [[0, 0, 1, 0, 1, 2, 0, 2]]],
      ],
    );
  });

  it("the strict schema rejects an RLE of the wrong size and unknown keys", () => {
    const coco = {
      images: [{ id: 1, file_name: "a.png", width: 5, height: 4 }],
      categories: [{ id: 1, name: "a" }],
      annotations: [
        {
          id: 1,
          image_id: 1,
          category_id: 1,
          segmentation: { size: [4, 5], counts: "42208" },
          area: 4,
          bbox: [1, 0, 2, 2],
          iscrowd: 1,
        },
      ],
    };
    assert.equal(CocoInstancesSchema.safeParse(coco).success, true);
    const wrongSize = structuredClone(coco);
    wrongSize.annotations[0] = { ...coco.annotations[0], segmentation: { size: [5, 4], counts: "42208" } } as never;
    assert.match(CocoInstancesSchema.safeParse(wrongSize).error?.issues[0]?.message ?? "", /RLE size \[5, 4\]/);
    assert.equal(CocoInstancesSchema.safeParse({ ...coco, extra: 1 }).success, false);
  });
});

describe("export and read back", () => {
  it("COCO RLE, semantic and instances: the masks come back identical (relabelled by name)", async () => {
    const ds = synthetic();
    for (const instances of [false, true]) {
      const out = join(dir, `coco-rle-${instances}`);
      const summary = await exportDataset(ds, out, { to: "coco", instances });
      assert.equal(summary.samples, 4);
      const json = JSON.parse(readFileSync(join(out, "annotations.json"), "utf8"));
      const checked = CocoInstancesSchema.safeParse(json);
      assert.ok(checked.success, checked.error?.message);
      assert.ok(json.annotations.every((a: { iscrowd: number }) => a.iscrowd === (instances ? 0 : 1)));
      const back = await openDataset(out, { format: "coco" });
      assert.deepEqual(back.classNames, ["background", "pet", "border"]);
      assert.deepEqual(back.skipped, []);
      for (const { want, got } of await relabelled(ds, back)) assert.deepEqual(got, want);
    }
  });

  it("two ids that flatten to one file name: the second is skipped, named, not written over the first", async () => {
    const ds = synthetic();
    const twin: Dataset = Object.assign(Object.create(ds), { id: (i: number) => ["a/b", "a__b", "c", "d"][i] });
    const out = join(dir, "flat-names");
    const summary = await exportDataset(twin, out, { to: "png" });
    assert.equal(summary.samples, 3);
    assert.deepEqual(
      summary.skipped.map((s) => s.reason),
      ["sample a__b would be written as a__b, as an earlier sample was"],
    );
    const back = await openDataset(out, { format: "folder" });
    // masks/a__b.png holds sample 0 (a/b), not sample 1
    assert.deepEqual([back.length, back.id(0)], [3, "a__b"]);
    assert.deepEqual((await back.get(0)).mask, (await ds.get(0)).mask);
    assert.notDeepEqual((await back.get(0)).mask, (await ds.get(1)).mask);
  });

  it("COCO's own layout: --annotations annotations/instances_val.json, --images val", async () => {
    const ds = synthetic();
    const out = join(dir, "coco-layout");
    await exportDataset(ds, out, { to: "coco" });
    // as COCO ships: file_names are base names under val/, the JSON under annotations/ with another name
    const json = JSON.parse(readFileSync(join(out, "annotations.json"), "utf8"));
    await mkdir(join(out, "val"));
    await mkdir(join(out, "annotations"));
    for (const img of json.images) {
      await rename(join(out, img.file_name), join(out, "val", basename(img.file_name)));
      img.file_name = basename(img.file_name);
    }
    await writeFile(join(out, "annotations", "instances_val.json"), JSON.stringify(json));
    await rm(join(out, "annotations.json"));
    const back = await openDataset(out, {
      format: "coco",
      annotations: "annotations/instances_val.json",
      images: "val",
    });
    assert.deepEqual([back.length, back.skipped], [4, []]);
    for (const { want, got } of await relabelled(ds, back, "")) assert.deepEqual(got, want);
    await assert.rejects(
      openDataset(out, { format: "coco" }),
      (err: unknown) =>
        err instanceof SegkitError &&
        err.file === join(out, "annotations.json") &&
        err
          .describe()
          .endsWith("COCO annotations file not found. another annotations file is named with --annotations FILE"),
    );
  });

  it("COCO polygons: pixel agreement per image >= 99.8% unsimplified, >= 96% at tolerance 1 px", async () => {
    // measured on these 48 px images (2-4 px border bands, the hard case for simplification):
    // tolerance 0: 1.0000 0.9983 1.0000 0.9996 (a background hole is filled); tolerance 1: 0.9818 0.9648 0.9878 0.9727
    const ds = synthetic();
    for (const [tolerance, bound] of [
      [0, 0.998],
      [1, 0.96],
    ] as const) {
      const out = join(dir, `coco-poly-${tolerance}`);
      const summary = await exportDataset(ds, out, { to: "coco", polygons: true, tolerance });
      const json = JSON.parse(readFileSync(join(out, "annotations.json"), "utf8"));
      assert.ok(CocoInstancesSchema.safeParse(json).success);
      assert.equal(summary.holesFilled, 7); // the border band around each pet is a ring; its hole is restored
      const back = await openDataset(out); // detected from annotations.json
      assert.equal(back.format, "coco");
      const agreement = [];
      for (const { want, got } of await relabelled(ds, back)) {
        let same = 0;
        for (let p = 0; p < want.data.length; p++) if (want.data[p] === got.data[p]) same++;
        agreement.push(same / want.data.length);
      }
      assert.ok(Math.min(...agreement) >= bound, `tolerance ${tolerance}: agreement ${agreement}`);
      if (tolerance === 0) assert.equal(Math.max(...agreement), 1);
    }
  });

  it("PNG folder: read back by the folder format with classes.json, exactly", async () => {
    const ds = synthetic();
    const out = join(dir, "png");
    await exportDataset(ds, out, { to: "png" });
    const back = await openDataset(out);
    assert.equal(back.format, "folder");
    assert.deepEqual(back.classNames, ds.classNames);
    assert.equal(back.backgroundClass, 1);
    for (let i = 0; i < ds.length; i++) {
      const [a, b] = [await ds.get(i), await back.get(i)];
      assert.equal(back.id(i), a.id);
      assert.deepEqual(b.mask, a.mask);
      assert.deepEqual(b.image, a.image);
    }
  });

  it("YOLO: normalised outer rings, classes renumbered without the background", async () => {
    // 10 x 8, class 2 on x 2..5, y 1..3: corners (2,1) (6,1) (6,4) (2,4) over width 10, height 8
    const mask = createMask(10, 8, new Uint8Array(80).fill(1));
    for (let y = 1; y <= 3; y++) for (let x = 2; x <= 5; x++) mask.data[y * 10 + x] = 2;
    const classOf = yoloClassOf(["a", "background", "b"], 1);
    assert.deepEqual(classOf, [0, undefined, 1]);
    assert.deepEqual(yoloLines(mask, classOf), { lines: ["1 0.2 0.125 0.6 0.125 0.6 0.5 0.2 0.5"], holesFilled: 0 });
    const ds: Dataset = {
      ...synthetic(),
      classNames: ["a", "background", "b"],
      length: 1,
      get: async () => ({ id: "r", image: { width: 10, height: 8, data: new Uint8Array(240) }, mask }),
      id: () => "r",
    };
    const out = join(dir, "yolo");
    const summary = await exportDataset(ds, out, { to: "yolo" });
    assert.equal(summary.annotations, 1);
    assert.equal(readFileSync(join(out, "labels", "r.txt"), "utf8"), "1 0.2 0.125 0.6 0.125 0.6 0.5 0.2 0.5\n");
    assert.match(readFileSync(join(out, "data.yaml"), "utf8"), /names:\n {2}"0": a\n {2}"1": b\n/);
  });
});

describe("the coco reader on bad input", () => {
  it("skips images with bad annotations, escaping or missing files, naming the file", async () => {
    const root = join(dir, "bad-coco");
    await mkdir(join(root, "images"), { recursive: true });
    await writeImagePng(join(root, "images", "ok.png"), { width: 5, height: 4, data: new Uint8Array(60) });
    await writeImagePng(join(root, "images", "bad.png"), { width: 5, height: 4, data: new Uint8Array(60) });
    const image = (id: number, file_name: string) => ({ id, file_name, width: 5, height: 4 });
    const json: Record<string, unknown[]> = {
      images: [
        image(1, "images/ok.png"),
        image(2, "../outside.png"),
        image(3, "images/missing.png"),
        image(4, "images/bad.png"),
      ],
      categories: [{ id: 7, name: "thing" }],
      annotations: [
        { id: 1, image_id: 1, category_id: 7, segmentation: { size: [4, 5], counts: [4, 2, 2, 2, 10] } },
        { id: 2, image_id: 1, category_id: 7, segmentation: [[4, 3, 5, 3, 5, 4, 4, 4]] },
        { id: 3, image_id: 4, category_id: 9, segmentation: [[0, 0, 1, 0, 1, 1]] },
        { id: 4, image_id: 99, category_id: 7, segmentation: [[0, 0, 1, 0, 1, 1]] },
      ],
    };
    const file = join(root, "annotations.json");
    await writeFile(file, JSON.stringify(json));
    const ds = await openDataset(root, { format: "coco" });
    assert.equal(ds.length, 1);
    assert.deepEqual(ds.classNames, ["background", "thing"]);
    assert.deepEqual(
      (await ds.get(0)).mask,
      createMask(5, 4, Uint8Array.from([0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])),
    );
    assert.deepEqual(
      ds.skipped.map((s) => [s.path, s.reason.replace(root, "ROOT")]),
      [
        [file, "annotation 4 refers to no image (image_id 99)"],
        [file, 'image 2: file_name "../outside.png" is outside the image directory ROOT'],
        [
          file,
          "image 3: image file not found: ROOT/images/missing.png (file_names are relative to the dataset directory; --images names another)",
        ],
        [file, "image 4: annotation 3: category 9 does not exist"],
      ],
    );
    await writeFile(file, "{ not json");
    await assert.rejects(
      openDataset(root, { format: "coco" }),
      (e: unknown) => e instanceof SegkitError && e.file === file,
    );
    // a bad counts string is found when the sample is read, and names the annotations file
    json.images = [image(1, "images/ok.png")];
    json.annotations = [{ id: 5, image_id: 1, category_id: 7, segmentation: { size: [4, 5], counts: "42~" } }];
    await writeFile(file, JSON.stringify(json));
    const broken = await openDataset(root);
    await assert.rejects(
      broken.get(0),
      (e: unknown) => e instanceof SegkitError && e.file === file && /annotation 5/.test(e.message),
    );
  });
});
