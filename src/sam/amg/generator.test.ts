import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createImage, type RgbImage } from "../../core/image.js";
import { cropImage } from "../../io/resize.js";
import { type Rle, rleDecode, rleToString } from "../../masks/rle.js";
import { loadSamModel, type SamModel } from "../model.js";
import { createSamPredictor, type SamPredictor } from "../predictor.js";
import { buildAllLayerPointGrids, generateCropBoxes, removeSmallRegions } from "./amg.js";
import { type AmgOptions, type AmgProgress, generateMasks, validateAmgOptions } from "./generator.js";

// The split fixture (scripts/make_sam_fixtures.py): one foreground point gives discs of radius ~1.67 sigma_k
// (sigma 64, 96, 128 in the 1024 frame for the 3 multimask channels) on a -2 background, predicted IoU
// sigmoid(mean logit) ~ 0.14..0.23 and stability ~ 0.47..0.62. So the reference's 0.88 / 0.95 filters keep nothing;
// the thresholds below are relaxed to keep some candidates and drop others at every stage.
const MODEL = join(import.meta.dirname, "..", "fixtures", "models", "split");
const RELAXED: AmgOptions = {
  pointsPerSide: 4,
  predIouThresh: 0.15,
  stabilityScoreThresh: 0.5,
  boxNmsThresh: 0.5,
  cropNLayers: 1,
  cropNmsThresh: 0.6,
  // 2500: the 2457 px discs are single small islands, "changed" (kept as the largest), so they sort last
  minMaskRegionArea: 2500,
};

function pattern(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + Math.floor(i / 4099) * 11) % 256;
  return createImage(width, height, data);
}

type Box = [number, number, number, number];

/**
 * A line-by-line transcription of `SamAutomaticMaskGenerator.generate` (segment-anything
 * automatic_mask_generator.py and utils/amg.py) on dense arrays, as the PyTorch code holds them: full-size masks,
 * boxes by row/column maxima, masks padded to the image, RLE from change indices, torchvision's NMS loop. It takes
 * the decoder outputs (original-size logits) from the same predictor. Grids, crop boxes and remove_small_regions are
 * the tested helpers (amg.test.ts checks them by hand).
 */
