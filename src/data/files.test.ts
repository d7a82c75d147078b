import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import sharp from "sharp";
import { SegkitError } from "../core/errors.js";
import { FileDataset, pairFiles, stem } from "./files.js";
import { transformSample } from "./transforms.js";

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
    // Decoding straight to a size still checks the files' own sizes.
    await assert.rejects(ds.get(2, { width: 4, height: 4 }), (e: unknown) => {
      assert.ok(e instanceof SegkitError);
      assert.equal(e.file, join(root, "masks", "f.png"));
      assert.match(e.message, /size 2x2 differs from its image .*f\.png \(3x2\)/);
      return true;
    });
  });

  it("decodes straight to a size as transformSample would resize: image bilinear, mask nearest", async () => {
    const dir = join(root, "sized");
    for (const d of ["images", "masks"]) await mkdir(join(dir, d), { recursive: true });
    const px = Buffer.from(Array.from({ length: 30 * 20 * 3 }, (_, i) => (i * 37) % 256));
    await writeFile(
      join(dir, "images", "s.png"),
      await sharp(px, { raw: { width: 30, height: 20, channels: 3 } })
        .png()
        .toBuffer(),
    );
    const classes = Array.from({ length: 30 * 20 }, (_, i) => ((i % 30) + Math.floor(i / 30)) % 2);
    await writeFile(join(dir, "masks", "s.png"), await gray(30, 20, classes));
    const { pairs } = await pairFiles(join(dir, "images"), join(dir, "masks"));
    const ds = new FileDataset(pairs, info);
    const direct = await ds.get(0, { width: 12, height: 8 });
    const full = await ds.get(0);
    const resized = await transformSample(full, { width: 12, height: 8, ignoreIndex: 255 });
    assert.deepEqual([direct.image.width, direct.image.height, direct.mask.width, direct.mask.height], [12, 8, 12, 8]);
    assert.deepEqual(direct.image.data, resized.image.data);
    assert.deepEqual(direct.mask.data, resized.mask.data);
    // Nearest from pixel centres: output (x, y) samples input (floor((x + 0.5) * 2.5), floor((y + 0.5) * 2.5)).
    assert.equal(direct.mask.data[1 * 12 + 3], classes[3 * 30 + 8]);
  });
});
