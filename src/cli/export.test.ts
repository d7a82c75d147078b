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
    const png = await runCli([
      "export",
      "--from",
      root,
      "--classes",
      "bg,fg",
      "--to",
      "png",
      "--out",
      out,
      "--polygons",
    ]);
    assert.equal(png.code, 1);
    assert.match(png.err, /^segkit: polygons and instances do not apply to png export/);
  });
});