async function referenceGenerate(p: SamPredictor, image: RgbImage, opts: AmgOptions) {
  const o = validateAmgOptions(opts);
  const [origH, origW] = [image.height, image.width];
  const grids = buildAllLayerPointGrids(o.pointsPerSide, o.cropNLayers, o.cropNPointsDownscaleFactor);
  const { boxes: cropBoxes, layers } = generateCropBoxes({ height: origH, width: origW }, o.cropNLayers, 512 / 1500);
  type Data = { rles: Rle[]; boxes: Box[]; iou: number[]; points: number[][]; stab: number[]; crops: Box[] };
  const cat = (a: Data, b: Data) => {
    for (const k of Object.keys(a) as (keyof Data)[]) (a[k] as unknown[]).push(...b[k]);
  };
  const filter = (d: Data, keep: number[]): Data => ({
    rles: keep.map((i) => d.rles[i] as Rle),
    boxes: keep.map((i) => d.boxes[i] as Box),
    iou: keep.map((i) => d.iou[i] as number),
    points: keep.map((i) => d.points[i] as number[]),
    stab: keep.map((i) => d.stab[i] as number),
    crops: keep.map((i) => d.crops[i] as Box),
  });
  const empty = (): Data => ({ rles: [], boxes: [], iou: [], points: [], stab: [], crops: [] });
  const data = empty();
  for (const [c, cropBox] of cropBoxes.entries()) {
    const [x0, y0, x1, y1] = cropBox;
    const [h, w] = [y1 - y0, x1 - x0];
    await p.setImage(cropImage(image, { x: x0, y: y0, width: w, height: h }));
    const grid = grids[layers[c] as number] as Float64Array;
    const cropData = empty();
    for (let b = 0; b < grid.length / 2; b += o.pointsPerBatch) {
      // _process_batch
      const masks: Float32Array[] = [];
      const iou: number[] = [];
      const points: number[][] = [];
      for (let q = b; q < Math.min(b + o.pointsPerBatch, grid.length / 2); q++) {
        const pt = [(grid[2 * q] as number) * w, (grid[2 * q + 1] as number) * h];
        const r = await p.predict({
          points: [{ x: pt[0] as number, y: pt[1] as number, label: 1 }],
          returnLogits: true,
        });
        for (let k = 0; k < 3; k++) {
          masks.push(r.logits?.[k] as Float32Array);
          iou.push(r.scores[k] as number);
          points.push(pt);
        }
      }
      let idx = masks.map((_, i) => i).filter((i) => (iou[i] as number) > Math.fround(o.predIouThresh));
      const count = (m: Float32Array, t: number) => m.reduce((s, v) => s + (v > t ? 1 : 0), 0);
      const stab = masks.map((m) => Math.fround(count(m, 1) / count(m, -1)));
      idx = idx.filter((i) => (stab[i] as number) >= Math.fround(o.stabilityScoreThresh));
      const bin = idx.map((i) => (masks[i] as Float32Array).map((v) => (v > 0 ? 1 : 0)));
      const boxes = bin.map((m): Box => {
        const rows = Array.from({ length: h }, (_, y) => m.subarray(y * w, (y + 1) * w).some((v) => v > 0));
        const cols = Array.from({ length: w }, (_, x) => rows.some((_r, y) => (m[y * w + x] as number) > 0));
        const bottom = Math.max(...rows.map((r, y) => (r ? y : 0)));
        const top = Math.min(...rows.map((r, y) => (r ? y : h)));
        const right = Math.max(...cols.map((r, x) => (r ? x : 0)));
        const left = Math.min(...cols.map((r, x) => (r ? x : w)));
        return right < left || bottom < top ? [0, 0, 0, 0] : [left, top, right, bottom];
      });
      const near = (bx: Box) => {
        const u = [bx[0] + x0, bx[1] + y0, bx[2] + x0, bx[3] + y0];
        const orig = [0, 0, origW, origH];
        return u.some(
          (v, i) => Math.abs(v - (cropBox[i] as number)) <= 20 && !(Math.abs(v - (orig[i] as number)) <= 20),
        );
      };
      const keepEdge = boxes.map((_, j) => j).filter((j) => !near(boxes[j] as Box));
      const rles = keepEdge.map((j) => {
        // uncrop_masks (zero padding), then mask_to_rle_pytorch on the Fortran-order flattening
        const m = bin[j] as Float32Array;
        const flat: number[] = [];
        for (let x = 0; x < origW; x++) {
          for (let y = 0; y < origH; y++) {
            const inside = x >= x0 && x < x1 && y >= y0 && y < y1;
            flat.push(inside ? (m[(y - y0) * w + (x - x0)] as number) : 0);
          }
        }
        const change = [0];
        for (let i = 1; i < flat.length; i++) if (flat[i] !== flat[i - 1]) change.push(i);
        change.push(origH * origW);
        const counts = flat[0] === 0 ? [] : [0];
        for (let i = 1; i < change.length; i++) counts.push((change[i] as number) - (change[i - 1] as number));
        return { size: [origH, origW] as [number, number], counts };
      });
      cat(cropData, {
        rles,
        boxes: keepEdge.map((j) => boxes[j] as Box),
        iou: keepEdge.map((j) => iou[idx[j] as number] as number),
        points: keepEdge.map((j) => points[idx[j] as number] as number[]),
        stab: keepEdge.map((j) => stab[idx[j] as number] as number),
        crops: [],
      });
    }
    const kept = filter(
      { ...cropData, crops: cropData.rles.map(() => cropBox) },
      nms(cropData.boxes, cropData.iou, o.boxNmsThresh),
    );
    kept.boxes = kept.boxes.map((bx) => [bx[0] + x0, bx[1] + y0, bx[2] + x0, bx[3] + y0]);
    kept.points = kept.points.map((pt) => [(pt[0] as number) + x0, (pt[1] as number) + y0]);
    cat(data, kept);
  }
  let out = data;
  if (cropBoxes.length > 1) {
    const scores = data.crops.map((cb) => Math.fround(1 / ((cb[2] - cb[0]) * (cb[3] - cb[1]))));
    out = filter(data, nms(data.boxes, scores, o.cropNmsThresh));
  }
  if (o.minMaskRegionArea > 0 && out.rles.length) {
    const newMasks = out.rles.map((r) => {
      const a = removeSmallRegions(rleDecode(r), o.minMaskRegionArea, "holes");
      const b = removeSmallRegions(a.mask, o.minMaskRegionArea, "islands");
      return { mask: b.mask, score: a.changed || b.changed ? 0 : 1 };
    });
    const boxes = newMasks.map(({ mask }): Box => {
      let [l, t, r, btm] = [mask.width, mask.height, -1, -1];
      mask.data.forEach((v, i) => {
        if (!v) return;
        const [x, y] = [i % mask.width, Math.floor(i / mask.width)];
        [l, t, r, btm] = [Math.min(l, x), Math.min(t, y), Math.max(r, x), Math.max(btm, y)];
      });
      return r < 0 ? [0, 0, 0, 0] : [l, t, r, btm];
    });
    const keep = nms(
      boxes,
      newMasks.map((m) => m.score),
      Math.max(o.boxNmsThresh, o.cropNmsThresh),
    );
    for (const i of keep) {
      if (newMasks[i]?.score === 0) {
        const m = newMasks[i]?.mask as { data: Uint8Array; width: number; height: number };
        const counts: number[] = [];
        let [prev, run] = [0, 0];
        for (let x = 0; x < m.width; x++) {
          for (let y = 0; y < m.height; y++) {
            const v = m.data[y * m.width + x] as number;
            if (v !== prev) [counts[counts.length], run, prev] = [run, 0, v];
            run++;
          }
        }
        counts.push(run);
        out.rles[i] = { size: [m.height, m.width], counts };
        out.boxes[i] = boxes[i] as Box;
      }
    }
    out = filter(out, keep);
  }
  const xywh = (b: Box) => [b[0], b[1], b[2] - b[0], b[3] - b[1]];
  return out.rles.map((rle, i) => ({
    segmentation: rle,
    area: rle.counts.reduce((s, n, k) => s + (k % 2 ? n : 0), 0),
    bbox: xywh(out.boxes[i] as Box),
    predicted_iou: out.iou[i],
    point_coords: [out.points[i]],
    stability_score: out.stab[i],
    crop_box: xywh(out.crops[i] as Box),
  }));
}

