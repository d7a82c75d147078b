import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import sharp from "sharp";
import { SegkitError } from "../core/errors.js";
import { FileDataset, pairFiles, stem } from "./files.js";

let root: string;

const gray = (w: number, h: number, values: number[]) =>
  sharp(Buffer.from(values), { raw: { width: w, height: h, channels: 1 } })
    .png()
    .toBuffer();
const rgb = (w: number, h: number) =>
  sharp({ create: { width: w, height: h, channels: 3, background: { r: 10, g: 20, b: 30 } } })
    .png()
    .toBuffer();

before(async () => {
  root = await mkdtemp(join(tmpdir(), "segkit-files-"));
  for (const d of ["images", "masks", "valid"]) await mkdir(join(root, d));
  await writeFile(join(root, "images", "a.png"), await rgb(2, 2));
  await writeFile(join(root, "masks", "a.png"), await gray(2, 2, [0, 1, 1, 0]));
  await writeFile(join(root, "valid", "a.png"), await gray(2, 2, [255, 255, 0, 255]));
  // b: image only; c: mask only; d: not an image; e: two images with one base name; f: sizes differ
  await writeFile(join(root, "images", "b.jpg"), await rgb(2, 2));
  await writeFile(join(root, "masks", "c.png"), await gray(2, 2, [0, 0, 0, 0]));
  await writeFile(join(root, "images", "d.mat"), "MATLAB 5.0 MAT-file");
  await writeFile(join(root, "images", "e.jpg"), await rgb(2, 2));
  await writeFile(join(root, "images", "e.png"), await rgb(2, 2));
  await writeFile(join(root, "masks", "e.png"), await gray(2, 2, [1, 1, 1, 1]));
  await writeFile(join(root, "images", "f.png"), await rgb(3, 2));
  await writeFile(join(root, "masks", "f.png"), await gray(2, 2, [1, 1, 1, 1]));
  await writeFile(join(root, "images", ".DS_Store"), "x");
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("pairFiles", () => {
  it("pairs by base name and reports every file left out, with its reason", async () => {
    const { pairs, skipped } = await pairFiles(join(root, "images"), join(root, "masks"));
    assert.deepEqual(
      pairs.map((p) => p.id),
      ["a", "e", "f"],
    );
    assert.equal(pairs[1]?.image, join(root, "images", "e.jpg"));
    const reasons = Object.fromEntries(skipped.map((s) => [s.path.slice(root.length + 1), s.reason]));
    assert.deepEqual(reasons, {
      "images/b.jpg": `no mask for it in ${join(root, "masks")}`,
      "images/d.mat": "not an image file (extension .mat)",
      "images/e.png": `same base name as ${join(root, "images", "e.jpg")}`,
      "masks/c.png": `no image for this mask in ${join(root, "images")}`,
    });
  });

  it("names a missing directory", async () => {
    await assert.rejects(pairFiles(join(root, "nope"), join(root, "masks")), (e: unknown) => {
      return e instanceof SegkitError && e.file === join(root, "nope") && /directory not found/.test(e.message);
    });
  });

  it("strips only the last extension", () => {
    assert.equal(stem("a.b.png"), "a.b");
    assert.equal(stem("noext"), "noext");
  });
});

describe("FileDataset", () => {
  const info = { format: "folder", classNames: ["x", "y"], ignoreIndex: 255, encoding: { numClasses: 2 } };

  it("loads a pair lazily and applies the valid region as the ignore index", async () => {
    const { pairs } = await pairFiles(join(root, "images"), join(root, "masks"), { validDir: join(root, "valid") });
    assert.deepEqual(
      pairs.map((p) => p.id),
      ["a"],
    );
    const ds = new FileDataset(pairs, info);
    assert.deepEqual(ds.files(0), [
      join(root, "images", "a.png"),
      join(root, "masks", "a.png"),
      join(root, "valid", "a.png"),
    ]);
    const s = await ds.get(0);
    assert.deepEqual([...s.mask.data], [0, 1, 255, 0]);
    assert.deepEqual([...s.image.data.subarray(0, 3)], [10, 20, 30]);
  });

  it("rejects a mask whose size differs from its image, naming both", async () => {
    const { pairs } = await pairFiles(join(root, "images"), join(root, "masks"));
    const ds = new FileDataset(pairs, info);
    await assert.rejects(ds.get(2), (e: unknown) => {
      assert.ok(e instanceof SegkitError);
      assert.equal(e.file, join(root, "masks", "f.png"));
      assert.match(e.message, /size 2x2 differs from its image .*f\.png \(3x2\)/);
      return true;
    });
    await assert.rejects(ds.get(3), RangeError);
  });
});
