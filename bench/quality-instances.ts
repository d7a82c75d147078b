/**
 * Instance scoring for bench/quality.ts: a trained instance model (`segkit train --task instance`: background /
 * boundary / interior maps split by `targetsToInstances`) run on held-out images as an `InstanceModel`, and its
 * instances scored against the dataset's with segkit's COCOeval (equal to pycocotools'), segm and bbox.
 */
import { join } from "node:path";
import { createMask, type Mask } from "../src/core/image.js";
import type { Dataset } from "../src/data/dataset.js";
import {
  COCO_STAT_NAMES,
  type CocoStatName,
  cocoEvalDetections,
  cocoEvalGroundTruth,
  cocoEvaluate,
} from "../src/eval/coco-eval.js";
import { instancesOverlayPng } from "../src/instances/overlay.js";
import { createSegkitInstanceModel } from "../src/instances/segkit-model.js";
import { writeFileAtomic } from "../src/io/fs.js";
import { type Instances, instancesToCoco, maskBox } from "../src/masks/instances.js";
import { rleDecode, rleEncode } from "../src/masks/rle.js";

export type CocoStats = Record<CocoStatName, number>;

/** The twelve COCOeval numbers, segm and bbox, of predicted against true instances, one image per pair. */
export function cocoScores(
  pairs: readonly { truth: Instances; predicted: Instances }[],
  categories: readonly { id: number; name: string }[],
): { segm: CocoStats; bbox: CocoStats; groundTruths: number; detections: number } {
  const images = pairs.map((p, i) => ({ id: i + 1, width: p.truth.width, height: p.truth.height }));
  const annotations = pairs
    .flatMap((p, i) => instancesToCoco(p.truth).map(({ score: _, ...a }) => ({ ...a, image_id: i + 1 })))
    .map((a, k) => ({ ...a, id: k + 1 }));
  const results = pairs.flatMap((p, i) => instancesToCoco(p.predicted).map((a) => ({ ...a, image_id: i + 1 })));
  const gt = cocoEvalGroundTruth({ images, categories, annotations });
  const dt = cocoEvalDetections(results, gt);
  const stats = (t: "segm" | "bbox") => {
    const s = cocoEvaluate(gt, dt, t).stats;
    return Object.fromEntries(COCO_STAT_NAMES.map((n, k) => [n, s[k] as number])) as CocoStats;
  };
  return { segm: stats("segm"), bbox: stats("bbox"), groundTruths: annotations.length, detections: results.length };
}

/**
 * `inst` cut into `grid` x `grid` equal parts (row-major; the image's sides must divide), each part an image of its
 * own holding the instances' pieces inside it (pieces with no pixel dropped; scores and classes kept, boxes the
 * pieces' extents). ISBI's slices hold about 125 cells, more than COCOeval's 100 detections per image: scored as
 * quarters, no image needs more.
 */
export function cutInstances(inst: Instances, grid: number): Instances[] {
  const w = inst.width / grid;
  const h = inst.height / grid;
  if (!Number.isInteger(w) || !Number.isInteger(h))
    throw new Error(`${inst.width}x${inst.height} does not cut in ${grid}`);
  const full = inst.masks.map(rleDecode);
  const parts: Instances[] = [];
  for (let r = 0; r < grid; r++) {
    for (let c = 0; c < grid; c++) {
      const kept: { k: number; piece: Mask }[] = [];
      for (const [k, m] of full.entries()) {
        const piece = createMask(w, h);
        for (let y = 0; y < h; y++) {
          const from = (r * h + y) * inst.width + c * w;
          piece.data.set(m.data.subarray(from, from + w), y * w);
        }
        if (piece.data.includes(1)) kept.push({ k, piece });
      }
      const masks = kept.map(({ piece }) => rleEncode(piece));
      parts.push({
        width: w,
        height: h,
        masks,
        boxes: masks.map(maskBox),
        classIds: kept.map(({ k }) => inst.classIds[k] as number),
        scores: kept.map(({ k }) => inst.scores[k] as number),
      });
    }
  }
  return parts;
}

/**
 * The instance model in checkpoint `dir` (`tile`: sliding windows at the image's scale) run on every sample of `test`
 * (an instance dataset), scored with `cocoScores`; the overlay of the first `overlays` samples' predictions is written
 * to `overlayDir` as `overlay-<id>.png`. `grid`: also scored with every image cut in grid x grid parts (`cutInstances`).
 */
export async function scoreInstanceModel(
  dir: string,
  test: Dataset,
  o: { threads: number; tile: boolean; overlayDir: string; overlays: number; grid?: number },
) {
  const model = await createSegkitInstanceModel(dir, { threads: o.threads, tile: o.tile });
  const pairs: { truth: Instances; predicted: Instances }[] = [];
  const overlays: string[] = [];
  const started = performance.now();
  try {
    for (let i = 0; i < test.length; i++) {
      const s = await test.get(i);
      if (!s.instances) throw new Error(`sample ${s.id} has no instances`);
      const predicted = await model.predict(s.image);
      pairs.push({ truth: s.instances, predicted });
      if (i < o.overlays) {
        const file = join(o.overlayDir, `overlay-${s.id}.png`);
        await writeFileAtomic(file, await instancesOverlayPng(s.image, predicted, model.categories));
        overlays.push(file);
      }
    }
  } finally {
    await model.dispose();
  }
  const predictSeconds = (performance.now() - started) / 1000;
  const { grid } = o;
  const cut = grid
    ? pairs.flatMap((p) => {
        const predicted = cutInstances(p.predicted, grid);
        return cutInstances(p.truth, grid).map((truth, k) => ({ truth, predicted: predicted[k] as Instances }));
      })
    : null;
  return {
    ...cocoScores(pairs, model.categories),
    images: pairs.length,
    predictSeconds,
    overlays,
    ...(cut && grid ? { cut: { grid, images: cut.length, ...cocoScores(cut, model.categories) } } : {}),
  };
}
