import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { SegkitError } from "../core/errors.js";
import { createMask } from "../core/image.js";
import { rleEncode, rleToString } from "../masks/rle.js";
import {
  COCO_PARAMS,
  type CocoIouType,
  cocoEvalDetections,
  cocoEvalGroundTruth,
  cocoEvalReport,
  cocoEvaluate,
  formatCocoSummary,
} from "./coco-eval.js";

const DIR = join(import.meta.dirname, "fixtures", "coco-eval");
const load = (name: string): unknown => JSON.parse(readFileSync(join(DIR, name), "utf8"));

interface Reference {
  stats: number[];
  perClass: number[];
  recall: number[];
  precisionSample: number[];
}
const REF = load("reference.json") as Record<string, Record<CocoIouType, Reference>>;
const GT = load("gt.json") as { images: { id: number; file_name: string }[]; annotations: unknown[] };

function close(actual: ArrayLike<number>, expected: readonly number[], what: string, tol = 1e-6): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let n = 0; n < expected.length; n++) {
    const a = actual[n] as number;
    const e = expected[n] as number;
    assert.ok(Math.abs(a - e) <= tol, `${what}[${n}]: ${a} vs pycocotools ${e}`);
  }
}

/** precision[[0, 5, 9], ::10, :, 0, :] as the reference script samples it. */
function precisionSample(
  p: Float64Array,
  [T, R, K, A, M]: readonly [number, number, number, number, number],
): number[] {
  const out: number[] = [];
  for (const t of [0, 5, 9]) {
    for (let r = 0; r < R; r += 10) {
      for (let k = 0; k < K; k++)
        for (let m = 0; m < M; m++) out.push(p[(((t * R + r) * K + k) * A + 0) * M + m] as number);
    }
  }
  assert.ok(T === 10);
  return out;
}

describe("cocoEvaluate: parity with pycocotools' COCOeval", () => {
  const gt = cocoEvalGroundTruth(load("gt.json"), "gt.json");
  for (const name of Object.keys(REF)) {
    for (const iouType of ["segm", "bbox"] as const) {
      it(`${name} detections, ${iouType}`, () => {
        const dt = cocoEvalDetections(load(`dt-${name}.json`), gt, `dt-${name}.json`);
        const r = cocoEvaluate(gt, dt, iouType);
        const ref = REF[name]?.[iouType] as Reference;
        close(r.stats, ref.stats, "stats");
        close(
          r.perClass.map((c) => c.ap),
          ref.perClass,
          "perClass",
        );
        close(r.recall, ref.recall, "recall");
        close(precisionSample(r.precision, r.counts), ref.precisionSample, "precision");
      });
    }
  }

  it("matches a predictions COCO file to the ground truth by file_name when its image ids differ", () => {
    const results = load("dt-full.json") as { image_id: number }[];
    const images = GT.images.map((im) => ({ ...im, id: 1000 + im.id, file_name: `out/${im.file_name}` }));
    const coco = {
      images: images.reverse(),
      categories: [],
      annotations: results.map((d, n) => ({ ...d, id: n + 1, image_id: 1000 + d.image_id })),
    };
    const r = cocoEvaluate(gt, cocoEvalDetections(coco, gt, "pred.json"), "segm");
    close(r.stats, (REF.full as Record<CocoIouType, Reference>).segm.stats, "stats");
    // an annotation on an image its own file does not list: one line naming the file
    const stray = { ...coco, annotations: [{ ...coco.annotations[0], image_id: 7 }] };
    assert.throws(
      () => cocoEvalDetections(stray, gt, "pred.json"),
      (e: unknown) =>
        e instanceof SegkitError &&
        e.file === "pred.json" &&
        e.message === "image_id 7 is not an image of the predictions' own images list",
    );
  });

  it("the thresholds are numpy's linspace values (AP75 found by exact equality)", () => {
    assert.equal(COCO_PARAMS.iouThrs[5], 0.75);
    assert.equal(COCO_PARAMS.iouThrs[8], 0.8999999999999999);
    assert.equal(COCO_PARAMS.recThrs[100], 1);
  });
});

/** One 20 x 20 image, category 1; masks as rectangles. */
function tiny(
  gtRects: [number, number, number, number, number?][],
  dtRects: [number, number, number, number, number][],
) {
  const rle = (x0: number, y0: number, x1: number, y1: number) => {
    const m = createMask(20, 20);
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m.data[y * 20 + x] = 1;
    return rleToString(rleEncode(m));
  };
  const gt = cocoEvalGroundTruth({
    images: [{ id: 1, file_name: "a.png", width: 20, height: 20 }],
    categories: [{ id: 1, name: "thing" }],
    annotations: gtRects.map(([x0, y0, x1, y1, crowd], n) => ({
      id: n + 1,
      image_id: 1,
      category_id: 1,
      segmentation: rle(x0, y0, x1, y1),
      area: (x1 - x0) * (y1 - y0),
      bbox: [x0, y0, x1 - x0, y1 - y0],
      iscrowd: crowd ?? 0,
    })),
  });
  const dt = cocoEvalDetections(
    dtRects.map(([x0, y0, x1, y1, score]) => ({
      image_id: 1,
      category_id: 1,
      segmentation: rle(x0, y0, x1, y1),
      score,
    })),
    gt,
  );
  return { gt, dt };
}

