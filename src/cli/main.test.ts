import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import sharp from "sharp";
import { runCli } from "../test-utils/cli.js";
import { sharedPath, sharedSkip } from "../test-utils/shared.js";
import { VERSION } from "../version.js";

const run = (...argv: string[]) => runCli(argv);

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "segkit-cli-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("segkit CLI", () => {
  it("lists only implemented commands, and the dataset formats", async () => {
    const r = await run("--help");
    assert.equal(r.code, 0);
    assert.match(r.out, /data\s+inspect and preview datasets/);
    const commands = /Commands:\n([\s\S]*?)\n\n/.exec(r.out)?.[1] ?? "";
    // a command's line starts with two spaces; a wrapped description goes on further in
    assert.deepEqual(
      commands
        .split("\n")
        .filter((l) => /^ {2}\S/.test(l))
        .map((l) => l.trim().split(/\s+/)[0]),
      ["data", "eval", "train", "predict", "demo", "sam", "instances", "panoptic", "export", "studio", "help"],
    );
    assert.match(r.out, /oxford-pet\s+Oxford-IIIT Pet/);
    assert.equal((await run("--version")).out, VERSION);
  });

  it("keeps VERSION equal to package.json", () => {
    assert.equal(JSON.parse(readFileSync("package.json", "utf8")).version, VERSION);
  });

  it("says what is wrong in one line, exit code 1", async () => {
    const missing = await run("data", "inspect", join(dir, "nope"));
    assert.equal(missing.code, 1);
    assert.equal(missing.err, `segkit: ${join(dir, "nope")}: dataset directory not found`);
    const noPath = await run("data", "inspect");
    assert.equal(noPath.code, 1);
    assert.match(noPath.err, /^segkit: missing dataset path\. give a directory, or --format synthetic/);
    const badFormat = await run("data", "inspect", ".", "--format", "voc");
    assert.equal(badFormat.code, 1);
    assert.match(badFormat.err, /argument 'voc' is invalid\. Allowed choices are folder, oxford-pet/);
    const unknown = await run("fit");
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /unknown command 'fit'/);
  });

  it("passes dataset flags to the loader, and rejects flags the format does not use", async () => {
    const json = async (...a: string[]) =>
      JSON.parse((await run("data", "inspect", "--format", "synthetic", "--json", ...a)).out);
    const a = await json("--length", "5");
    const b = await json("--length", "5", "--seed", "9");
    assert.equal(a.pairs, 5);
    assert.notEqual(a.classes[0].pixelFraction, b.classes[0].pixelFraction);
    const bad = await run("data", "inspect", "--format", "synthetic", "--mode", "binary");
    assert.equal(bad.code, 1);
    assert.equal(
      bad.err,
      "segkit: option mode does not apply to format synthetic. synthetic takes: seed, length, size",
    );
  });

  it("refuses a dataset without a single pair, saying why", async () => {
    const empty = join(dir, "empty");
    await mkdir(join(empty, "images"), { recursive: true });
    await mkdir(join(empty, "masks"));
    await writeFile(join(empty, "images", "notes.txt"), "x");
    const r = await run("data", "preview", empty, "--classes", "a,b", "--out", join(dir, "never.png"));
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      /^segkit: .*empty: no image\/mask pairs found \(1 files skipped: .*notes\.txt: not an image file/,
    );
    assert.equal(existsSync(join(dir, "never.png")), false);
  });

  it("reports an unwritable output as one line", async () => {
    const r = await run("data", "preview", "--format", "synthetic", "--n", "1", "--size", "16", "--out", dir);
    assert.equal(r.code, 1);
    assert.equal(r.err, `segkit: ${dir}: cannot write (is a directory)`);
  });

  it("inspects the synthetic set as JSON", async () => {
    const r = await run("data", "inspect", "--format", "synthetic", "--json");
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out);
    assert.equal(report.pairs, 200);
    assert.deepEqual(
      report.classes.map((c: { name: string }) => c.name),
      ["pet", "background", "border"],
    );
    const pet = report.classes[0].pixelFraction;
    assert.ok(pet > 0.1 && pet < 0.4, `pet fraction ${pet}`);
    assert.deepEqual(report.skipped, []);
  });

  it("writes a preview grid PNG of n tiles, leaving no temp file", async () => {
    const own = await mkdtemp(join(dir, "preview-"));
    const out = join(own, "grid.png");
    const r = await run(
      "data",
      "preview",
      "--format",
      "synthetic",
      "--out",
      out,
      "--n",
      "6",
      "--size",
      "32",
      "--augment",
    );
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /wrote .*grid\.png: 6 synthetic samples/);
    const meta = await sharp(out).metadata();
    // 3 columns x 2 rows of 32 px tiles with 4 px gaps around and between.
    assert.deepEqual([meta.width, meta.height], [4 + 3 * 36, 4 + 2 * 36]);
    assert.deepEqual(await readdir(own), ["grid.png"]);
  });

  it("evaluates predictions, writing the JSON report and the heatmap", async () => {
    // Predictions for the first 3 synthetic samples: their own masks (perfect); the other 197 are missing.
    const { createSyntheticDataset, writeMaskPng } = await import("../index.js");
    const ds = createSyntheticDataset({ length: 3 });
    for (let i = 0; i < 3; i++) await writeMaskPng(join(dir, "pred", `${ds.id(i)}.png`), (await ds.get(i)).mask);
    const json = join(dir, "eval.json");
    const heatmap = join(dir, "cm.png");
    const r = await run(
      "eval",
      "--format",
      "synthetic",
      "--pred",
      join(dir, "pred"),
      "--json",
      json,
      "--heatmap",
      heatmap,
    );
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^class\s+IoU\s+Dice\s+prec\s+recall\s+BF1\s+share$/m);
    assert.match(r.out, /200 images scored, 197 counted as wrong:/);
    // ten of them listed, the rest counted (the JSON report has all)
    assert.equal(r.out.match(/\(counted as wrong\)$/gm)?.length, 10);
    assert.match(r.out, /^ {2}\.\.\. and 187 more \(all in the JSON report\)$/m);
    const report = JSON.parse(readFileSync(json, "utf8"));
    assert.deepEqual(Object.keys(report.perClass[0]).slice(0, 7), [
      "index",
      "name",
      "iou",
      "dice",
      "precision",
      "recall",
      "boundaryF1",
    ]);
    assert.equal(report.problems.length, 197);
    assert.equal(report.perClass[0].precision, 1); // nothing predicted wrongly: missing images add no false positives
    assert.ok(report.miou > 0 && report.miou < 0.1, `mIoU ${report.miou}`);
    assert.ok((await sharp(heatmap).metadata()).width > 200);
  });

  it("scores DRIVE inside the field of view only (vessel F1 and accuracy in the FOV)", async () => {
    // one 4 x 2 image in a DRIVE layout's test half (PNG bytes under DRIVE's names: decoding goes by content);
    // truth vessel at (1, 0) and (2, 0); field of view columns 1..2. Predicted: (1, 0) vessel (TP), (2, 0)
    // background (FN), (1, 1) background (TN), (2, 1) vessel (FP), and vessel everywhere outside the FOV.
    // In the FOV: F1 = 2 TP / (2 TP + FP + FN) = 0.5, accuracy 2 / 4. Counting the outside would give FP 5.
    const { createImage, createMask, encodePng, writeMaskPng } = await import("../index.js");
    const root = join(dir, "drive");
    const half = join(root, "test");
    for (const d of ["images", "1st_manual", "mask"]) await mkdir(join(half, d), { recursive: true });
    const gray = (values: number[]) => createImage(4, 2, Uint8Array.from(values.flatMap((v) => [v, v, v])));
    await writeFile(join(half, "images", "36_training.tif"), await encodePng(createImage(4, 2)));
    await writeFile(join(half, "1st_manual", "36_manual1.gif"), await encodePng(gray([0, 255, 255, 0, 0, 0, 0, 0])));
    await writeFile(
      join(half, "mask", "36_training_mask.gif"),
      await encodePng(gray([0, 255, 255, 0, 0, 255, 255, 0])),
    );
    const pred = createMask(4, 2, Uint8Array.from([1, 1, 0, 1, 1, 0, 1, 1]));
    await writeMaskPng(join(dir, "drive-pred", "36_training.png"), pred);
    const json = join(dir, "drive-eval.json");
    const r = await run(
      "eval",
      "--pred",
      join(dir, "drive-pred"),
      "--gt",
      root,
      "--format",
      "drive",
      "--split",
      "test",
      "--json",
      json,
      "--heatmap",
      join(dir, "drive-cm.png"),
    );
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(readFileSync(json, "utf8"));
    assert.equal(report.images, 1);
    assert.equal(report.perClass[1].name, "vessel");
    assert.equal(report.perClass[1].dice, 0.5);
    assert.equal(report.pixelAccuracy, 0.5);
    assert.deepEqual(report.confusion, [
      [1, 1],
      [1, 1],
    ]);
    assert.match(r.out, /^vessel\s+0\.3333\s+0\.5000\s/m);
  });

  it("scores CamVid's held-out split without --split: test, else val; void (11) not scored", async () => {
    // 2 x 1 images. train: one image without a prediction (would count as wrong if scored). val: truth [0, 11],
    // predicted [0, 3]: the void pixel is not scored, so mIoU 1 over the one class present.
    const { createImage, createMask, encodePng, writeMaskPng } = await import("../index.js");
    const root = join(dir, "camvid");
    const put = async (split: string, name: string, labels: number[]) => {
      for (const d of [split, `${split}annot`]) await mkdir(join(root, d), { recursive: true });
      await writeFile(join(root, split, name), await encodePng(createImage(2, 1)));
      await writeMaskPng(join(root, `${split}annot`, name), createMask(2, 1, Uint8Array.from(labels)));
    };
    await put("train", "0001TP_000.png", [1, 1]);
    await put("val", "0016E5_000.png", [0, 11]);
    await writeMaskPng(join(dir, "camvid-pred", "0016E5_000.png"), createMask(2, 1, Uint8Array.from([0, 3])));
    const score = async () => {
      const json = join(dir, "camvid-eval.json");
      const where = ["--pred", join(dir, "camvid-pred"), "--gt", root];
      const r = await run("eval", ...where, "--json", json);
      return { ...r, report: JSON.parse(readFileSync(json, "utf8")) };
    };
    const val = await score();
    assert.equal(val.code, 0, val.err);
    // without --heatmap, the heatmap goes beside the report
    assert.match(val.out, /wrote .*camvid-eval\.json and .*camvid-eval-confusion\.png$/m);
    assert.ok((await sharp(join(dir, "camvid-eval-confusion.png")).metadata()).width > 200);
    assert.match(val.out, /^scoring split val \(the dataset has no test\/; --split to choose\)$/m);
    assert.equal(val.report.images, 1);
    assert.deepEqual(val.report.problems, []);
    assert.equal(val.report.miou, 1);
    assert.equal(val.report.confusion[0][0], 1);
    // with a test split, test is scored: its image has no prediction, so it counts as wrong
    await put("test", "0001TP_100.png", [2, 2]);
    const test = await score();
    assert.equal(test.code, 0, test.err);
    assert.match(test.out, /^scoring split test \(the split papers report; --split to choose\)$/m);
    assert.equal(test.report.images, 1);
    assert.equal(test.report.problems.length, 1);
    assert.match(test.report.problems[0].reason, /no prediction for this sample/);
  });

  it("scores ISBI 2012's held-out test/ (image + label) without --split; membrane (stored 0) is class 1", async () => {
    // 2 x 1 slices. train/0: no prediction (would count as wrong if scored). test/5: label [0, 255] = [membrane,
    // cell] -> classes [1, 0]; predicted [1, 1]: membrane TP 1, FP 1 -> membrane IoU 1/2, accuracy 1/2.
    const { createImage, createMask, encodePng, writeMaskPng } = await import("../index.js");
    const root = join(dir, "isbi");
    const put = async (split: string, name: string, stored: number[]) => {
      for (const d of ["image", "label"]) await mkdir(join(root, split, d), { recursive: true });
      await writeFile(join(root, split, "image", name), await encodePng(createImage(2, 1)));
      const gray = Uint8Array.from(stored.flatMap((v) => [v, v, v]));
      await writeFile(join(root, split, "label", name), await encodePng(createImage(2, 1, gray)));
    };
    await put("train", "0.png", [0, 0]);
    await put("test", "5.png", [0, 255]);
    await writeMaskPng(join(dir, "isbi-pred", "5.png"), createMask(2, 1, Uint8Array.from([1, 1])));
    const json = join(dir, "isbi-eval.json");
    const r = await run(
      "eval",
      "--pred",
      join(dir, "isbi-pred"),
      "--gt",
      root,
      "--format",
      "isbi2012",
      "--json",
      json,
      "--heatmap",
      join(dir, "isbi-cm.png"),
    );
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^scoring split test \(the held-out part; --split to choose\)$/m);
    const report = JSON.parse(readFileSync(json, "utf8"));
    assert.equal(report.images, 1);
    assert.deepEqual(report.problems, []);
    assert.equal(report.perClass[1].name, "membrane");
    assert.equal(report.perClass[1].iou, 0.5);
    assert.equal(report.pixelAccuracy, 0.5);
  });

  it("passes the boundary tolerance flags through to the scores", async () => {
    // Predictions 3 px off to the right: outside the default 2 px tolerance, inside 10% of the diagonal.
    const { createSyntheticDataset, writeMaskPng } = await import("../index.js");
    const ds = createSyntheticDataset({ length: 3 });
    for (let i = 0; i < 3; i++) {
      const { mask } = await ds.get(i);
      const shifted = new Uint8Array(mask.data.length);
      for (let y = 0; y < mask.height; y++)
        for (let x = 0; x < mask.width; x++)
          shifted[y * mask.width + x] = mask.data[y * mask.width + Math.max(0, x - 3)] ?? 0;
      await writeMaskPng(join(dir, "pred", `${ds.id(i)}.png`), { ...mask, data: shifted });
    }
    const score = async (...flags: string[]) => {
      const json = join(dir, `eval${flags.join("")}.json`);
      const args = ["--format", "synthetic", "--pred", join(dir, "pred"), "--heatmap", join(dir, "cm.png")];
      const r = await run("eval", ...args, "--json", json, ...flags);
      assert.equal(r.code, 0, r.err);
      return JSON.parse(readFileSync(json, "utf8")).meanBoundaryF1 as number;
    };
    const strict = await score("--tolerance", "0");
    const standard = await score();
    const loose = await score("--tolerance-ratio", "0.1");
    assert.ok(strict < standard && standard < loose, `${strict} ${standard} ${loose}`);
  });

  it("reports the Oxford Pet quirks by name", { skip: sharedSkip() }, async () => {
    const r = await run("data", "inspect", sharedPath("oxford-iiit-pet"), "--json", "--split", "test");
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out);
    assert.equal(report.pairs, 198);
    assert.deepEqual(
      report.skipped.map((s: { path: string; reason: string }) => `${s.path.split("/").pop()}: ${s.reason}`),
      [
        "Abyssinian_100.mat: not an image file (extension .mat)",
        "Abyssinian_101.mat: not an image file (extension .mat)",
        "Abyssinian_102.mat: not an image file (extension .mat)",
        "Abyssinian_34.jpg: in no official split file (trainval.txt, test.txt)",
        "Abyssinian_82.jpg: in no official split file (trainval.txt, test.txt)",
      ],
    );
  });

  it("runs as the installed binary", {
    skip: existsSync("dist/cli/main.js") ? false : "dist/ not built (npm run build)",
  }, () => {
    const r = spawnSync(process.execPath, ["bin/segkit.js", "--version"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), VERSION);
  });
});
