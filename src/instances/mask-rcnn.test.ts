// Mask R-CNN as torchvision exports it: the tiny fixture model (scripts/fixtures/make_mask_rcnn.py: torchvision's own
// MaskRCNN class, seeded weights, exported as torchvision's test_onnx.py does) must give torchvision's own outputs
// (the PyTorch module, written to expected.json): same detections in the same order, boxes to 2e-4 px, scores to
// 1e-5, masks (>= 0.5) at IoU >= 0.999. Graph detection, class names and errors use hand-made sessions and files.
import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import onnxProto from "onnx-proto";
import { SegkitError } from "../core/errors.js";
import { createImage } from "../core/image.js";
import { readImage } from "../io/image.js";
import { type Rle, rleIou } from "../masks/rle.js";
import { tensorProto } from "../onnx/proto.js";
import { createOnnxSession, type OnnxSession, type OnnxValueInfo } from "../onnx/session.js";
import { COCO_91_NAMES } from "./coco-categories.js";
import { createMaskRcnnModel, imageToChw, isMaskRcnnGraph, MASK_THRESHOLD, maskRcnnCategories } from "./mask-rcnn.js";
import { loadInstanceModel } from "./model.js";

const FIXTURE = join(import.meta.dirname, "fixtures", "mask-rcnn");
const MODEL = join(FIXTURE, "model.onnx");

interface Expected {
  images: {
    file: string;
    width: number;
    height: number;
    boxes: number[][];
    labels: number[];
    scores: number[];
    masks: Rle[];
  }[];
}

/** A session that only declares inputs and outputs (detection reads nothing else); `run` answers `answer`. */
function fakeSession(
  inputs: OnnxValueInfo[],
  outputs: OnnxValueInfo[],
  answer: Awaited<ReturnType<OnnxSession["run"]>> = {},
): OnnxSession & { disposed: number } {
  return {
    inputNames: inputs.map((v) => v.name),
    outputNames: outputs.map((v) => v.name),
    inputs,
    outputs,
    disposed: 0,
    run: async () => answer,
    async dispose() {
      this.disposed++;
    },
  };
}

const image = (name: string, shape: (number | string)[] = [3, "H", "W"]) => ({ name, type: "float32", shape });
const torchvisionOutputs = (names = ["boxes", "labels", "scores", "masks"]): OnnxValueInfo[] => [
  { name: names[0] ?? "", type: "float32", shape: ["N", 4] },
  { name: names[1] ?? "", type: "int64", shape: ["N"] },
  { name: names[2] ?? "", type: "float32", shape: ["N"] },
  { name: names[3] ?? "", type: "float32", shape: ["N", 1, "H", "W"] },
];

/** An ONNX file holding only an initializer `roi_heads.box_predictor.cls_score.bias` of `classes` values. */
async function classCountFile(dir: string, classes: number): Promise<string> {
  const { onnx } = onnxProto;
  const bias = tensorProto("roi_heads.box_predictor.cls_score.bias", {
    dims: [classes],
    data: new Float32Array(classes),
  });
  const file = join(dir, "model.onnx");
  await writeFile(file, onnx.ModelProto.encode({ irVersion: 8, graph: { initializer: [bias] } }).finish());
  return file;
}

