// `segkit instances` through main() on the YOLO-seg fixture (src/instances/fixtures/yolo-seg): a directory with the
// fixture's images and bad files, annotations.json against the Ultralytics-arithmetic reference, overlays, the coco
// reader taking the file as a dataset, exit codes.
import assert from "node:assert/strict";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { openDataset, readImageSize, rleToString } from "../index.js";
import { runCli } from "../test-utils/cli.js";

const run = (...argv: string[]) => runCli(argv);
const FIXTURES = fileURLToPath(new URL("../instances/fixtures/yolo-seg/", import.meta.url));

interface RefImage {
  file: string;
  width: number;
  height: number;
  scores: number[];
  classes: number[];
  masks: number[][];
}

let dir: string;
let model: string;
let images: string;
let reference: RefImage[];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "segkit-cli-instances-"));
  model = join(dir, "model");
  await mkdir(model);
  await copyFile(join(FIXTURES, "yolo-seg.onnx"), join(model, "yolo-seg.onnx"));
  reference = (JSON.parse(await readFile(join(FIXTURES, "reference.json"), "utf8")) as { images: RefImage[] }).images;
  images = join(dir, "images");
  await mkdir(images);
  for (const r of reference) await copyFile(join(FIXTURES, r.file), join(images, r.file));
  await writeFile(join(images, "broken.png"), "not a png");
  await writeFile(join(images, "notes.txt"), "hello");
});
after(() => rm(dir, { recursive: true, force: true }));

describe("segkit instances", () => {
  it("a directory: annotations.json equals the reference, overlays, bad files reported and skipped", async () => {
    const out = join(dir, "out");
    const r = await run("instances", "-m", model, "-i", images, "-o", out, "--overlay", "--threads", "1");
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /skipped .*broken\.png: /);
    assert.match(r.err, /skipped .*notes\.txt: not an image file/);
    const total = reference.reduce((s, x) => s + x.scores.length, 0);
    assert.match(r.out, new RegExp(`^${total} instances in 3 images, skipped 2 in [\\d.]+ s \\(yolo-seg\\); wrote `));
    const coco = JSON.parse(await readFile(join(out, "annotations.json"), "utf8"));
    assert.deepEqual(coco.categories, [
      { id: 1, name: "cat" },
      { id: 2, name: "dog's toy" },
      { id: 3, name: "traffic light" },
    ]);
    // images in file order (square, tall, wide), file names relative to the input directory
    const order = ["square.png", "tall.png", "wide.png"];
    assert.deepEqual(
      coco.images.map((i: { id: number; file_name: string }) => [i.id, i.file_name]),
      order.map((f, k) => [k + 1, f]),
    );
    assert.equal(coco.annotations.length, total);
    for (const [k, file] of order.entries()) {
      const ref = reference.find((x) => x.file === file) as RefImage;
      const anns = coco.annotations.filter((a: { image_id: number }) => a.image_id === k + 1);
      assert.deepEqual(
        anns.map((a: { category_id: number }) => a.category_id),
        ref.classes.map((c) => c + 1),
      );
      for (const [j, a] of anns.entries()) {
        assert.ok(Math.abs(a.score - (ref.scores[j] as number)) < 1e-5);
        const want = rleToString({ size: [ref.height, ref.width], counts: ref.masks[j] as number[] });
        assert.deepEqual(a.segmentation, want);
        assert.equal(a.bbox.length, 4);
        assert.equal(a.iscrowd, 0);
      }
    }
    assert.deepEqual((await readdir(out)).sort(), [
      "annotations.json",
      ...order.map((f) => f.replace(".png", ".overlay.png")),
    ]);
    assert.deepEqual(await readImageSize(join(out, "tall.overlay.png")), { width: 71, height: 150 });
    // the coco reader takes the file as a dataset, with the input folder as its images
    const ds = await openDataset(out, { format: "coco", images, strict: true });
    assert.equal(ds.length, 3);
  });

  it("segkit instances -> segkit eval --task instance: its detections scored against themselves give AP 1, against half of them less", async () => {
    const out = join(dir, "scored");
    // above 0.5: no empty masks (an empty mask matches nothing, itself included, as in pycocotools)
    assert.equal((await run("instances", "-m", model, "-i", images, "-o", out, "--score", "0.5")).code, 0);
    const pred = join(out, "annotations.json");
    const coco = JSON.parse(await readFile(pred, "utf8")) as { annotations: Record<string, unknown>[] };
    const truth = (keep: (k: number) => boolean) => ({
      ...coco,
      annotations: coco.annotations.filter((_, k) => keep(k)).map(({ score: _score, ...a }) => ({ ...a, iscrowd: 0 })),
    });
    const scores: Record<string, { AP: number; AR100: number }>[] = [];
    for (const [name, keep] of [
      ["all", () => true],
      ["half", (k: number) => k % 2 === 0],
    ] as const) {
      const gt = join(dir, `gt-${name}.json`);
      await writeFile(gt, JSON.stringify(truth(keep)));
      const report = join(dir, `eval-${name}.json`);
      const r = await run("eval", "--task", "instance", "--pred", pred, "--gt", gt, "--json", report);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /Average Precision {2}\(AP\) @\[ IoU=0\.50:0\.95 \| area= {3}all \| maxDets=100 \] = /);
      scores.push(JSON.parse(await readFile(report, "utf8")));
    }
    for (const t of ["segm", "bbox"]) {
      assert.ok(Math.abs((scores[0]?.[t]?.AP ?? 0) - 1) < 1e-12, `${t} AP ${scores[0]?.[t]?.AP}`);
      assert.ok(Math.abs((scores[0]?.[t]?.AR100 ?? 0) - 1) < 1e-12);
      assert.ok((scores[1]?.[t]?.AP ?? 1) < 0.9, `${t} AP against half ${scores[1]?.[t]?.AP}`);
    }
  });

  it("--score keeps the instances above it; a single file names itself", async () => {
    const out = join(dir, "one");
    const r = await run("instances", "-m", model, "-i", join(images, "square.png"), "-o", out, "--score", "0.5");
    assert.equal(r.code, 0, r.err);
    const coco = JSON.parse(await readFile(join(out, "annotations.json"), "utf8"));
    assert.deepEqual(coco.images, [{ id: 1, file_name: "square.png", width: 96, height: 96 }]);
    const ref = reference.find((x) => x.file === "square.png") as RefImage;
    const above = ref.scores.filter((s) => s > 0.5).length;
    assert.ok(above > 0 && above < ref.scores.length);
    assert.equal(coco.annotations.length, above);
  });

  it("errors: a model directory without a model, a bad --score, an unreadable single file", async () => {
    const empty = join(dir, "empty");
    await mkdir(empty);
    let r = await run("instances", "-m", empty, "-i", images, "-o", join(dir, "x"));
    assert.notEqual(r.code, 0);
    assert.match(r.err, /empty: no \.onnx model in the directory/);
    r = await run("instances", "-m", model, "-i", images, "-o", join(dir, "x"), "--score", "2");
    assert.notEqual(r.code, 0);
    assert.match(r.err, /--score must be a number from 0 to 1/);
    r = await run("instances", "-m", model, "-i", join(images, "broken.png"), "-o", join(dir, "x"));
    assert.notEqual(r.code, 0);
    assert.match(r.err, /broken\.png/);
  });
});