describe("cocoEvaluate: hand-computed cases", () => {
  it("one perfect detection scores 1 (AP, AP50, AP75, APs, AR*), other area ranges -1", () => {
    const { gt, dt } = tiny([[2, 2, 8, 8]], [[2, 2, 8, 8, 0.9]]);
    // precision is tp / (tp + fp + eps) as in pycocotools: 1 / (1 + 2^-52)
    for (const t of ["segm", "bbox"] as const) {
      close(cocoEvaluate(gt, dt, t).stats, [1, 1, 1, 1, -1, -1, 1, 1, 1, 1, -1, -1], t, 1e-12);
    }
  });

  it("a crowd-only image: no ground truth to find (-1 everywhere), detections in it ignored", () => {
    const { gt, dt } = tiny([[0, 0, 20, 20, 1]], [[2, 2, 8, 8, 0.9]]);
    assert.deepEqual(cocoEvaluate(gt, dt, "segm").stats, new Array(12).fill(-1));
  });

  it("a detection inside a crowd region is ignored, not a false positive", () => {
    // a crowd region on the right; the real object found with score 0.5 after a 0.9 detection in the crowd
    const { gt, dt } = tiny(
      [
        [0, 0, 6, 6],
        [10, 0, 20, 20, 1],
      ],
      [
        [12, 2, 18, 8, 0.9],
        [0, 0, 6, 6, 0.5],
      ],
    );
    close(cocoEvaluate(gt, dt, "segm").stats.slice(0, 1), [1], "AP", 1e-12);
  });

  it("an empty prediction list: AP and AR 0 where there is ground truth (as pycocotools), -1 elsewhere", () => {
    const { gt, dt } = tiny([[2, 2, 8, 8]], []);
    assert.deepEqual(cocoEvaluate(gt, dt, "bbox").stats, [0, 0, 0, 0, -1, -1, 0, 0, 0, 0, -1, -1]);
  });

  it("a ground truth with annotation id 0 is never counted as matched, as in pycocotools (it stores matches as ids)", () => {
    // pycocotools 2.0.11 on this case: [0, 0, 0, 0, -1, -1, 0, 0, 0, 0, -1, -1]
    const { gt, dt } = tiny([[2, 2, 8, 8]], [[2, 2, 8, 8, 0.9]]);
    const withId = (id: number) =>
      cocoEvalGroundTruth({
        images: gt.images,
        categories: gt.categories,
        annotations: [
          { id, image_id: 1, category_id: 1, segmentation: [[2, 2, 8, 2, 8, 8, 2, 8]], area: 36, iscrowd: 0 },
        ],
      });
    assert.ok((cocoEvaluate(withId(1), dt, "segm").stats[0] as number) > 0.999);
    const zero = withId(0);
    assert.deepEqual(cocoEvaluate(zero, dt, "segm").stats, [0, 0, 0, 0, -1, -1, 0, 0, 0, 0, -1, -1]);
  });

  it("a false positive ranked first halves the precision at full recall", () => {
    // precision after interpolation: 0.5 at every recall point up to 1 -> AP 0.5
    const { gt, dt } = tiny(
      [[2, 2, 8, 8]],
      [
        [12, 12, 18, 18, 0.9],
        [2, 2, 8, 8, 0.8],
      ],
    );
    const r = cocoEvaluate(gt, dt, "segm");
    assert.ok(Math.abs((r.stats[0] as number) - 0.5) < 1e-12);
    assert.equal(r.stats[6], 0); // AR1: the one detection kept is the false positive
    assert.equal(r.stats[7], 1);
  });
});

describe("cocoEvaluate: report and errors", () => {
  const gt = cocoEvalGroundTruth(load("gt.json"), "gt.json");

  it("prints summarize's layout and names the numbers", () => {
    const r = cocoEvaluate(gt, cocoEvalDetections(load("dt-full.json"), gt), "segm");
    const lines = formatCocoSummary(r.stats);
    assert.equal(
      lines[0],
      ` Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = ${(r.stats[0] as number).toFixed(3)}`,
    );
    assert.match(
      lines[11] as string,
      /^ Average Recall {5}\(AR\) @\[ IoU=0\.50:0\.95 \| area= large \| maxDets=100 \] = /,
    );
    const report = cocoEvalReport(r);
    assert.equal(report.AP75, r.stats[2]);
    assert.equal(report.perClass.unused, -1);
  });

  const bad: [string, unknown, RegExp][] = [
    ["an unknown image", [{ image_id: 99, category_id: 1, bbox: [0, 0, 1, 1], score: 1 }], /detection 0: image_id 99/],
    ["an unknown category", [{ image_id: 1, category_id: 4, bbox: [0, 0, 1, 1], score: 1 }], /category_id 4/],
    [
      "a malformed segmentation",
      [{ image_id: 1, category_id: 1, segmentation: { size: [160, 200], counts: "??" }, score: 1 }],
      /detection 0: RLE/,
    ],
    ["a missing score", [{ image_id: 1, category_id: 1, bbox: [0, 0, 1, 1] }], /score must be a number/],
    ["not a results list", { foo: 1 }, /not COCO results/],
  ];
  for (const [what, json, message] of bad) {
    it(`${what} is a SegkitError naming the file`, () => {
      assert.throws(
        () => cocoEvaluate(gt, cocoEvalDetections(json, gt, "pred.json"), "segm"),
        (e: unknown) => e instanceof SegkitError && e.file === "pred.json" && message.test(e.message),
      );
    });
  }

  it("a ground truth that is not a COCO instances file is a SegkitError naming it", () => {
    assert.throws(
      () => cocoEvalGroundTruth({ images: [] }, "gt.json"),
      (e: unknown) => e instanceof SegkitError && e.file === "gt.json",
    );
  });
});
