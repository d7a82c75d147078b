/**
 * Automatic mask generation ("segment everything"): segment-anything's `SamAutomaticMaskGenerator.generate` on a
 * `SamPredictor`, stage for stage (the helpers are in `amg.ts`):
 * 1. crop boxes: the whole image, plus `cropNLayers` layers of overlapping crops;
 * 2. per crop: `setImage` on the crop, a point grid scaled to the crop, one decoder call per point (3 multimask
 *    candidates each; 1 from a 1-mask decoder such as SAM-HQ's) in batches of `pointsPerBatch`; per candidate the
 *    filters predicted IoU `> predIouThresh` (on the decoder's score, before anything is upscaled: only candidates
 *    that pass it are upscaled to the crop), stability score `>= stabilityScoreThresh` (logits at 0 +-
 *    `stabilityScoreOffset`), and box not within 20 px of a crop edge that is not an image edge; survivors become
 *    RLEs in the image frame; then box NMS within the crop by predicted IoU (`boxNmsThresh`);
 * 3. across crops (when there are several): box NMS preferring smaller crops (score `1 / crop area`, `cropNmsThresh`);
 * 4. with `minMaskRegionArea > 0`: holes and islands smaller than it removed, then NMS again preferring unchanged
 *    masks (threshold `max(boxNmsThresh, cropNmsThresh)`);
 * 5. records as the reference writes them (snake_case keys, `bbox` and `crop_box` XYWH, `point_coords` in image pixels).
 * Thresholds compare as the reference's float32 tensors do (the threshold rounded to float32). Records come in the
 * reference's order (that of the last NMS: decreasing score).
 *
 * Memory: candidates live as RLEs (column-major counts, about 2 numbers per column a mask crosses, so a blob
 * spanning c columns costs about 16 c bytes; 1,000 masks of 1,000 columns each about 16 MB), never as full-size
 * arrays. The transient per candidate is `upscaleToRle`'s horizontal pass, 256 x crop width float64 (4 MB for a
 * 2048-wide crop, kept between calls), plus the predictor's embedding caches (4 MB per image at 1024 / 16). Only
 * `outputMode: "binary_mask"` builds one full-size mask per record, at the end. Measured (bench/amg): 32 x 32 grid,
 * SAM's standard decoder, reference thresholds: peak RSS 135 MB above the RSS before the call at 1024 x 768, 143 MB
 * at 2048 x 1536 (the reference pipeline in PyTorch: 1.9 and 4.1 GB; it upscales 64 x 3 candidates at a time).
 */
import { SegkitError } from "../../core/errors.js";
import type { Mask, RgbImage } from "../../core/image.js";
import { type ImageSource, readImage } from "../../io/image.js";
import { cropImage } from "../../io/resize.js";
import { type CompressedRle, type Rle, rleArea, rleDecode, rleEncode, rleToString } from "../../masks/rle.js";
import type { SamModel } from "../model.js";
import { upscaleToRle } from "../postprocess.js";
import { createSamPredictor, type SamPredictor } from "../predictor.js";
import {
  type AmgBox,
  batchedNms,
  batchIterator,
  boxXYXYToXYWH,
  buildAllLayerPointGrids,
  generateCropBoxes,
  isBoxNearCropEdge,
  maskToBox,
  removeSmallRegions,
  uncropBox,
} from "./amg.js";

/** The reference's `output_mode`s: a `Mask` (0/1), `Rle` (uncompressed counts) or pycocotools' counts string. */
export const AMG_OUTPUT_MODES = ["binary_mask", "uncompressed_rle", "coco_rle"] as const;
export type AmgOutputMode = (typeof AMG_OUTPUT_MODES)[number];

