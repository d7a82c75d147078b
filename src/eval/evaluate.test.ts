import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import sharp from "sharp";
import { createMask } from "../core/image.js";
import { openDataset } from "../data/formats.js";
import { writeMaskPng } from "../io/write.js";
import { evaluatePredictions } from "./evaluate.js";

let root: string;
const gray = (w: number, h: number, values: number[]) =>
  sharp(Buffer.from(values), { raw: { width: w, height: h, channels: 1 } })
    .png()
    .toBuffer();

before(async () => {
  root = await mkdtemp(join(tmpdir(), "segkit-eval-"));
  for (const d of ["gt/images", "gt/masks", "pred"]) await mkdir(join(root, d), { recursive: true });
  // Four 2x2 samples (classes 0, 1; 255 ignored in the truth).
  const truths: Record<string, number[]> = {
    a: [0, 1, 1, 255],
    b: [1, 1, 0, 0],
    c: [0, 0, 1, 1],
    d: [1, 0, 0, 0],
  };
  for (const [id, t] of Object.entries(truths)) {
    await writeFile(join(root, "gt/images", `${id}.png`), await gray(2, 2, [9, 9, 9, 9]));
    await writeFile(join(root, "gt/masks", `${id}.png`), await gray(2, 2, t));
  }
  // a: perfect (its ignored pixel predicted 0, not counted); b: one pixel wrong; c: missing; d: holds label 7.
  await writeMaskPng(join(root, "pred", "a.png"), createMask(2, 2, Uint8Array.from([0, 1, 1, 0])));
  await writeMaskPng(join(root, "pred", "b.png"), createMask(2, 2, Uint8Array.from([1, 0, 0, 0])));
  await writeMaskPng(join(root, "pred", "d.png"), createMask(2, 2, Uint8Array.from([1, 7, 0, 0])));
  await writeMaskPng(join(root, "pred", "zzz.png"), createMask(2, 2));
  // segkit predict's side files beside a and b (not predictions), and an overlay beside no prediction (unmatched)
  for (const name of ["a.overlay", "b.prob.fg", "b.prob.my.class", "c.overlay"]) {
    await writeFile(join(root, "pred", `${name}.png`), await gray(2, 2, [0, 0, 0, 0]));
  }
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("evaluatePredictions", () => {
  it("scores predictions by base name; missing and bad ones count as wrong, by name", async () => {
    const ds = await openDataset(join(root, "gt"), { classes: ["bg", "fg"] });
    const r = await evaluatePredictions(ds, join(root, "pred"));
    assert.equal(r.images, 4);
    // Scored: a (3 px, all right), b (4 px, one 1 predicted 0). Missed: c (2 of class 0, 2 of class 1),
    // d (3 of class 0, 1 of class 1) because of the out-of-range label.
    assert.deepEqual(r.confusion, [
      [3, 0],
      [1, 3],
    ]);
    assert.deepEqual(r.missedPixels, [5, 3]);
    // class 0: tp 3, fp 1, fn 5 -> IoU 3/9; class 1: tp 3, fp 0, fn 1 + 3 -> IoU 3/7
    assert.deepEqual(
      r.perClass.map((c) => c.iou),
      [3 / 9, 3 / 7],
    );
    assert.equal(r.pixelAccuracy, 6 / 15);
    assert.equal(r.miou, (3 / 9 + 3 / 7) / 2);
    assert.deepEqual(
      r.perClass.map((c) => c.pixelShare),
      [8 / 15, 7 / 15],
    );
    assert.deepEqual(
      r.problems.map((p) => [p.path.slice(root.length + 1), p.reason.split(" (")[0], p.countedAsWrong]),
      [
        ["pred/c.png", "no prediction for this sample", true],
        ["pred/d.png", "mask value 7 not in the value map class indices 0..1", true],
      ],
    );
    assert.deepEqual(r.extra, [join(root, "pred", "c.overlay.png"), join(root, "pred", "zzz.png")]);
    // Per image: a 1; b (class 0: 2/3, class 1: 1/2) 7/12; c and d, missed, 0.
    assert.ok(Math.abs(r.perImage.macro.iou - (1 + 7 / 12) / 4) < 1e-12, `${r.perImage.macro.iou}`);
    assert.equal(r.perImage.images, 4);
    // Boundary F1 (2 px tolerance covers a 2x2 image): a and b score 1 per class, the missed c and d score 0.
    assert.deepEqual(
      r.perClass.map((c) => c.boundaryF1),
      [0.5, 0.5],
    );
    assert.equal(r.imageMeanBoundaryF1, 0.5);
  });

  it("refuses JPEG predictions, saying why", async () => {
    const ds = await openDataset(join(root, "gt"), { classes: ["bg", "fg"] });
    const dir = join(root, "pred-jpeg");
    await mkdir(dir);
    await writeFile(
      join(dir, "a.jpg"),
      await sharp({ create: { width: 2, height: 2, channels: 3, background: "#000" } })
        .jpeg()
        .toBuffer(),
    );
    const r = await evaluatePredictions(ds, dir);
    const a = r.problems.find((p) => p.path.endsWith("a.jpg"));
    assert.equal(a?.reason, "JPEG is lossy and changes class values: save predictions as PNG");
    assert.equal(a?.countedAsWrong, true);
    assert.equal(r.problems.length, 4);
  });

  it("names a missing prediction directory", async () => {
    const ds = await openDataset(join(root, "gt"), { classes: ["bg", "fg"] });
    await assert.rejects(evaluatePredictions(ds, join(root, "nope")), /directory not found/);
  });
});
