import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import sharp from "sharp";
import { SegkitError } from "../core/errors.js";
import { maskHistogram } from "../core/image.js";
import { sharedPath, sharedSkip, slowSkip } from "../test-utils/shared.js";
import type { Dataset } from "./dataset.js";
import { defaultEvalSplit, detectFormat, openDataset } from "./formats.js";
import { inspectDataset } from "./inspect.js";
import { transformSample } from "./transforms.js";

const indexOf = (ds: Dataset, id: string): number => {
  for (let i = 0; i < ds.length; i++) if (ds.id(i) === id) return i;
  throw new Error(`no sample ${id}`);
};
const values = (data: Uint8Array) => [...new Set(data)].sort((a, b) => a - b);

describe("openDataset options", () => {
  it("detects layouts and names the directory when it cannot", async () => {
    const root = await mkdtemp(join(tmpdir(), "segkit-detect-"));
    try {
      assert.throws(
        () => detectFormat(root),
        (e: unknown) => e instanceof SegkitError && e.file === root,
      );
      await mkdir(join(root, "trainannot"));
      assert.equal(detectFormat(root), "camvid");
      await mkdir(join(root, "annotations", "trimaps"), { recursive: true });
      assert.equal(detectFormat(root), "oxford-pet");
      assert.throws(() => detectFormat(join(root, "missing")), /dataset directory not found/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("rejects unknown formats, options and splits with the valid choices", async () => {
    await assert.rejects(openDataset(".", { format: "voc" }), (e: unknown) => {
      return (
        e instanceof SegkitError && /unknown dataset format "voc"/.test(e.message) && /oxford-pet/.test(e.hint ?? "")
      );
    });
    await assert.rejects(openDataset(".", { format: "synthetic", colour: true } as never), /invalid dataset option/);
    await assert.rejects(
      openDataset(sharedPath("oxford-iiit-pet"), { format: "oxford-pet", split: "train" }),
      (e: unknown) => e instanceof SegkitError && e.hint === "valid splits: trainval, test",
    );
  });

  it("reads folder masks through values, threshold and a valid region; checks classes against the ignore index", async () => {
    const root = await mkdtemp(join(tmpdir(), "segkit-folder-"));
    const gray = (values: number[]) =>
      sharp(Buffer.from(values), { raw: { width: 2, height: 2, channels: 1 } })
        .png()
        .toBuffer();
    try {
      for (const d of ["images", "masks", "fov"]) await mkdir(join(root, d));
      await writeFile(join(root, "images", "a.png"), await gray([1, 2, 3, 4]));
      await writeFile(join(root, "masks", "a.png"), await gray([0, 255, 200, 7]));
      await writeFile(join(root, "fov", "a.png"), await gray([255, 255, 255, 0]));
      const mapped = await openDataset(root, { values: { "0": 0, "255": 1, "200": 1, "7": 255 } });
      assert.deepEqual([...(await mapped.get(0)).mask.data], [0, 1, 1, 255]);
      const thresholded = await openDataset(root, { threshold: 128, valid: "fov", classes: ["bg", "fg"] });
      assert.deepEqual([...(await thresholded.get(0)).mask.data], [0, 1, 1, 255]); // last pixel outside the fov
      await assert.rejects(
        openDataset(root, { values: { "0": 0, "255": 5 }, classes: ["a"] }),
        /targets 5 outside the 1 classes/,
      );
      await assert.rejects(openDataset(root, { values: { "0": 0 }, threshold: 3 }), /not both/);
      await assert.rejects(openDataset(root, { threshold: 3, classes: ["a", "b", "c"] }), /2 classes, but 3/);
      await assert.rejects(
        openDataset(root, { classes: ["a", "b"], ignoreIndex: 1 }),
        /ignore index 1 is one of the 2 classes/,
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("asks a folder dataset for its classes", async () => {
    const root = await mkdtemp(join(tmpdir(), "segkit-folder-"));
    try {
      await mkdir(join(root, "images"));
      await mkdir(join(root, "masks"));
      await assert.rejects(openDataset(root, { format: "folder" }), /need class names, a value map or a threshold/);
      const ds = await openDataset(root, { values: { "0": 0, "255": 1, "7": 255 } });
      assert.deepEqual(ds.classNames, ["class0", "class1"]);
      assert.equal(ds.format, "folder");
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe("real datasets in ../shared/datasets", { skip: sharedSkip() }, () => {
  it("oxford-pet: 400 pairs, the 3 .mat files named, official splits, quirky files decoded", async () => {
    const root = sharedPath("oxford-iiit-pet");
    const ds = await openDataset(root);
    assert.equal(ds.format, "oxford-pet");
    assert.equal(ds.length, 400);
    assert.deepEqual(
      ds.skipped.map((s) => s.path.slice(root.length + 1)),
      ["images/Abyssinian_100.mat", "images/Abyssinian_101.mat", "images/Abyssinian_102.mat"],
    );
    assert.deepEqual(ds.classNames, ["pet", "background", "border"]);
    // A GIF named .jpg, and an RGBA PNG named .jpg.
    const gif = await ds.get(indexOf(ds, "Abyssinian_34"));
    assert.equal(gif.image.data.length, gif.image.width * gif.image.height * 3);
    assert.deepEqual(values(gif.mask.data), [1]); // its trimap is all background
    const rgba = await ds.get(indexOf(ds, "Abyssinian_5"));
    assert.deepEqual([rgba.image.width, rgba.image.height], [200, 150]);
    assert.deepEqual(values(rgba.mask.data), [0, 1, 2]);
    await assert.rejects(openDataset(root, { strict: true }), (e: unknown) => {
      return (
        e instanceof SegkitError && e.file?.endsWith("Abyssinian_100.mat") === true && /not an image/.test(e.message)
      );
    });
    assert.equal((await openDataset(root, { split: "trainval" })).length, 200);
    assert.equal((await openDataset(root, { split: "test" })).length, 198);
    assert.equal((await openDataset(root, { split: "trainval,test" })).length, 398);
    const binary = await openDataset(root, { mode: "binary" });
    const b = await binary.get(indexOf(binary, "Abyssinian_5"));
    const t = rgba.mask.data;
    // binary: pet and border -> 1, background -> 0
    assert.ok(b.mask.data.every((v, i) => v === (t[i] === 1 ? 0 : 1)));
  });

  it("oxford-pet: decoding straight to 128x128 matches decode-then-resize (masks exactly, images within levels)", async () => {
    const ds = await openDataset(sharedPath("oxford-iiit-pet"));
    // Abyssinian_34 is a GIF, _5 an RGBA PNG (both the two-step path), _1 a 600x400 JPEG, _10 a 375x500 one with an ICC profile,
    // _71 an 833x539 JPEG that libjpeg shrinks on load (the largest difference in the set: mean 1.04, max 56).
    for (const id of ["Abyssinian_34", "Abyssinian_5", "Abyssinian_1", "Abyssinian_10", "Abyssinian_71"]) {
      const i = indexOf(ds, id);
      const direct = await ds.get(i, { width: 128, height: 128 });
      const twoStep = await transformSample(await ds.get(i), { width: 128, height: 128, ignoreIndex: 255 });
      assert.deepEqual(direct.mask.data, twoStep.mask.data, id);
      let sum = 0;
      let max = 0;
      direct.image.data.forEach((v, k) => {
        const d = Math.abs(v - (twoStep.image.data[k] as number));
        sum += d;
        max = Math.max(max, d);
      });
      const mean = sum / direct.image.data.length;
      if (id === "Abyssinian_71") assert.ok(mean > 0.5 && mean < 1.5 && max <= 60, `${id}: mean ${mean}, max ${max}`);
      else assert.equal(max, 0, id);
    }
  });

  it("camvid: 367 train + 101 val, void (11) read as the ignore index", async () => {
    const root = sharedPath("camvid");
    const ds = await openDataset(root);
    assert.equal(ds.length, 468);
    assert.equal((await openDataset(root, { split: "train" })).length, 367);
    assert.equal((await openDataset(root, { split: "val" })).length, 101);
    assert.equal(ds.classNames.length, 11);
    const s = await ds.get(0);
    assert.equal(ds.id(0), "train/0001TP_006690");
    assert.deepEqual([s.mask.width, s.mask.height], [480, 360]);
    const v = values(s.mask.data);
    assert.ok(v.includes(255) && v.every((x) => x <= 10 || x === 255), `values ${v}`);
  });

  it("drive: 20 pairs, outside the field of view ignored", async () => {
    const ds = await openDataset(sharedPath("drive"));
    assert.equal(ds.length, 20);
    assert.deepEqual(
      ds.files(0).map((f) => f.split("/").pop()),
      ["21_training.tif", "21_manual1.gif", "21_training_mask.gif"],
    );
    const s = await ds.get(0);
    assert.deepEqual([s.image.width, s.image.height], [565, 584]);
    assert.equal(s.mask.data[0], 255); // top-left corner is outside the circular field of view
    const h = maskHistogram(s.mask);
    assert.ok((h[1] as number) > 10000 && (h[0] as number) > 100000, `vessel ${h[1]}, background ${h[0]}`);
  });

  it("names the held-out split segkit eval scores by default: Pet test, CamVid val (no test here), none for DRIVE's training half", () => {
    assert.deepEqual(defaultEvalSplit(sharedPath("oxford-iiit-pet")), {
      split: "test",
      why: "the official test split",
    });
    assert.equal(defaultEvalSplit(sharedPath("camvid"))?.split, "val");
    assert.equal(defaultEvalSplit(sharedPath("drive")), undefined);
    assert.equal(defaultEvalSplit(sharedPath("isbi2012-membrane")), undefined);
  });

  it("leaves no file handle open after reading a whole dataset", async () => {
    const fileHandles = () => process.getActiveResourcesInfo().filter((r) => r === "FileHandle").length;
    const before = fileHandles();
    const r = await inspectDataset(await openDataset(sharedPath("drive")));
    assert.equal(r.pairs, 20);
    assert.equal(fileHandles(), before);
  });

  it("isbi2012: 30 pairs, membrane (stored 0) is class 1", async () => {
    const ds = await openDataset(sharedPath("isbi2012-membrane"));
    assert.equal(ds.length, 30);
    assert.deepEqual(ds.classNames, ["cell", "membrane"]);
    const s = await ds.get(0);
    const h = maskHistogram(s.mask);
    // Membrane is the minority class (about a fifth of the pixels).
    assert.ok((h[1] as number) < (h[0] as number) && (h[1] as number) > 0.1 * 512 * 512);
  });

  it("inspect reports the counts the datasets' documentation gives", { skip: slowSkip() }, async () => {
    const expected = { "oxford-iiit-pet": 400, camvid: 468, drive: 20, "isbi2012-membrane": 30 };
    for (const [name, pairs] of Object.entries(expected)) {
      const r = await inspectDataset(await openDataset(sharedPath(name)));
      assert.equal(r.pairs, pairs, name);
      const sum = r.classes.reduce((a, c) => a + c.pixelFraction, r.ignoredFraction);
      assert.ok(Math.abs(sum - 1) < 1e-9, `${name}: fractions sum to ${sum}`);
      if (name === "camvid") assert.ok(r.ignoredFraction > 0.01 && r.ignoredFraction < 0.1);
      if (name === "oxford-iiit-pet") assert.equal(r.skipped.length, 3);
    }
  });
});