/** torchvision nms: stable descending sort, float32 IoU, suppress when > threshold. */
function nms(boxes: Box[], scores: number[], thr: number): number[] {
  const order = scores.map((_, i) => i).sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
  const area = boxes.map((b) => (b[2] - b[0]) * (b[3] - b[1]));
  const suppressed = new Set<number>();
  const keep: number[] = [];
  for (const [n, i] of order.entries()) {
    if (suppressed.has(i)) continue;
    keep.push(i);
    const a = boxes[i] as Box;
    for (const j of order.slice(n + 1)) {
      const b = boxes[j] as Box;
      const inter =
        Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0])) *
        Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
      if (Math.fround(inter / ((area[i] as number) + (area[j] as number) - inter)) > thr) suppressed.add(j);
    }
  }
  return keep;
}

describe("generateMasks on the split fixture", () => {
  let model: SamModel;
  let predictor: SamPredictor;
  const image = pattern(300, 200);
  before(async () => {
    model = await loadSamModel(MODEL, { threads: 1 });
    predictor = await createSamPredictor(model);
  });
  after(async () => {
    await predictor.dispose();
    await model.dispose();
  });

  test("the same records as the transcribed reference: every filter and NMS stage in play", async () => {
    const progress: AmgProgress[] = [];
    const got = await generateMasks(predictor, image, {
      ...RELAXED,
      pointsPerBatch: 6,
      onProgress: (p) => progress.push(p),
    });
    const want = await referenceGenerate(predictor, image, RELAXED);
    assert.ok(want.length >= 10, `only ${want.length} masks survived`);
    assert.deepEqual(
      got.map((r) => r.bbox),
      want.map((r) => r.bbox),
    );
    assert.deepEqual(got, want);
    // 5 crops (whole image + 2x2), 16 points each in batches of 6: 3 progress calls per crop
    assert.equal(progress.length, 15);
    assert.deepEqual(
      progress.slice(0, 3).map((p) => [p.crop, p.crops, p.points, p.pointsInCrop]),
      [
        [0, 5, 6, 16],
        [0, 5, 12, 16],
        [0, 5, 16, 16],
      ],
    );
    // the relaxed filters still cut: fewer masks than 5 crops x 16 points x 3 candidates, and none below them
    assert.ok(got.length < 240);
    for (const r of got) {
      assert.ok(r.predicted_iou > 0.15 && r.stability_score >= 0.5);
      assert.equal(
        r.area,
        (r.segmentation as Rle).counts.filter((_, k) => k % 2).reduce((a, b) => a + b, 0),
      );
    }
    // crops: masks from the 4 smaller crops are preferred, some from the whole image survive where nothing overlaps
    assert.ok(got.some((r) => r.crop_box[2] < 300));
  });

  test("without crops and small-region removal, at the reference's other settings", async () => {
    const opts = { pointsPerSide: 3, predIouThresh: 0, stabilityScoreThresh: 0.45 };
    const got = await generateMasks(predictor, image, opts);
    assert.deepEqual(got, await referenceGenerate(predictor, image, opts));
    assert.ok(got.length > 0 && got.every((r) => r.crop_box.join() === "0,0,300,200"));
  });

  test("the reference's default filters keep nothing of the tiny model", async () => {
    assert.deepEqual(await generateMasks(predictor, image, { pointsPerSide: 2 }), []);
  });

  test("output modes: binary masks and pycocotools strings of the same RLEs; a model as source", async () => {
    const opts = { pointsPerSide: 2, predIouThresh: 0, stabilityScoreThresh: 0 };
    const rle = await generateMasks(predictor, image, opts);
    const bin = await generateMasks(model, image, { ...opts, outputMode: "binary_mask" });
    const coco = await generateMasks(predictor, image, { ...opts, outputMode: "coco_rle" });
    assert.equal(rle.length, 12);
    rle.forEach((r, i) => {
      assert.deepEqual(bin[i]?.segmentation, rleDecode(r.segmentation as Rle));
      assert.deepEqual(coco[i]?.segmentation, rleToString(r.segmentation as Rle));
      assert.deepEqual({ ...bin[i], segmentation: 0 }, { ...r, segmentation: 0 });
    });
  });

  test("cancellable between decoder calls; bad options named", async () => {
    const ac = new AbortController();
    let calls = 0;
    await assert.rejects(
      generateMasks(predictor, image, {
        pointsPerSide: 4,
        pointsPerBatch: 4,
        signal: ac.signal,
        onProgress: () => {
          calls++;
          ac.abort();
        },
      }),
      { name: "AbortError" },
    );
    assert.equal(calls, 1);
    await assert.rejects(generateMasks(predictor, image, { pointsPerBatch: 0 }), /pointsPerBatch must be an integer/);
    await assert.rejects(generateMasks(predictor, image, { outputMode: "png" as never }), /unknown outputMode "png"/);
    await assert.rejects(
      generateMasks(predictor, image, { cropNLayers: 1, pointGrids: [new Float64Array(2)] }),
      /one grid per crop layer/,
    );
  });
});

describe("generateMasks on a 1-mask decoder (the SAM-HQ fixture)", () => {
  test("one candidate per point, as the predictor returns it", async () => {
    const model = await loadSamModel(join(MODEL, "..", "sam-hq"), { threads: 1 });
    const predictor = await createSamPredictor(model);
    try {
      const image = pattern(300, 200);
      const got = await generateMasks(model, image, { pointsPerSide: 2, predIouThresh: 0, stabilityScoreThresh: 0 });
      // 4 points, 1 mask each, discs far apart: nothing suppressed
      assert.equal(got.length, 4);
      await predictor.setImage(image);
      for (const r of got) {
        const [[x, y]] = r.point_coords;
        const pred = await predictor.predict({ points: [{ x, y, label: 1 }] });
        assert.equal(pred.masks.length, 1);
        assert.equal(r.predicted_iou, pred.scores[0]);
        assert.equal(r.stability_score, pred.stabilityScores[0]);
        const area = pred.masks[0]?.data.reduce((a, b) => a + b, 0);
        assert.equal(r.area, area);
        assert.ok(r.area > 0);
      }
    } finally {
      await predictor.dispose();
      await model.dispose();
    }
  });
});