export interface AmgOptions {
  /** Points per side of the layer-0 grid (`points_per_side`); ignored when `pointGrids` is given. */
  pointsPerSide?: number;
  /** Explicit grids in `[0, 1]^2` (flat `(x, y)` pairs), one per crop layer (`point_grids`). */
  pointGrids?: readonly Float64Array[];
  /** Points per progress / cancellation step (`points_per_batch`); the decoder runs one point at a time. */
  pointsPerBatch?: number;
  predIouThresh?: number;
  stabilityScoreThresh?: number;
  stabilityScoreOffset?: number;
  boxNmsThresh?: number;
  cropNLayers?: number;
  cropNmsThresh?: number;
  cropOverlapRatio?: number;
  cropNPointsDownscaleFactor?: number;
  minMaskRegionArea?: number;
  /** Form of `segmentation`. The reference defaults to `binary_mask`; segkit to RLE, which stays small. */
  outputMode?: AmgOutputMode;
  /** Called after every batch of points. */
  onProgress?: (progress: AmgProgress) => void;
  /** Aborting stops between decoder calls with the signal's reason. */
  signal?: AbortSignal;
}

export interface AmgProgress {
  /** Crop being processed (0 = the whole image) and how many there are. */
  crop: number;
  crops: number;
  /** Points of this crop done, and its grid size. */
  points: number;
  pointsInCrop: number;
  /** Candidates kept so far in this crop (before its NMS). */
  masks: number;
}

/** One mask, as `SamAutomaticMaskGenerator.generate` writes it. */
export interface AmgRecord {
  segmentation: Mask | Rle | CompressedRle;
  area: number;
  /** XYWH from the inclusive XYXY box (width = maxX - minX). */
  bbox: AmgBox;
  predicted_iou: number;
  /** The grid point that prompted the mask, `[[x, y]]` in image pixels. */
  point_coords: [[number, number]];
  stability_score: number;
  /** The crop the mask came from, XYWH. */
  crop_box: AmgBox;
}

type ResolvedAmgOptions = Required<Omit<AmgOptions, "onProgress" | "signal" | "pointGrids">> & {
  pointGrids: readonly Float64Array[] | undefined;
};

/** `SamAutomaticMaskGenerator`'s defaults; only `outputMode` differs (see `AmgOptions.outputMode`). */
export const DEFAULT_AMG_OPTIONS: Readonly<Omit<ResolvedAmgOptions, "pointGrids">> = {
  pointsPerSide: 32,
  pointsPerBatch: 64,
  predIouThresh: 0.88,
  stabilityScoreThresh: 0.95,
  stabilityScoreOffset: 1,
  boxNmsThresh: 0.7,
  cropNLayers: 0,
  cropNmsThresh: 0.7,
  cropOverlapRatio: 512 / 1500,
  cropNPointsDownscaleFactor: 1,
  minMaskRegionArea: 0,
  outputMode: "uncompressed_rle",
};

/** Merges `DEFAULT_AMG_OPTIONS` into a copy of `options` and rejects values the reference would not run with. */
export function validateAmgOptions(options: AmgOptions = {}): ResolvedAmgOptions {
  const { onProgress: _p, signal: _s, ...rest } = options;
  const o: ResolvedAmgOptions = { ...DEFAULT_AMG_OPTIONS, pointGrids: undefined, ...rest };
  const int = (name: keyof ResolvedAmgOptions, min: number) => {
    const v = o[name];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
      throw new SegkitError(`${name} must be an integer >= ${min}, got ${String(v)}`);
    }
  };
  const unit = (name: keyof ResolvedAmgOptions, max = 1) => {
    const v = o[name];
    if (typeof v !== "number" || !(v >= 0 && v <= max)) {
      throw new SegkitError(`${name} must be a number in [0, ${max}], got ${String(v)}`);
    }
  };
  int("pointsPerBatch", 1);
  int("cropNLayers", 0);
  int("cropNPointsDownscaleFactor", 1);
  for (const name of ["predIouThresh", "stabilityScoreThresh", "boxNmsThresh", "cropNmsThresh"] as const) unit(name);
  unit("cropOverlapRatio", 0.5);
  if (!(o.stabilityScoreOffset >= 0)) {
    throw new SegkitError(`stabilityScoreOffset must be >= 0, got ${o.stabilityScoreOffset}`);
  }
  if (!(o.minMaskRegionArea >= 0)) throw new SegkitError(`minMaskRegionArea must be >= 0, got ${o.minMaskRegionArea}`);
  if (!AMG_OUTPUT_MODES.includes(o.outputMode)) {
    throw new SegkitError(`unknown outputMode "${o.outputMode}"; valid: ${AMG_OUTPUT_MODES.join(", ")}`);
  }
  if (o.pointGrids) {
    if (o.pointGrids.length !== o.cropNLayers + 1) {
      throw new SegkitError(
        `pointGrids needs one grid per crop layer (${o.cropNLayers + 1} with cropNLayers ${o.cropNLayers}), got ${o.pointGrids.length}`,
      );
    }
  } else {
    int("pointsPerSide", 1);
    if (Math.trunc(o.pointsPerSide / o.cropNPointsDownscaleFactor ** o.cropNLayers) < 1) {
      throw new SegkitError(
        `pointsPerSide ${o.pointsPerSide} leaves no points in crop layer ${o.cropNLayers} (downscale ${o.cropNPointsDownscaleFactor})`,
      );
    }
  }
  return o;
}

