import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { SegkitError } from "../../core/errors.js";
import { createImage, createMask } from "../../core/image.js";
import { CocoInstancesSchema } from "../../export/coco.js";
import { encodePng } from "../../io/write.js";
import { rleEncode, rleFromString } from "../../masks/rle.js";
import { createSamPredictor, type SamPredictor } from "../predictor.js";
import { AmgCocoInstancesSchema, amgCoco, amgOverlay, amgRecordsJson, generateMaskFiles } from "./files.js";
import { type AmgRecord, generateMasks } from "./generator.js";

/** A record of the rectangle [x0, x1) x [y0, y1) in a w x h image. */
function rect(w: number, h: number, [x0, y0, x1, y1]: number[], iou: number): AmgRecord {
  const m = createMask(w, h);
  for (let y = y0 as number; y < (y1 as number); y++)
    for (let x = x0 as number; x < (x1 as number); x++) m.data[y * w + x] = 1;
  const rle = rleEncode(m);
  const area = ((x1 as number) - (x0 as number)) * ((y1 as number) - (y0 as number));
  return {
    segmentation: rle,
    area,
    bbox: [x0 as number, y0 as number, (x1 as number) - (x0 as number) - 1, (y1 as number) - (y0 as number) - 1],
    predicted_iou: iou,
    point_coords: [[x0 as number, y0 as number]],
    stability_score: 0.9,
    crop_box: [0, 0, w, h],
  };
}

describe("amg files: overlay, records, COCO", () => {
  // a 10 x 8 gray image; a small square inside a big rectangle, the small one listed first
  const image = createImage(10, 8, new Uint8Array(10 * 8 * 3).fill(100));
  const small = rect(10, 8, [2, 2, 4, 4], 0.5);
  const big = rect(10, 8, [0, 0, 8, 6], 0.7);

  test("the overlay paints the largest mask first, so the small one shows in its own colour", () => {
    const out = amgOverlay(image, [small, big]);
    const px = (x: number, y: number) => Array.from(out.data.subarray((y * 10 + x) * 3, (y * 10 + x) * 3 + 3));
    assert.deepEqual([out.width, out.height], [10, 8]);
    assert.deepEqual(px(9, 7), [100, 100, 100]); // outside both
    assert.notDeepEqual(px(6, 4), [100, 100, 100]); // the big one only
    assert.notDeepEqual(px(3, 3), px(6, 4)); // the small one on top, another colour
    assert.deepEqual(px(2, 2), px(3, 3));
    // reversed input order: the same picture
    assert.deepEqual(amgOverlay(image, [big, small]).data, out.data);
    assert.throws(() => amgOverlay(image, amgRecordsJson([small])), /uncompressed RLEs/);
  });

  test("records as amg.py --convert-to-rle writes them; COCO with scores that the strict schemas accept", () => {
    const json = amgRecordsJson([small])[0] as AmgRecord;
    assert.deepEqual(rleFromString(json.segmentation as never), small.segmentation);
    assert.deepEqual({ ...json, segmentation: 0 }, { ...small, segmentation: 0 });
    assert.deepEqual(Object.keys(json), [
      "segmentation",
      "area",
      "bbox",
      "predicted_iou",
      "point_coords",
      "stability_score",
      "crop_box",
    ]);

    const coco = amgCoco([
      { fileName: "a.png", width: 10, height: 8, records: [small, big] },
      { fileName: "b.png", width: 10, height: 8, records: [] },
      { fileName: "c.png", width: 10, height: 8, records: [big] },
    ]);
    assert.equal(AmgCocoInstancesSchema.safeParse(coco).success, true);
    const { score: _s, stability_score: _t, ...first } = coco.annotations[0] ?? ({} as never);
    // pycocotools' bbox (pixel extent) and area, the record's predicted IoU as score
    assert.deepEqual(first, {
      id: 1,
      image_id: 1,
      category_id: 1,
      segmentation: { size: [8, 10], counts: (json.segmentation as { counts: string }).counts },
      area: 4,
      bbox: [2, 2, 2, 2],
      iscrowd: 0,
    });
    assert.deepEqual(
      coco.annotations.map((a) => [a.id, a.image_id, a.score, a.stability_score]),
      [
        [1, 1, 0.5, 0.9],
        [2, 1, 0.7, 0.9],
        [3, 3, 0.7, 0.9],
      ],
    );
    // without the score fields it is plain segkit COCO; the plain schema refuses the extra keys
    const plain = { ...coco, annotations: coco.annotations.map(({ score: _a, stability_score: _b, ...a }) => a) };
    assert.equal(CocoInstancesSchema.safeParse(plain).success, true);
    assert.equal(CocoInstancesSchema.safeParse(coco).success, false);
    const wrong = { ...coco, annotations: [{ ...coco.annotations[0], score: 1.5 }] };
    assert.equal(AmgCocoInstancesSchema.safeParse(wrong).success, false);
  });
});

