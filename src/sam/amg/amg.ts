/**
 * The helpers of segment-anything's automatic mask generator (`segment_anything/utils/amg.py`) as pure functions,
 * with the reference's integer, rounding and float32 conventions. The pipeline that uses them is `generator.ts`.
 *
 * Conventions, stated once:
 * - Boxes are `x1, y1, x2, y2` with INCLUSIVE pixel maxima when they come from a mask (`batchedMaskToBox`: a one-pixel
 *   mask at (3, 5) has box `[3, 5, 3, 5]`), so a record's XYWH `bbox` is one short of the pixel extent, as the
 *   reference writes it. Crop boxes are `x0, y0, x1, y1` with exclusive ends (`image[y0:y1, x0:x1]`).
 * - Points are flat `(x, y)` pairs: grids in `[0, 1]`, scaled by a crop's `(width, height)` in pixels.
 * - Masks are `core` `Mask`s (row-major, non-zero = inside); RLEs are src/masks/rle.ts `Rle`s (column-major counts
 *   starting with a run of zeros, `size: [h, w]`), which is exactly amg.py's `mask_to_rle_pytorch` output.
 * - Boxes and scores go through NMS as float32, as torchvision's kernel sees them (`boxes.float()`): integer box
 *   coordinates are exact, the overlap `inter / (areaA + areaB - inter)` is rounded to float32 and compared with `>`.
 */
import { SegkitError } from "../../core/errors.js";
import { createMask, type Mask } from "../../core/image.js";
import { connectedComponents } from "../../masks/components.js";
import { type Rle, rleCountsBuilder } from "../../masks/rle.js";
import { stabilityScore } from "../transforms.js";

/**
 * `x1, y1, x2, y2` in pixels, in two conventions as in the reference: a mask's box (`maskToBox`) has inclusive
 * maxima (its last pixel), a crop box (`generateCropBoxes`, `[0, 0, W, H]` for the image) exclusive ones.
 */
export type AmgBox = [number, number, number, number];

/**
 * `build_point_grid`: `n * n` points evenly spaced in `[0, 1]^2`, cell centres `(i + 0.5) / n` computed as numpy's
 * `linspace(1 / (2n), 1 - 1 / (2n), n)`; row-major (x varies fastest). Returns flat `(x, y)` pairs.
 */
export function buildPointGrid(n: number): Float64Array {
  if (!Number.isInteger(n) || n < 1) throw new SegkitError(`points per side must be an integer >= 1, got ${n}`);
  const offset = 1 / (2 * n);
  const stop = 1 - offset;
  const step = (stop - offset) / (n - 1);
  // numpy: start + i * step, the last value set to stop exactly; one point is the start
  const side = Array.from({ length: n }, (_, i) => (n > 1 && i === n - 1 ? stop : n > 1 ? i * step + offset : offset));
  const out = new Float64Array(2 * n * n);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      out[2 * (y * n + x)] = side[x] as number;
      out[2 * (y * n + x) + 1] = side[y] as number;
    }
  }
  return out;
}

/** `build_all_layer_point_grids`: layer `i` (0 = the whole image) has `int(n / scale^i)` points per side. */
export function buildAllLayerPointGrids(n: number, nLayers: number, scalePerLayer: number): Float64Array[] {
  return Array.from({ length: nLayers + 1 }, (_, i) => buildPointGrid(Math.trunc(n / scalePerLayer ** i)));
}

/**
 * `generate_crop_boxes` for an image of `(height, width)`: the whole image (layer 0), then for layer `i` = 1..n a
 * `2^i x 2^i` set of overlapping crops, x0 outer and y0 inner (`itertools.product`), with
 * `overlap = int(ratio * shortSide * 2 / 2^i)`, `cropLen = ceil((overlap * (k - 1) + len) / k)`,
 * `x0 = int((cropW - overlap) * j)` and ends clipped to the image.
 */
export function generateCropBoxes(
  imSize: { height: number; width: number },
  nLayers: number,
  overlapRatio: number,
): { boxes: AmgBox[]; layers: number[] } {
  const { height: h, width: w } = imSize;
  const shortSide = Math.min(h, w);
  const boxes: AmgBox[] = [[0, 0, w, h]];
  const layers = [0];
  const cropLen = (len: number, k: number, overlap: number) => Math.ceil((overlap * (k - 1) + len) / k);
  for (let layer = 0; layer < nLayers; layer++) {
    const k = 2 ** (layer + 1);
    const overlap = Math.trunc(overlapRatio * shortSide * (2 / k));
    const cropW = cropLen(w, k, overlap);
    const cropH = cropLen(h, k, overlap);
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        const x0 = Math.trunc((cropW - overlap) * i);
        const y0 = Math.trunc((cropH - overlap) * j);
        boxes.push([x0, y0, Math.min(x0 + cropW, w), Math.min(y0 + cropH, h)]);
        layers.push(layer + 1);
      }
    }
  }
  return { boxes, layers };
}

