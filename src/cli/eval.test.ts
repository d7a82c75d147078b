import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runCli } from "../test-utils/cli.js";

const FIXTURES = join(import.meta.dirname, "..", "eval", "fixtures", "coco-eval");
const GT = join(FIXTURES, "gt.json");
const PRED = join(FIXTURES, "dt-full.json");
const REF = JSON.parse(readFileSync(join(FIXTURES, "reference.json"), "utf8")) as Record<
  string,
  Record<string, { stats: number[]; perClass: number[] }>
>;

describe("segkit eval --task instance", () => {
  const dir = mkdtempSync(join(tmpdir(), "segkit-coco-eval-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("prints summarize's twelve lines and per-class AP per IoU type; the JSON report equals pycocotools", async () => {
    const json = join(dir, "report.json");
    const r = await runCli(["eval", "--task", "instance", "--pred", PRED, "--gt", GT, "--json", json]);
    assert.equal(r.code, 0, r.err);
    const ref = REF.full as Record<"segm" | "bbox", { stats: number[]; perClass: number[] }>;
    for (const t of ["segm", "bbox"] as const) {
      const ap = (ref[t].stats[0] as number).toFixed(3);
      assert.ok(
        r.outLines.includes(` Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = ${ap}`),
        r.out,
      );
    }
    assert.match(r.out, /^IoU type segm /m);
    assert.match(r.out, /^ {5}7 {2}unused {2}-1 \(no ground truth\)$/m);
    assert.equal(r.outLines.filter((l) => l.startsWith(" Average")).length, 24);
    const report = JSON.parse(readFileSync(json, "utf8"));
    assert.deepEqual(Object.keys(report), ["segm", "bbox"]);
    for (const t of ["segm", "bbox"] as const) {
      const names = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"];
      names.forEach((n, i) => {
        assert.ok(Math.abs(report[t][n] - (ref[t].stats[i] as number)) < 1e-6, `${t} ${n}`);
      });
      assert.deepEqual(Object.keys(report[t].perClass), ["cat", "dog", "ball", "kite", "unused"]);
      assert.ok(Math.abs(report[t].perClass.dog - (ref[t].perClass[1] as number)) < 1e-6);
      assert.equal(report[t].precision.length, 10); // [T][R][K] at area all, maxDets 100
      assert.equal(report[t].precision[0].length, 101);
      assert.equal(report[t].recall[0][0].length, 4); // [T][K][A][M]
    }
  });

  it("--iou-type bbox scores boxes only", async () => {
    const json = join(dir, "bbox.json");
    const r = await runCli([
      "eval",
      "--task",
      "instance",
      "--iou-type",
      "bbox",
      "--pred",
      PRED,
      "--gt",
      GT,
      "--json",
      json,
    ]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(Object.keys(JSON.parse(readFileSync(json, "utf8"))), ["bbox"]);
    assert.doesNotMatch(r.out, /IoU type segm/);
  });

  it("bad input is one line naming the file", async () => {
    const pred = join(dir, "bad.json");
    writeFileSync(pred, JSON.stringify([{ image_id: 42, category_id: 1, bbox: [0, 0, 2, 2], score: 0.5 }]));
    const r = await runCli(["eval", "--task", "instance", "--pred", pred, "--gt", GT, "--json", join(dir, "x.json")]);
    assert.equal(r.code, 1);
    assert.deepEqual(r.errLines, [`segkit: ${pred}: detection 0: image_id 42 is not an image of the ground truth`]);
    const noGt = await runCli(["eval", "--task", "instance", "--pred", pred, "--json", join(dir, "x.json")]);
    assert.equal(noGt.code, 1);
    assert.match(noGt.err, /--task instance needs --gt/);
    const badType = await runCli(["eval", "--task", "instance", "--iou-type", "mask", "--pred", pred, "--gt", GT]);
    assert.notEqual(badType.code, 0);
    assert.match(badType.err, /expected segm, bbox or both/);
  });

  it("a flag of another task is an error naming it, not silently ignored", async () => {
    const cases: [string[], string][] = [
      [["--task", "instance", "--heatmap", "h.png"], "--heatmap applies to --task semantic, not instance"],
      [["--task", "instance", "--gt-dir", "g"], "--gt-dir applies to --task panoptic, not instance"],
      [["--task", "panoptic", "--iou-type", "bbox"], "--iou-type applies to --task instance, not panoptic"],
      [["--iou-type", "segm"], "--iou-type applies to --task instance, not semantic"],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(["eval", ...args, "--pred", PRED, "--gt", GT, "--json", join(dir, "x.json")]);
      assert.equal(r.code, 1, args.join(" "));
      assert.deepEqual(r.errLines, [`segkit: ${message}`]);
    }
  });
});
