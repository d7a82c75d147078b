import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createMask } from "../core/image.js";
import { CocoInstancesSchema } from "../export/coco.js";
import { writeImagePng, writeMaskPng } from "../io/write.js";
import { runCli } from "../test-utils/cli.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "segkit-cli-export-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("segkit export", () => {
  it("writes COCO that --format coco reads back, with one summary line", async () => {
    const out = join(dir, "coco");
    const r = await runCli(["export", "--format", "synthetic", "--length", "3", "--to", "coco", "--out", out]);
    assert.equal(r.code, 0, r.err);
    const json = JSON.parse(readFileSync(join(out, "annotations.json"), "utf8"));
    assert.ok(CocoInstancesSchema.safeParse(json).success);
    assert.equal(json.images.length, 3);
    assert.equal(
      r.out,
      `exported 3 synthetic samples to ${out} as coco: ${json.annotations.length} annotations, 0 skipped; index ${join(out, "annotations.json")}`,
    );
    const inspect = await runCli(["data", "inspect", out, "--json"]);
    assert.equal(inspect.code, 0, inspect.err);
    const report = JSON.parse(inspect.out);
    assert.equal(report.format, "coco");
    assert.equal(report.pairs, 3);
  });

  it("reports and skips a bad sample, and rejects options that do not apply", async () => {
    const root = join(dir, "folder");
    await mkdir(join(root, "masks"), { recursive: true });
    await writeImagePng(join(root, "images", "a.png"), { width: 4, height: 3, data: new Uint8Array(36) });
    await writeMaskPng(
      join(root, "masks", "a.png"),
      createMask(4, 3, Uint8Array.from([0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0])),
    );
    await writeImagePng(join(root, "images", "b.png"), { width: 4, height: 3, data: new Uint8Array(36) });
    await writeFile(join(root, "masks", "b.png"), "not a png");
    const out = join(dir, "yolo");
    const args = ["export", "--from", root, "--classes", "bg,fg", "--to", "yolo", "--out", out];
    const r = await runCli(args);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, new RegExp(`^skipped ${join(root, "masks", "b.png")}: `));
    assert.match(r.out, /^exported 1 folder samples .* as yolo: 2 label lines, 1 skipped;/);
    // no background class: both classes are labelled (0 = bg, the rest of the image; 1 = fg, x 1..2, y 0..1)
    assert.equal(
      readFileSync(join(out, "labels", "a.txt"), "utf8").split("\n")[1],
      "1 0.25 0 0.75 0 0.75 0.666667 0.25 0.666667",
    );
    assert.ok(existsSync(join(out, "images", "a.png")) && !existsSync(join(out, "images", "b.png")));
    // --polygons / --instances only for coco
    const only = (to: string, flag: string) =>
      runCli(["export", "--from", root, "--classes", "bg,fg", "--to", to, "--out", out, flag]);
    const png = await only("png", "--polygons");
    assert.equal(png.code, 1);
    assert.match(png.err, /^segkit: polygons and instances apply to coco export, not png\. png masks/);
    const yolo = await only("yolo", "--instances");
    assert.equal(yolo.code, 1);
    assert.match(yolo.err, /^segkit: polygons and instances apply to coco export, not yolo\. YOLO labels are always/);
  });

  it("--instances --polygons from a folder: a class named background is no category; file_name under the root", async () => {
    const root = join(dir, "pets");
    // two separate 2 x 2 cats in a 6 x 4 mask
    const cats = createMask(6, 4);
    for (const i of [0, 1, 6, 7, 16, 17, 22, 23]) cats.data[i] = 1;
    await writeImagePng(join(root, "images", "a.png"), { width: 6, height: 4, data: new Uint8Array(72) });
    await writeMaskPng(join(root, "masks", "a.png"), cats);
    const out = join(dir, "pets-coco");
    const args = ["export", "--from", root, "--classes", "background,cat", "--to", "coco", "--out", out];
    const r = await runCli([...args, "--instances", "--polygons"]);
    assert.equal(r.code, 0, r.err);
    const json = JSON.parse(readFileSync(join(out, "annotations.json"), "utf8"));
    assert.ok(CocoInstancesSchema.safeParse(json).success);
    assert.deepEqual(json.categories, [{ id: 1, name: "cat" }]);
    assert.deepEqual(json.images, [{ id: 1, file_name: "images/a.png", width: 6, height: 4 }]);
    assert.ok(existsSync(join(out, "images", "a.png")));
    // one polygon annotation per cat, iscrowd 0, boxes as pycocotools gives them
    assert.deepEqual(
      json.annotations.map((a: { iscrowd: number; bbox: number[]; area: number }) => [a.iscrowd, a.bbox, a.area]),
      [
        [0, [0, 0, 2, 2], 4],
        [0, [4, 2, 2, 2], 4],
      ],
    );
    assert.ok(json.annotations.every((a: { segmentation: unknown }) => Array.isArray(a.segmentation)));
    // read back: class 0 background, class 1 cat, the same pixels
    const back = await runCli(["data", "inspect", out, "--json"]);
    assert.equal(back.code, 0, back.err);
    assert.deepEqual(
      JSON.parse(back.out).classes.map((c: { name: string; pixels: number }) => [c.name, c.pixels]),
      [
        ["background", 16],
        ["cat", 8],
      ],
    );
  });
});