describe("generateMaskFiles on the split fixture", () => {
  const MODEL = join(import.meta.dirname, "..", "fixtures", "models", "split");
  const relaxed = { pointsPerSide: 2, predIouThresh: 0, stabilityScoreThresh: 0 };
  let predictor: SamPredictor;
  let root: string;
  before(async () => {
    predictor = await createSamPredictor(MODEL, { threads: 1 });
    root = await mkdtemp(join(tmpdir(), "segkit-amg-files-"));
    await mkdir(join(root, "in"));
    const data = new Uint8Array(160 * 120 * 3).map((_, i) => (i * 37) % 256);
    await writeFile(join(root, "in", "a.png"), await encodePng(createImage(160, 120, data)));
    await writeFile(join(root, "in", "b.png"), await encodePng(createImage(120, 160, data)));
  });
  after(async () => {
    await predictor.dispose();
    await rm(root, { recursive: true, force: true });
  });

  test("an abort keeps the finished images: their overlays and a COCO file listing only them", async () => {
    const ac = new AbortController();
    const files: string[] = [];
    const summary = await generateMaskFiles(predictor, join(root, "in"), join(root, "out"), {
      ...relaxed,
      pointsPerBatch: 1,
      signal: ac.signal,
      onProgress: (p) => {
        files.push(p.file);
        if (p.image === 1) ac.abort();
      },
    });
    assert.equal(summary.stopped, true);
    assert.equal(summary.images, 1);
    assert.equal(summary.masks, 12); // 4 points x 3 candidates, nothing filtered
    assert.deepEqual(summary.written, ["a.overlay.png", "annotations.json"]);
    assert.deepEqual([...new Set(files)], [join(root, "in", "a.png"), join(root, "in", "b.png")]);
    assert.equal(existsSync(join(root, "out", "b.overlay.png")), false);
    const coco = JSON.parse(readFileSync(join(root, "out", "annotations.json"), "utf8"));
    assert.deepEqual(coco.images, [{ id: 1, file_name: "a.png", width: 160, height: 120 }]);
    assert.equal(coco.annotations.length, 12);
  });

  test("an image the model cannot take is reported and skipped; the others reach the COCO file", async () => {
    await mkdir(join(root, "thin"));
    await writeFile(join(root, "thin", "a.png"), await encodePng(createImage(160, 120, new Uint8Array(160 * 120 * 3))));
    await writeFile(join(root, "thin", "line.png"), await encodePng(createImage(3000, 1, new Uint8Array(9000))));
    const summary = await generateMaskFiles(predictor, join(root, "thin"), join(root, "thin-out"), relaxed);
    assert.equal(summary.images, 1);
    assert.deepEqual(
      summary.skipped.map((s) => s.path),
      [join(root, "thin", "line.png")],
    );
    assert.match(summary.skipped[0]?.reason ?? "", /image 3000x1 is too elongated: its short side rounds to 0 pixels/);
    const coco = JSON.parse(readFileSync(join(root, "thin-out", "annotations.json"), "utf8"));
    assert.deepEqual(
      coco.images.map((i: { file_name: string }) => i.file_name),
      ["a.png"],
    );
    // a failing model is no bad image: the run ends with its error
    const file = predictor.model.files.decoder;
    const failing: SamPredictor = {
      ...predictor,
      decode: () => Promise.reject(new SegkitError("onnxruntime could not run this graph (boom)", { file })),
    };
    await assert.rejects(
      generateMaskFiles(failing, join(root, "thin"), join(root, "thin-failing"), relaxed),
      (err: unknown) => err instanceof SegkitError && err.file === file && /boom/.test(err.message),
    );
  });

  test("bad options fail before any work; the input directory is no output directory", async () => {
    await assert.rejects(
      generateMaskFiles(predictor, join(root, "in"), join(root, "x"), { pointsPerBatch: 0 }),
      /pointsPerBatch must be an integer >= 1/,
    );
    await assert.rejects(
      generateMaskFiles(predictor, join(root, "in"), join(root, "in"), relaxed),
      /the output directory is the input directory/,
    );
    assert.equal(existsSync(join(root, "x")), false);
  });

  test("one image: NAME.json of records that are the generator's", async () => {
    const summary = await generateMaskFiles(predictor, join(root, "in", "b.png"), join(root, "one"), relaxed);
    assert.deepEqual(summary.written, ["b.json", "b.overlay.png"]);
    const records = JSON.parse(readFileSync(join(root, "one", "b.json"), "utf8"));
    assert.equal(records.length, 12);
    const direct = await generateMasks(predictor, join(root, "in", "b.png"), { ...relaxed, outputMode: "coco_rle" });
    assert.deepEqual(records, JSON.parse(JSON.stringify(direct)));
    for (const r of records) assert.equal(rleFromString(r.segmentation).size.join(), "160,120");
  });
});
