/**
 * Panoptic fusion as Panoptic FPN (Detectron2's `combine_semantic_and_instance_outputs`, read and followed rule by rule) does it: instances ("things")
 * first, best score first, each keeping only its pixels not yet taken (dropped when more than `overlapThreshold` of
 * it is taken, or its score is under `scoreThreshold`); then the semantic map's classes ("stuff") fill what is left,
 * each class one segment, dropped when smaller than `stuffAreaThreshold` pixels. The semantic map's `thingClasses`
 * (Panoptic FPN's class 0: "some thing") never become segments. Instances and map are the same image's (same size).
 */

import { SegkitError } from "../core/errors.js";
import type { Mask } from "../core/image.js";
import { countInstances, type Instances } from "./instances.js";
import { rleDecode } from "./rle.js";

export interface PanopticFusionOptions {
  /** Instances scoring under this are left out (default 0.5). */
  scoreThreshold?: number;
  /** An instance whose pixels are taken by better ones beyond this fraction is left out (default 0.5). */
  overlapThreshold?: number;
  /** Stuff regions of fewer pixels are left out (default 4096, Detectron2's `stuff_area_thresh`). */
  stuffAreaThreshold?: number;
  /** Semantic classes that are not stuff (default [0]). */
  thingClasses?: readonly number[];
}

/** A segment of the fused map: a thing (an instance, by its category id) or stuff (a semantic class index). */
export type FusedSegment =
  | { id: number; isthing: true; categoryId: number; area: number; score: number; instance: number }
  | { id: number; isthing: false; classIndex: number; area: number };

/** The fused map (`ids[p]` = segment id, 0 none) and its segments. */
export function fusePanoptic(
  instances: Instances,
  semantic: Mask,
  options: PanopticFusionOptions = {},
): { ids: Uint32Array; segments: FusedSegment[] } {
  const { scoreThreshold = 0.5, overlapThreshold = 0.5, stuffAreaThreshold = 4096, thingClasses = [0] } = options;
  countInstances(instances);
  if (instances.width !== semantic.width || instances.height !== semantic.height) {
    throw new SegkitError(
      `instances of a ${instances.width}x${instances.height} image and a ${semantic.width}x${semantic.height} semantic map`,
    );
  }
  const n = semantic.width * semantic.height;
  const ids = new Uint32Array(n);
  const segments: FusedSegment[] = [];
  const order = instances.scores
    .map((_, k) => k)
    .sort((a, b) => (instances.scores[b] ?? 0) - (instances.scores[a] ?? 0));
  for (const k of order) {
    const score = instances.scores[k] as number;
    if (score < scoreThreshold) break;
    const mask = rleDecode(instances.masks[k] as Parameters<typeof rleDecode>[0]).data;
    let area = 0;
    let taken = 0;
    for (let p = 0; p < n; p++) {
      if (!mask[p]) continue;
      area++;
      if (ids[p] !== 0) taken++;
    }
    if (area === 0 || taken / area > overlapThreshold) continue;
    const id = segments.length + 1;
    for (let p = 0; p < n; p++) if (mask[p] && ids[p] === 0) ids[p] = id;
    segments.push({
      id,
      isthing: true,
      categoryId: instances.classIds[k] as number,
      area: area - taken,
      score,
      instance: k,
    });
  }
  const counts = new Map<number, number>();
  for (let p = 0; p < n; p++) {
    if (ids[p] !== 0) continue;
    const c = semantic.data[p] as number;
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  for (const c of [...counts.keys()].sort((a, b) => a - b)) {
    const area = counts.get(c) as number;
    if (thingClasses.includes(c) || area < stuffAreaThreshold) continue;
    const id = segments.length + 1;
    for (let p = 0; p < n; p++) if (ids[p] === 0 && semantic.data[p] === c) ids[p] = id;
    segments.push({ id, isthing: false, classIndex: c, area });
  }
  return { ids, segments };
}