/** `batch_iterator` over indices: `[start, end)` ranges of `batchSize` (the last one shorter). */
export function* batchIterator(batchSize: number, length: number): Generator<[number, number]> {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new SegkitError(`batch size must be an integer >= 1, got ${batchSize}`);
  }
  for (let start = 0; start < length; start += batchSize) yield [start, Math.min(start + batchSize, length)];
}

/**
 * `calculate_stability_score` of one logit plane as the reference returns it: the int32 counts divided in float32
 * (`transforms.ts` `stabilityScore`, rounded to float32). NaN when nothing exceeds `threshold - offset`.
 */
export function calculateStabilityScore(logits: ArrayLike<number>, threshold = 0, offset = 1): number {
  return Math.fround(stabilityScore(logits, threshold, offset));
}

/** `batched_mask_to_box` for one mask: inclusive `[minX, minY, maxX, maxY]` of its pixels, `[0, 0, 0, 0]` if empty. */
export function maskToBox(mask: Mask): AmgBox {
  const { width: w, height: h, data } = mask;
  let x1 = w;
  let y1 = h;
  let x2 = -1;
  let y2 = -1;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      if (data[row + x] === 0) continue;
      if (x < x1) x1 = x;
      if (x > x2) x2 = x;
      if (y < y1) y1 = y;
      y2 = y;
    }
  }
  return x2 < 0 ? [0, 0, 0, 0] : [x1, y1, x2, y2];
}

/** `batched_mask_to_box`: one box per mask. */
export function batchedMaskToBox(masks: readonly Mask[]): AmgBox[] {
  return masks.map(maskToBox);
}

/**
 * `is_box_near_crop_edge`: the box (a mask's, inclusive maxima, in the crop's frame) moved to the image frame is
 * within `atol` (inclusive, `torch.isclose` with rtol 0) of a crop edge that is not also an image edge, on any of its
 * 4 coordinates. `cropBox` and `origBox` (the image, `[0, 0, W, H]`) have exclusive maxima: the reference compares
 * the two conventions as they are.
 */
export function isBoxNearCropEdge(box: readonly number[], cropBox: AmgBox, origBox: AmgBox, atol = 20): boolean {
  const b = uncropBox(box, cropBox);
  return b.some((v, i) => {
    const c = Math.fround(cropBox[i] as number);
    const o = Math.fround(origBox[i] as number);
    const f = Math.fround(v);
    return Math.abs(f - c) <= atol && !(Math.abs(f - o) <= atol);
  });
}

/** `uncrop_boxes_xyxy` for one box: adds the crop's `x0, y0`. */
export function uncropBox(box: readonly number[], cropBox: AmgBox): AmgBox {
  const [x0, y0] = cropBox;
  return [(box[0] as number) + x0, (box[1] as number) + y0, (box[2] as number) + x0, (box[3] as number) + y0];
}

/** `uncrop_points`: flat `(x, y)` pairs plus the crop's `x0, y0`. Returns a new array. */
export function uncropPoints(points: ArrayLike<number>, cropBox: AmgBox): Float64Array {
  const out = Float64Array.from(points);
  for (let i = 0; i < out.length; i += 2) {
    out[i] = (out[i] as number) + cropBox[0];
    out[i + 1] = (out[i + 1] as number) + cropBox[1];
  }
  return out;
}

/** `uncrop_masks` for one mask: the crop-sized mask zero-padded to the image's `(origH, origW)` at `x0, y0`. */
export function uncropMask(mask: Mask, cropBox: AmgBox, origH: number, origW: number): Mask {
  const [x0, y0] = cropBox;
  if (x0 === 0 && y0 === 0 && mask.width === origW && mask.height === origH) return mask;
  checkInside(mask, cropBox, origH, origW);
  const out = createMask(origW, origH);
  for (let y = 0; y < mask.height; y++) {
    out.data.set(mask.data.subarray(y * mask.width, (y + 1) * mask.width), (y + y0) * origW + x0);
  }
  return out;
}

/**
 * The RLE of `uncropMask(mask, cropBox, origH, origW)` (`mask_to_rle_pytorch` of the padded mask) without building
 * the padded mask: columns outside the crop are one zero run each, columns inside add zeros above and below.
 */
export function uncroppedMaskToRle(mask: Mask, cropBox: AmgBox, origH: number, origW: number): Rle {
  checkInside(mask, cropBox, origH, origW);
  const [x0, y0] = cropBox;
  const { width: w, height: h, data } = mask;
  const { add, counts } = rleCountsBuilder();
  add(false, x0 * origH);
  for (let x = 0; x < w; x++) {
    add(false, y0);
    for (let y = 0; y < h; y++) add(data[y * w + x] !== 0, 1);
    add(false, origH - y0 - h);
  }
  add(false, (origW - x0 - w) * origH);
  return { size: [origH, origW], counts: counts() };
}

