import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import onnxProto from "onnx-proto";
import { SegkitError } from "../core/errors.js";
import { readImage } from "../io/image.js";
import { rleArea } from "../masks/rle.js";
import { type InstanceModel, loadInstanceModel } from "./model.js";
import { letterbox, onnxMetadata, parseYoloNames, yoloNms } from "./yolo-seg.js";

// Made by scripts/fixtures/make_yolo_seg.py: a random-weight YOLO-seg-shaped model (S = 96, 3 classes), three images
// and Ultralytics' post-processing of them, transcribed in torch (conf 0.25, iou 0.7, class-aware NMS).
const { onnx } = onnxProto;
const FIXTURES = fileURLToPath(new URL("./fixtures/yolo-seg/", import.meta.url));

interface RefImage {
  file: string;
  width: number;
  height: number;
  candidates: number;
  letterbox_sum: number;
  boxes: number[][];
  scores: number[];
  classes: number[];
  masks: number[][];
  areas: number[];
}
const reference = JSON.parse(await readFile(join(FIXTURES, "reference.json"), "utf8")) as { images: RefImage[] };

describe("YOLO-seg (Ultralytics export, Ultralytics post-processing)", () => {
  let model: InstanceModel;
  before(async () => {
    model = await loadInstanceModel(FIXTURES, { threads: 1 });
  });
  after(() => model.dispose());

  it("reads the export's metadata: kind, categories (id = class index + 1, names from the dict literal)", () => {
    assert.equal(model.kind, "yolo-seg");
    assert.deepEqual(model.categories, [
      { id: 1, name: "cat" },
      { id: 2, name: "dog's toy" },
      { id: 3, name: "traffic light" },
    ]);
  });

  for (const ref of reference.images) {
    it(`${ref.file} (${ref.width}x${ref.height}): detections, order, classes, scores, boxes and masks equal the reference`, async () => {
      const img = await readImage(join(FIXTURES, ref.file));
      const lb = letterbox(img, 96, 96);
      assert.equal(
        Math.round(lb.data.reduce((s, v) => s + v * 255, 0)),
        ref.letterbox_sum,
        "letterboxed pixels (sum of 0..255 values) differ",
      );
      const inst = await model.predict(img);
      assert.equal(inst.width, ref.width);
      assert.equal(inst.height, ref.height);
      assert.ok((ref.scores.length > 0 && ref.scores.length < ref.candidates) || ref.file === "tall.png");
      assert.deepEqual(
        inst.classIds,
        ref.classes.map((c) => c + 1),
      );
      assert.equal(inst.scores.length, ref.scores.length);
      for (const [k, s] of ref.scores.entries())
        assert.ok(Math.abs((inst.scores[k] as number) - s) < 1e-5, `score ${k}`);
      for (const [k, b] of ref.boxes.entries()) {
        for (let c = 0; c < 4; c++) {
          assert.ok(
            Math.abs((inst.boxes[k]?.[c] as number) - (b[c] as number)) < 1e-3,
            `box ${k}: ${inst.boxes[k]} vs ${b}`,
          );
        }
      }
      for (const [k, counts] of ref.masks.entries()) {
        const mask = inst.masks[k];
        assert.ok(mask);
        assert.equal(rleArea(mask), ref.areas[k], `mask ${k} area`);
        assert.deepEqual(mask.counts, counts, `mask ${k} differs from the reference`);
      }
    });
  }

  it("a higher score threshold keeps the reference's detections above it, in order", async () => {
    const ref = reference.images.find((r) => r.file === "square.png") as RefImage;
    const inst = await model.predict(await readImage(join(FIXTURES, ref.file)), { scoreThreshold: 0.5 });
    const kept = ref.scores.filter((s) => s > 0.5);
    assert.ok(kept.length > 0 && kept.length < ref.scores.length);
    assert.equal(inst.scores.length, kept.length);
    for (const [k, s] of kept.entries()) assert.ok(Math.abs((inst.scores[k] as number) - s) < 1e-5);
  });

  it("metadata: Ultralytics' str(dict) names, imgsz, task", async () => {
    const meta = onnxMetadata(await readFile(join(FIXTURES, "yolo-seg.onnx")));
    assert.equal(meta.task, "segment");
    assert.equal(meta.imgsz, "[96, 96]");
    assert.equal(meta.stride, "32");
    assert.deepEqual(parseYoloNames(`{0: 'a', 1: "it's", 2: 'x\\'y\\\\z'}`), ["a", "it's", "x'y\\z"]);
    assert.deepEqual(parseYoloNames("{}"), []);
    assert.equal(parseYoloNames("['a', 'b']"), undefined);
    assert.equal(parseYoloNames("{0: 'a' 1: 'b'}"), undefined);
  });

  it("NMS: class-aware (an overlapping box of another class stays), IoU > 0.7 suppresses, conf filters first", () => {
    // 4 anchors, 2 classes, no mask coefficients: rows cx, cy, w, h, score0, score1
    const cols = [
      [50, 50, 20, 20, 0.9, 0.1],
      [51, 50, 20, 20, 0.8, 0.1], // IoU 0.905 with the first, same class: suppressed
      [50, 50, 20, 20, 0.1, 0.7], // same box, other class: kept
      [80, 80, 10, 10, 0.2, 0.24], // below conf 0.25
    ];
    const out = new Float32Array(6 * 4);
    for (const [a, col] of cols.entries()) for (const [c, v] of col.entries()) out[c * 4 + a] = v;
    const dets = yoloNms(out, 4, 2, { conf: 0.25, iou: 0.7, maxDet: 300 });
    assert.deepEqual(
      dets.map((d) => [d.anchor, d.cls]),
      [
        [0, 0],
        [2, 1],
      ],
    );
    assert.deepEqual(dets[0]?.box, [40, 40, 60, 60]);
    assert.equal(yoloNms(out, 4, 2, { conf: 0.25, iou: 0.7, maxDet: 1 }).length, 1);
  });

  it("predict after dispose is an error; dispose twice is fine", async () => {
    const m = await loadInstanceModel(FIXTURES, { threads: 1 });
    await m.dispose();
    await m.dispose();
    const img = await readImage(join(FIXTURES, "square.png"));
    await assert.rejects(m.predict(img), /disposed/);
  });
});