describe("Mask R-CNN (torchvision's ONNX export)", () => {
  let expected: Expected;
  let tmp: string;
  before(async () => {
    expected = JSON.parse(await readFile(join(FIXTURE, "expected.json"), "utf8")) as Expected;
    tmp = await mkdtemp(join(tmpdir(), "segkit-mask-rcnn-"));
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  it("gives torchvision's detections on the fixture: order, labels, boxes (2e-4 px), scores, masks (IoU >= 0.999)", async () => {
    const model = await loadInstanceModel(FIXTURE, { threads: 1 }); // told from the graph
    try {
      assert.equal(model.kind, "mask-rcnn");
      let total = 0;
      for (const want of expected.images) {
        const img = await readImage(join(FIXTURE, want.file));
        const got = await model.predict(img);
        assert.equal(got.width, want.width);
        assert.equal(got.height, want.height);
        assert.deepEqual(got.classIds, want.labels, want.file);
        assert.equal(got.scores.length, want.scores.length);
        for (const [k, s] of got.scores.entries()) assert.ok(Math.abs(s - (want.scores[k] ?? Number.NaN)) <= 1e-5);
        for (const [k, box] of got.boxes.entries()) {
          for (const [j, v] of box.entries()) {
            const ref = want.boxes[k]?.[j] ?? Number.NaN;
            assert.ok(Math.abs(v - ref) <= 2e-4, `${want.file} box ${k}: ${v} vs torchvision's ${ref}`);
          }
        }
        for (const [k, mask] of got.masks.entries()) {
          const ref = want.masks[k] as Rle;
          const iou = rleIou([mask], [ref])[0]?.[0] ?? 0;
          assert.ok(iou >= 0.999, `${want.file} mask ${k}: IoU ${iou}`);
        }
        total += got.scores.length;
      }
      assert.ok(total >= 5, "the fixture has detections to compare");
    } finally {
      await model.dispose();
    }
  });

  it("scoreThreshold keeps the detections scoring above it, in order", async () => {
    const model = await createMaskRcnnModel(await createOnnxSession(MODEL, { threads: 1 }), FIXTURE, MODEL);
    try {
      const want = expected.images[0];
      assert.ok(want);
      const got = await model.predict(await readImage(join(FIXTURE, want.file)), { scoreThreshold: 0.1 });
      const kept = want.scores.filter((s) => s > 0.1);
      assert.ok(kept.length > 0 && kept.length < want.scores.length);
      assert.deepEqual(got.classIds, want.labels.slice(0, kept.length));
      assert.equal(got.masks.length, kept.length);
    } finally {
      await model.dispose();
    }
  });

  it("feeds the image as float [3,H,W] in 0..1 (CHW) and returns empty instances at the image's size", async () => {
    const img = createImage(2, 1, Uint8Array.of(255, 0, 51, 102, 204, 255));
    assert.deepEqual([...imageToChw(img)], [1, 0.4, 0, 0.8, 0.2, 1].map(Math.fround));
    let fed: unknown;
    const session = fakeSession([image("images_tensors")], torchvisionOutputs());
    session.run = async (inputs) => {
      fed = inputs.images_tensors?.dims;
      const none = { data: new Float32Array(), dims: [0] };
      return { boxes: { data: new Float32Array(), dims: [0, 4] }, labels: none, scores: none, masks: none };
    };
    const model = await createMaskRcnnModel(session, tmp, "model.onnx");
    const got = await model.predict(img);
    assert.deepEqual(fed, [3, 1, 2]);
    assert.deepEqual(got, { width: 2, height: 1, masks: [], boxes: [], classIds: [], scores: [] });
    assert.equal(MASK_THRESHOLD, 0.5);
    await model.dispose();
    assert.equal(session.disposed, 1, "the model releases its session");
  });

  it("recognises torchvision's export by its input and outputs, renamed or numbered outputs too", () => {
    assert.equal(isMaskRcnnGraph(fakeSession([image("images_tensors")], torchvisionOutputs())), true);
    // exported without input_names / output_names: numbered outputs in torchvision's order
    assert.equal(
      isMaskRcnnGraph(fakeSession([image("images")], torchvisionOutputs(["3129", "3127", "3126", "3150"]))),
      true,
    );
    // a fixed-size export (no dynamic_axes)
    assert.equal(isMaskRcnnGraph(fakeSession([image("input", [3, 300, 400])], torchvisionOutputs())), true);
    // not Mask R-CNN: a batch input, a 4-channel image, labels as float, a missing masks output, an extra input
    assert.equal(isMaskRcnnGraph(fakeSession([image("x", [1, 3, "H", "W"])], torchvisionOutputs())), false);
    assert.equal(isMaskRcnnGraph(fakeSession([image("x", [4, "H", "W"])], torchvisionOutputs())), false);
    const floatLabels = torchvisionOutputs().map((o) => (o.name === "labels" ? { ...o, type: "float32" } : o));
    assert.equal(isMaskRcnnGraph(fakeSession([image("x")], floatLabels)), false);
    assert.equal(isMaskRcnnGraph(fakeSession([image("x")], torchvisionOutputs().slice(0, 3))), false);
    assert.equal(isMaskRcnnGraph(fakeSession([image("x"), image("y")], torchvisionOutputs())), false);
  });

  it("a graph that is not Mask R-CNN is one error naming the file", async () => {
    const decoder = join(import.meta.dirname, "..", "sam", "fixtures", "models", "split", "decoder.onnx");
    const session = await createOnnxSession(decoder, { threads: 1 });
    try {
      assert.equal(isMaskRcnnGraph(session), false);
      await assert.rejects(
        createMaskRcnnModel(session, tmp, decoder),
        (err: unknown) =>
          err instanceof SegkitError &&
          err.file === decoder &&
          /^not a torchvision Mask R-CNN graph \(inputs: image_embeddings float32 \[1,256,64,64\]/.test(err.message),
      );
    } finally {
      await session.dispose();
    }
  });

  it("a fixed-size export refuses another size with a hint to export with dynamic axes", async () => {
    const session = fakeSession([image("images_tensors", [3, 88, 120])], torchvisionOutputs());
    const model = await createMaskRcnnModel(session, tmp, "model.onnx");
    await assert.rejects(
      model.predict(createImage(100, 80)),
      (err: unknown) =>
        err instanceof SegkitError &&
        err.message === "the graph takes 120x88 images only, this one is 100x80" &&
        /dynamic_axes/.test(err.hint ?? ""),
    );
    await model.dispose();
  });

  it("class names: labels.json beside the model (torchvision's list, with background and N/A skipped)", async () => {
    assert.deepEqual(await maskRcnnCategories(FIXTURE), [
      { id: 1, name: "circle" },
      { id: 2, name: "square" },
      { id: 3, name: "stripe" },
      { id: 4, name: "blob" },
    ]);
    const forms: [string, unknown][] = [
      ["labels.json", ["__background__", "cat", "N/A", "dog"]],
      [
        "labels.json",
        [
          { id: 3, name: "dog" },
          { id: 1, name: "cat" },
        ],
      ],
      ["labels.json", { "3": "dog", "1": "cat" }],
      ["config.json", { model_type: "x", id2label: { "0": "N/A", "1": "cat", "3": "dog" } }],
    ];
    for (const [name, content] of forms) {
      const dir = await mkdtemp(join(tmp, "labels-"));
      await writeFile(join(dir, name), JSON.stringify(content));
      assert.deepEqual(
        await maskRcnnCategories(dir),
        [
          { id: 1, name: "cat" },
          { id: 3, name: "dog" },
        ],
        `${name}: ${JSON.stringify(content)}`,
      );
    }
  });

  it("class names: COCO's 91 ids for a 91-class graph without names, else class_<id>", async () => {
    assert.equal(COCO_91_NAMES.length, 91);
    const coco = await maskRcnnCategories(
      tmp,
      await readFile(await classCountFile(await mkdtemp(join(tmp, "coco-")), 91)),
    );
    assert.equal(coco.length, 80);
    assert.deepEqual(coco[0], { id: 1, name: "person" });
    assert.deepEqual(coco.at(-1), { id: 90, name: "toothbrush" });
    assert.deepEqual(coco[11], { id: 13, name: "stop sign" }); // 12 is an N/A gap
    assert.equal(
      coco.some((c) => c.id === 12 || c.id === 26 || c.id === 83),
      false,
    );
    // the fixture graph (5 classes) without its labels.json; a config.json without id2label is no label source
    const dir = await mkdtemp(join(tmp, "plain-"));
    await copyFile(MODEL, join(dir, "model.onnx"));
    await writeFile(join(dir, "config.json"), JSON.stringify({ model_type: "mask_rcnn" }));
    const session = await createOnnxSession(join(dir, "model.onnx"), { threads: 1 });
    const model = await createMaskRcnnModel(session, dir, "model.onnx", await readFile(MODEL));
    assert.deepEqual(
      model.categories.map((c) => `${c.id}:${c.name}`),
      ["1:class_1", "2:class_2", "3:class_3", "4:class_4"],
    );
    await model.dispose();
  });

  it("a bad labels.json or config.json is one error naming the file", async () => {
    const cases: [string, string, RegExp][] = [
      ["labels.json", JSON.stringify([1, 2]), /a list of class names/],
      ["labels.json", JSON.stringify({ cat: "1" }), /a list of class names/],
      ["labels.json", "[not json", /not valid JSON/],
      [
        "labels.json",
        JSON.stringify([
          { id: 1, name: "cat" },
          { id: 1, name: "dog" },
        ]),
        /^label id 1 is named twice$/,
      ],
      ["config.json", JSON.stringify({ id2label: ["cat"] }), /id2label must map label ids to names/],
    ];
    for (const [name, text, message] of cases) {
      const dir = await mkdtemp(join(tmp, "bad-"));
      await writeFile(join(dir, name), text);
      await assert.rejects(
        maskRcnnCategories(dir),
        (err: unknown) => err instanceof SegkitError && err.file === join(dir, name) && message.test(err.message),
        `${name}: ${text}`,
      );
    }
  });
});