/** A candidate mask between stages: its RLE in the image frame and its box (XYXY, inclusive) in the image frame. */
interface Candidate {
  rle: Rle;
  box: AmgBox;
  iou: number;
  stability: number;
  point: [number, number];
  cropBox: AmgBox;
}

/**
 * All masks of `image` (pixels, a file or encoded bytes). `source` is a predictor (its current image is replaced)
 * or a model (a predictor is made for the call and disposed after; the model stays open).
 */
export async function generateMasks(
  source: SamPredictor | SamModel,
  image: RgbImage | ImageSource,
  options: AmgOptions = {},
): Promise<AmgRecord[]> {
  const o = validateAmgOptions(options);
  const { signal, onProgress } = options;
  const img = typeof image === "string" || image instanceof Uint8Array ? await readImage(image) : image;
  const owned = !("setImage" in source);
  const predictor = owned ? await createSamPredictor(source, { memoryCache: 1 }) : source;
  try {
    const { height: H, width: W } = img;
    const grids = o.pointGrids ?? buildAllLayerPointGrids(o.pointsPerSide, o.cropNLayers, o.cropNPointsDownscaleFactor);
    // 1. crop boxes
    const crops = generateCropBoxes({ height: H, width: W }, o.cropNLayers, o.cropOverlapRatio);
    let data: Candidate[] = [];
    for (const [c, cropBox] of crops.boxes.entries()) {
      signal?.throwIfAborted();
      // 2. one crop: embeddings, then the grid's points in batches, then NMS within the crop
      const [x0, y0, x1, y1] = cropBox;
      const full = x0 === 0 && y0 === 0 && x1 === W && y1 === H;
      await predictor.setImage(full ? img : cropImage(img, { x: x0, y: y0, width: x1 - x0, height: y1 - y0 }));
      const grid = grids[crops.layers[c] as number] as Float64Array;
      const n = grid.length / 2;
      const inCrop: Candidate[] = [];
      const cropFrame: AmgBox[] = [];
      for (const [start, end] of batchIterator(o.pointsPerBatch, n)) {
        for (let p = start; p < end; p++) {
          signal?.throwIfAborted();
          const x = (grid[2 * p] as number) * (x1 - x0);
          const y = (grid[2 * p + 1] as number) * (y1 - y0);
          const kept = await processPoint(predictor, { x, y }, cropBox, { height: H, width: W }, o);
          for (const k of kept) {
            cropFrame.push(k.box);
            inCrop.push({ ...k, box: uncropBox(k.box, cropBox), point: [x + x0, y + y0], cropBox });
          }
        }
        onProgress?.({ crop: c, crops: crops.boxes.length, points: end, pointsInCrop: n, masks: inCrop.length });
      }
      const keep = batchedNms(
        cropFrame,
        inCrop.map((d) => d.iou),
        o.boxNmsThresh,
      );
      data.push(...keep.map((i) => inCrop[i] as Candidate));
    }
    // 3. duplicates between crops: prefer masks from smaller crops
    if (crops.boxes.length > 1) {
      const scores = data.map(({ cropBox: [a, b, c, d] }) => Math.fround(1 / ((c - a) * (d - b))));
      const keep = batchedNms(
        data.map((d) => d.box),
        scores,
        o.cropNmsThresh,
      );
      data = keep.map((i) => data[i] as Candidate);
    }
    // 4. small holes and islands, then NMS preferring the masks that did not change
    if (o.minMaskRegionArea > 0) {
      data = removeSmallRegionsAndNms(data, o.minMaskRegionArea, Math.max(o.boxNmsThresh, o.cropNmsThresh));
    }
    // 5. records
    return data.map((d) => ({
      segmentation:
        o.outputMode === "binary_mask" ? rleDecode(d.rle) : o.outputMode === "coco_rle" ? rleToString(d.rle) : d.rle,
      area: rleArea(d.rle),
      bbox: boxXYXYToXYWH(d.box),
      predicted_iou: d.iou,
      point_coords: [d.point],
      stability_score: d.stability,
      crop_box: boxXYXYToXYWH(d.cropBox),
    }));
  } finally {
    if (owned) await predictor.dispose();
  }
}

