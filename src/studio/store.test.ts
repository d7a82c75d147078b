import assert from "node:assert/strict";
import { mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { SegkitError } from "../core/errors.js";
import { openCoco } from "../data/coco.js";
import { rleDecode, rleFromString } from "../masks/rle.js";
import { makeImagesDir, rectRle } from "../test-utils/studio.js";
import { openProjectStore, readClassesFile, StudioConflict } from "./store.js";

let root: string;
let images: string;
before(async () => {
  ({ root, images } = await makeImagesDir({ "b.png": [8, 6], "a.png": [5, 4], "sub/c.png": [3, 3] }));
  await writeFile(join(images, "notes.txt"), "not an image");
  await writeFile(join(images, "broken.png"), "not a png either");
  await mkdir(join(root, "outside"));
  await writeFile(join(root, "outside", "x.png"), await readFile(join(images, "a.png")));
  await symlink(join(root, "outside", "x.png"), join(images, "link.png"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("studio project store", () => {
  test("lists images recursively with header sizes; skips non-images, unreadable files and links outside", async () => {
    const skipped: string[] = [];
    const store = await openProjectStore({
      imagesDir: images,
      outDir: join(root, "p1"),
      onSkip: (p, why) => skipped.push(`${p.slice(images.length + 1)}: ${why}`),
    });
    assert.deepEqual(
      store.images.map((i) => [i.id, i.width, i.height]),
      [
        ["a.png", 5, 4],
        ["b.png", 8, 6],
        ["sub/c.png", 3, 3],
      ],
    );
    assert.deepEqual(skipped.map((s) => s.split(":")[0]).sort(), ["broken.png", "link.png"]);
    assert.deepEqual(store.classes, [{ id: 1, name: "object", color: "#800000" }]);
    assert.equal(store.outDir, join(root, "p1"));
  });

  test("the default project directory is <images>/../<name>-labels", async () => {
    const store = await openProjectStore({ imagesDir: images, classes: ["cat"] });
    try {
      assert.equal(store.outDir, join(root, "photos-labels"));
      assert.equal(store.name, "photos");
      const json = JSON.parse(await readFile(store.file, "utf8"));
      assert.deepEqual(json.categories, [{ id: 1, name: "cat" }]);
      assert.deepEqual(json.images, []);
    } finally {
      await rm(store.outDir, { recursive: true });
    }
  });

  test("a change round-trips, is COCO RLE on disk that the coco reader paints, and continues after a restart", async () => {
    const out = join(root, "p2");
    const store = await openProjectStore({ imagesDir: images, outDir: out, classes: ["cat", "dog"] });
    assert.deepEqual(store.annotations("b.png"), { revision: 0, state: "new", instances: [] });
    const cat = rectRle(8, 6, 1, 1, 4, 3);
    const dog = rectRle(8, 6, 3, 2, 7, 6);
    const change = {
      baseRevision: 0,
      state: "in-progress",
      instances: [
        { id: "i1", classId: 1, rle: cat, source: "sam", score: 0.9 },
        { id: "i2", classId: 2, rle: dog, source: "manual" },
      ],
    };
    assert.deepEqual(await store.put("b.png", change), { revision: 1 });
    assert.equal(store.revision, 1);
    assert.deepEqual(store.annotations("b.png"), { revision: 1, state: "in-progress", instances: change.instances });

    const json = JSON.parse(await readFile(join(out, "annotations.json"), "utf8"));
    assert.deepEqual(json.images, [{ id: 1, file_name: "b.png", width: 8, height: 6 }]);
    assert.deepEqual(json.annotations, [
      { id: 1, image_id: 1, category_id: 1, segmentation: cat, area: 6, bbox: [1, 1, 3, 2], iscrowd: 0 },
      { id: 2, image_id: 1, category_id: 2, segmentation: dog, area: 16, bbox: [3, 2, 4, 4], iscrowd: 0 },
    ]);
    assert.deepEqual(json.segkit.images["b.png"], {
      state: "in-progress",
      revision: 1,
      instances: [
        { id: "i1", source: "sam", score: 0.9 },
        { id: "i2", source: "manual" },
      ],
    });

    // the coco reader: class 0 background, 1 cat, 2 dog; the later instance wins where they overlap
    const ds = await openCoco(out, { images, ignoreIndex: 255, strict: true });
    assert.deepEqual(ds.classNames, ["background", "cat", "dog"]);
    assert.equal(ds.length, 1);
    const mask = await ds.getMask?.(0);
    const row = (y: number) => Array.from(mask?.data.subarray(y * 8, y * 8 + 8) ?? []);
    assert.deepEqual(row(1), [0, 1, 1, 1, 0, 0, 0, 0]);
    assert.deepEqual(row(2), [0, 1, 1, 2, 2, 2, 2, 0]);
    assert.deepEqual(row(5), [0, 0, 0, 2, 2, 2, 2, 0]);

    // a stale base revision is a conflict naming the current one
    await assert.rejects(store.put("b.png", { ...change, instances: [] }), (err: unknown) => {
      assert.ok(err instanceof StudioConflict);
      assert.equal(err.revision, 1);
      return true;
    });

    // counts as numbers are stored compressed; a restart continues at the same revisions
    const again = await openProjectStore({ imagesDir: images, outDir: out });
    assert.deepEqual(
      again.classes.map((c) => c.name),
      ["cat", "dog"],
    );
    assert.equal(again.revision, 1);
    assert.deepEqual(again.annotations("b.png"), store.annotations("b.png"));
    const plain = { size: [4, 5], counts: [0, 20] };
    await again.put("a.png", {
      baseRevision: 0,
      state: "done",
      instances: [{ id: "x", classId: 2, rle: plain, source: "prelabel" }],
    });
    assert.deepEqual(again.annotations("a.png")?.instances[0]?.rle, { size: [4, 5], counts: "0d0" });
    assert.equal(
      rleDecode(rleFromString({ size: [4, 5], counts: "0d0" })).data.every((v) => v === 1),
      true,
    );
    assert.equal(again.revision, 2);

    // classes can be added at the end, not changed
    const more = await openProjectStore({ imagesDir: images, outDir: out, classes: ["cat", "dog", "bird"] });
    assert.deepEqual(
      more.classes.map((c) => c.name),
      ["cat", "dog", "bird"],
    );
    await assert.rejects(
      openProjectStore({ imagesDir: images, outDir: out, classes: ["dog"] }),
      /differ from the project's/,
    );
  });

  test("bad changes are refused with a message and change nothing", async () => {
    const out = join(root, "p3");
    const store = await openProjectStore({ imagesDir: images, outDir: out, classes: ["cat"] });
    const before = await readFile(store.file, "utf8");
    const inst = { id: "i", classId: 1, rle: rectRle(5, 4, 0, 0, 1, 1), source: "sam" };
    const cases: [unknown, RegExp][] = [
      [
        { baseRevision: 0, state: "done", instances: [{ ...inst, rle: rectRle(4, 5, 0, 0, 1, 1) }] },
        /RLE size \[5, 4\] is not the image's \[4, 5\]/,
      ],
      [{ baseRevision: 0, state: "done", instances: [{ ...inst, classId: 2 }] }, /class 2 does not exist/],
      [{ baseRevision: 0, state: "done", instances: [inst, inst] }, /id is used twice/],
      [
        { baseRevision: 0, state: "done", instances: [{ ...inst, rle: { size: [4, 5], counts: "0" } }] },
        /counts sum to 0/,
      ],
      [
        { baseRevision: 0, state: "done", instances: [{ ...inst, rle: { size: [4, 5], counts: "\u00ff" } }] },
        /bad character/,
      ],
      [{ baseRevision: 0, state: "finished", instances: [] }, /state/],
      [{ baseRevision: -1, state: "done", instances: [] }, /baseRevision/],
      [{ baseRevision: 0, state: "done", instances: [], extra: 1 }, /extra|Unrecognized/],
      [{ baseRevision: 0, state: "done", instances: Array.from({ length: 10_001 }, () => inst) }, /instances/],
      ["nothing", /bad annotations/],
    ];
    for (const [change, message] of cases) {
      await assert.rejects(store.put("a.png", change), (err: unknown) => {
        assert.ok(err instanceof SegkitError && !(err instanceof StudioConflict), String(err));
        assert.match(err.message, message);
        return true;
      });
    }
    await assert.rejects(store.put("zzz.png", { baseRevision: 0, state: "done", instances: [] }), /no image "zzz.png"/);
    assert.equal(await readFile(store.file, "utf8"), before);
    assert.equal(store.revision, 0);
  });

  test("a damaged project file is an error naming it, not overwritten", async () => {
    const out = join(root, "p4");
    await mkdir(out);
    const file = join(out, "annotations.json");
    for (const text of ["{", '{"images":[],"categories":[],"annotations":[]}']) {
      await writeFile(file, text);
      await assert.rejects(openProjectStore({ imagesDir: images, outDir: out }), (err: unknown) => {
        assert.ok(err instanceof SegkitError);
        assert.equal(err.file, file);
        return true;
      });
      assert.equal(await readFile(file, "utf8"), text);
    }
  });

  test("a classes file: one name a line, blanks and comments skipped", async () => {
    const file = join(root, "classes.txt");
    await writeFile(file, "# pets\ncat\r\n\n  dog \n");
    assert.deepEqual(await readClassesFile(file), ["cat", "dog"]);
    await assert.rejects(readClassesFile(join(root, "none.txt")), /classes file not found/);
    await assert.rejects(
      openProjectStore({ imagesDir: images, outDir: join(root, "p5"), classes: ["a", "a"] }),
      /given twice/,
    );
  });
});