function checkInside(mask: Mask, cropBox: AmgBox, origH: number, origW: number): void {
  const [x0, y0] = cropBox;
  if (x0 < 0 || y0 < 0 || x0 + mask.width > origW || y0 + mask.height > origH) {
    throw new SegkitError(
      `a ${mask.width}x${mask.height} mask at (${x0}, ${y0}) does not fit in a ${origW}x${origH} image`,
    );
  }
}

/** `box_xyxy_to_xywh`: `[x1, y1, x2 - x1, y2 - y1]`. */
export function boxXYXYToXYWH(box: readonly number[]): AmgBox {
  const [x1, y1, x2, y2] = box as AmgBox;
  return [x1, y1, x2 - x1, y2 - y1];
}

/**
 * torchvision `batched_nms`: greedy NMS per category (all one category when `categories` is absent). Boxes are
 * taken in decreasing score order (ties by index: the kernel's stable sort); a box is dropped when its IoU with a
 * kept box of its category is `> iouThreshold`, IoU `inter / (areaA + areaB - inter)` with areas `(x2-x1)*(y2-y1)`
 * in float32 (so boxes of zero area never suppress). Returns the kept indices, by decreasing score.
 */
export function batchedNms(
  boxes: readonly (readonly number[])[],
  scores: ArrayLike<number>,
  iouThreshold: number,
  categories?: ArrayLike<number>,
): number[] {
  if (scores.length !== boxes.length || (categories && categories.length !== boxes.length)) {
    throw new SegkitError(`NMS needs one score (and category) per box: ${boxes.length} boxes, ${scores.length} scores`);
  }
  const f = boxes.map((b) => b.map(Math.fround) as AmgBox);
  const area = f.map(([x1, y1, x2, y2]) => Math.fround((x2 - x1) * (y2 - y1)));
  const order = Array.from(boxes.keys()).sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
  const suppressed = new Uint8Array(boxes.length);
  const keep: number[] = [];
  for (const [k, i] of order.entries()) {
    if (suppressed[i]) continue;
    keep.push(i);
    const [ax1, ay1, ax2, ay2] = f[i] as AmgBox;
    for (let m = k + 1; m < order.length; m++) {
      const j = order[m] as number;
      if (suppressed[j] || (categories && categories[j] !== categories[i])) continue;
      const [bx1, by1, bx2, by2] = f[j] as AmgBox;
      const w = Math.max(0, Math.fround(Math.min(ax2, bx2) - Math.max(ax1, bx1)));
      const h = Math.max(0, Math.fround(Math.min(ay2, by2) - Math.max(ay1, by1)));
      const inter = Math.fround(w * h);
      const iou = Math.fround(inter / Math.fround(Math.fround((area[i] as number) + (area[j] as number)) - inter));
      if (iou > iouThreshold) suppressed[j] = 1;
    }
  }
  return keep;
}

/**
 * `remove_small_regions`: `"holes"` fills the 8-connected components of the background smaller than `areaThresh`
 * (the background touching the border included, as the reference); `"islands"` removes the foreground components
 * smaller than `areaThresh`, keeping the largest (first in label order on ties) when all are small. `changed` is the
 * reference's flag: true whenever some component is small, even if the kept mask ends up the same.
 */
export function removeSmallRegions(
  mask: Mask,
  areaThresh: number,
  mode: "holes" | "islands",
): { mask: Mask; changed: boolean } {
  const holes = mode === "holes";
  const working = createMask(mask.width, mask.height);
  for (let i = 0; i < working.data.length; i++) working.data[i] = (mask.data[i] !== 0) !== holes ? 1 : 0;
  const { labels, sizes } = connectedComponents(working);
  const small = new Set<number>();
  sizes.forEach((s, k) => {
    if (s < areaThresh) small.add(k + 1);
  });
  if (small.size === 0) return { mask, changed: false };
  // holes: keep label 0 (the mask) and the small holes; islands: keep the labels that are neither 0 nor small
  let fill = (label: number) => label === 0 || small.has(label);
  if (!holes) {
    if (small.size === sizes.length) {
      let largest = 1;
      sizes.forEach((s, k) => {
        if (s > (sizes[largest - 1] as number)) largest = k + 1;
      });
      fill = (label) => label === largest;
    } else {
      fill = (label) => label !== 0 && !small.has(label);
    }
  }
  const out = createMask(mask.width, mask.height);
  for (let i = 0; i < out.data.length; i++) out.data[i] = fill(labels[i] as number) ? 1 : 0;
  return { mask: out, changed: true };
}