describe("loadInstanceModel errors", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "segkit-instances-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("a missing directory, an empty one, two models: SegkitErrors naming the directory", async () => {
    await assert.rejects(
      loadInstanceModel(join(dir, "nope")),
      (e: unknown) => e instanceof SegkitError && e.file === join(dir, "nope"),
    );
    await assert.rejects(loadInstanceModel(dir), /no \.onnx model in the directory \(it holds nothing\)/);
    await writeFile(join(dir, "a.onnx"), "x");
    await writeFile(join(dir, "b.onnx"), "x");
    await assert.rejects(loadInstanceModel(dir), /several \.onnx models in the directory: a\.onnx, b\.onnx/);
  });

  it("a graph that is neither YOLO-seg nor Mask R-CNN: the file and its inputs and outputs", async () => {
    const other = await mkdtemp(join(dir, "sam-"));
    const decoder = fileURLToPath(new URL("../sam/fixtures/models/split/decoder.onnx", import.meta.url));
    await writeFile(join(other, "model.onnx"), await readFile(decoder));
    await assert.rejects(loadInstanceModel(other), (e: unknown) => {
      assert.ok(e instanceof SegkitError);
      assert.equal(e.file, join(other, "model.onnx"));
      assert.match(e.message, /not an instance segmentation model/);
      assert.match(e.hint ?? "", /inputs: image_embeddings \[1, 256, 64, 64\]/);
      return true;
    });
  });

  it("Ultralytics metadata that does not fit: another task, names that are not a dict or not the classes", async () => {
    const bytes = await readFile(join(FIXTURES, "yolo-seg.onnx"));
    const cases: [Record<string, string>, RegExp][] = [
      [{ task: "detect" }, /task is "detect", segkit instances needs "segment"/],
      [{ names: "['cat', 'dog']" }, /metadata `names` is not a Python dict/],
      [{ names: "{0: 'cat', 1: 'dog'}" }, /output0 has 3 classes, its metadata names 2/],
    ];
    for (const [k, [change, message]] of cases.entries()) {
      const model = onnx.ModelProto.decode(bytes);
      for (const p of model.metadataProps) if (p.key && p.key in change) p.value = change[p.key] as string;
      const sub = await mkdtemp(join(dir, `meta-${k}-`));
      await writeFile(join(sub, "m.onnx"), onnx.ModelProto.encode(model).finish());
      await assert.rejects(loadInstanceModel(sub), (e: unknown) => {
        assert.ok(e instanceof SegkitError);
        assert.equal(e.file, join(sub, "m.onnx"));
        assert.match(e.message, message);
        return true;
      });
    }
  });

  it("a file that is not ONNX: onnxruntime's refusal as a SegkitError naming it", async () => {
    const bad = await mkdtemp(join(dir, "bad-"));
    await writeFile(join(bad, "m.onnx"), "not a model");
    await assert.rejects(
      loadInstanceModel(bad),
      (e: unknown) => e instanceof SegkitError && e.file === join(bad, "m.onnx"),
    );
  });
});
