import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isWithin, listFiles, renameDurably, resolveInside, writeFileAtomic } from "./fs.js";

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "segkit-fs-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("listFiles", () => {
  it("follows links to files (the Hugging Face cache layout), keeps dangling ones, skips directories and dot-files", async () => {
    // blobs/<hash> are the files; snapshots/rev/NAME links to them, relative as huggingface_hub writes them
    const blobs = join(root, "hub", "blobs");
    const snap = join(root, "hub", "snapshots", "rev");
    await mkdir(blobs, { recursive: true });
    await mkdir(join(snap, "onnx"), { recursive: true });
    await writeFile(join(blobs, "aa11"), "encoder");
    await writeFile(join(blobs, "bb22"), "decoder");
    await symlink("../../blobs/aa11", join(snap, "encoder.onnx"));
    await symlink(join(blobs, "bb22"), join(snap, "decoder.onnx")); // absolute, as people link large files
    await symlink("../../blobs/missing", join(snap, "gone.onnx"));
    await symlink("onnx", join(snap, "linked-dir"));
    await writeFile(join(snap, "README.md"), "plain file");
    await writeFile(join(snap, ".gitattributes"), "hidden");
    assert.deepEqual(await listFiles(snap), ["README.md", "decoder.onnx", "encoder.onnx", "gone.onnx"]);
    assert.equal(await readFile(join(snap, "encoder.onnx"), "utf8"), "encoder");
    // what Dirent.isFile() alone saw: the links were not files
    const plain = (await readdir(snap, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
    assert.deepEqual(plain.sort(), [".gitattributes", "README.md"]);
  });

  it("reports a missing directory with Node's code", async () => {
    await assert.rejects(listFiles(join(root, "nope")), { code: "ENOENT" });
  });
});

describe("writeFileAtomic and renameDurably", () => {
  it("write the whole content and leave no temporary file", async () => {
    const dir = join(root, "atomic");
    const file = join(dir, "a.json");
    await writeFileAtomic(file, "first");
    await writeFileAtomic(file, Uint8Array.from([123, 125]));
    assert.equal(await readFile(file, "utf8"), "{}");
    await writeFile(join(dir, "b.tmp"), "moved");
    await renameDurably(join(dir, "b.tmp"), join(dir, "b.json"));
    assert.deepEqual((await readdir(dir)).sort(), ["a.json", "b.json"]);
  });
});

describe("isWithin and resolveInside", () => {
  it("accept names below the folder (a name starting with '..' too), refuse escapes, absolute names and the folder itself", () => {
    const dir = join(tmpdir(), "top");
    assert.equal(resolveInside(dir, "a/b.png"), join(dir, "a", "b.png"));
    assert.equal(resolveInside(dir, "..b.png"), join(dir, "..b.png"));
    assert.equal(resolveInside(dir, "a/../b.png"), join(dir, "b.png"));
    for (const bad of ["../b.png", "a/../../b.png", "/etc/passwd", "", ".", "a/.."]) {
      assert.equal(resolveInside(dir, bad), undefined, JSON.stringify(bad));
    }
    assert.equal(isWithin(dir, dir), true);
    assert.equal(isWithin(dir, join(dir, "x", "y")), true);
    assert.equal(isWithin(dir, join(dir, "..", "top2")), false);
    assert.equal(isWithin(dir, tmpdir()), false);
  });
});