/**
 * `_process_batch` for one point `(x, y)` in the crop's pixels: the 3 multimask candidates, filtered by predicted
 * IoU, stability and the crop-edge rule. Boxes are in the crop's frame; RLEs in the image's.
 */
async function processPoint(
  predictor: SamPredictor,
  point: { x: number; y: number },
  cropBox: AmgBox,
  orig: { height: number; width: number },
  o: ResolvedAmgOptions,
): Promise<Omit<Candidate, "point" | "cropBox">[]> {
  const pred = await predictor.decode({ points: [{ ...point, label: 1 }], multimask: true });
  const out: Omit<Candidate, "point" | "cropBox">[] = [];
  for (let k = 0; k < pred.scores.length; k++) {
    const iou = pred.scores[k] as number;
    if (o.predIouThresh > 0 && !(iou > Math.fround(o.predIouThresh))) continue;
    // only candidates that pass the score filter are upscaled (the reference upscales all, then filters), and only
    // over the rows that can hold the mask (`upscaleToRle`)
    const frame = { x: cropBox[0], y: cropBox[1], height: orig.height, width: orig.width };
    const c = upscaleToRle(pred.lowResLogits.data, pred.maskFrame, pred.originalSize, {
      channel: k,
      offset: o.stabilityScoreOffset,
      frame,
    });
    const stability = Math.fround(c.intersections / c.unions);
    if (o.stabilityScoreThresh > 0 && !(stability >= Math.fround(o.stabilityScoreThresh))) continue;
    if (isBoxNearCropEdge(c.box, cropBox, [0, 0, orig.width, orig.height])) continue;
    out.push({ rle: c.rle, box: c.box, iou, stability });
  }
  return out;
}

/**
 * `postprocess_small_regions`, one dense mask at a time: holes then islands below `minArea` removed; NMS on the new
 * boxes with score 1 for unchanged and 0 for changed masks; kept changed masks take their new RLE and box.
 */
function removeSmallRegionsAndNms(data: readonly Candidate[], minArea: number, nmsThresh: number): Candidate[] {
  if (data.length === 0) return [];
  const updated = data.map((d) => {
    const holes = removeSmallRegions(rleDecode(d.rle), minArea, "holes");
    const islands = removeSmallRegions(holes.mask, minArea, "islands");
    const changed = holes.changed || islands.changed;
    return { box: maskToBox(islands.mask), changed, rle: changed ? rleEncode(islands.mask) : d.rle };
  });
  const keep = batchedNms(
    updated.map((u) => u.box),
    updated.map((u) => (u.changed ? 0 : 1)),
    nmsThresh,
  );
  return keep.map((i) => {
    const d = data[i] as Candidate;
    const u = updated[i] as (typeof updated)[number];
    return u.changed ? { ...d, rle: u.rle, box: u.box } : d;
  });
}
