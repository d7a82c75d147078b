/**
 * A fused panoptic map (`fusePanoptic`) as COCO panoptic's `segments_info`: per segment its id, category id,
 * `iscrowd` 0, `bbox` [x, y, w, h] of its pixels (pycocotools' `toBbox`: w = last column - first column + 1) and
 * `area` (its pixel count), in the segments' order; a segment with no pixels left (an instance wholly covered by
 * better ones kept with an overlap threshold of 1, as Detectron2 keeps it) is left out, as COCO panoptic lists only
 * the ids its PNG holds. The PNG beside it is the id map RGB-encoded
 * (`encodeIdMap(map, "rgb")`: id = R + 256 G + 256^2 B).
 */

import { SegkitError } from "../core/errors.js";
import type { FusedSegment } from "./panoptic-fusion.js";

/** One entry of COCO panoptic's `segments_info`. */
export interface PanopticSegmentInfo {
  id: number;
  category_id: number;
  iscrowd: 0;
  bbox: [number, number, number, number];
  area: number;
}

/**
 * `segments_info` of a fused map (`ids` row-major, `width` wide): `categoryOf` names each segment's category id (a
 * thing's is its `categoryId`; a stuff class needs mapping). Area and box are counted from `ids`.
 */
export function panopticSegmentsInfo(
  fused: { ids: Uint32Array; segments: readonly FusedSegment[] },
  width: number,
  categoryOf: (segment: FusedSegment) => number,
): PanopticSegmentInfo[] {
  const { ids, segments } = fused;
  if (width < 1 || ids.length % width !== 0) {
    throw new SegkitError(`a panoptic map of ${ids.length} pixels is not ${width} pixels wide`);
  }
  const at = new Map(segments.map((s, k) => [s.id, k]));
  const n = segments.length;
  const area = new Float64Array(n);
  const box = Array.from({ length: n }, () => [Infinity, Infinity, -1, -1]); // x1, y1, x2, y2 inclusive
  for (let p = 0; p < ids.length; p++) {
    const id = ids[p] as number;
    if (id === 0) continue;
    const k = at.get(id);
    if (k === undefined) throw new SegkitError(`segment id ${id} is in the map but not among the segments`);
    area[k] = (area[k] as number) + 1;
    const b = box[k] as number[];
    const x = p % width;
    const y = (p - x) / width;
    if (x < (b[0] as number)) b[0] = x;
    if (y < (b[1] as number)) b[1] = y;
    if (x > (b[2] as number)) b[2] = x;
    if (y > (b[3] as number)) b[3] = y;
  }
  const out: PanopticSegmentInfo[] = [];
  for (const [k, s] of segments.entries()) {
    const [x1, y1, x2, y2] = box[k] as [number, number, number, number];
    const a = area[k] as number;
    if (a > 0)
      out.push({ id: s.id, category_id: categoryOf(s), iscrowd: 0, bbox: [x1, y1, x2 - x1 + 1, y2 - y1 + 1], area: a });
  }
  return out;
}
