/**
 * Instances as a class map a semantic model can learn, and back: the CPU-sized route to instance segmentation
 * (the Pet trimap's encoding, used by the classic U-Net for touching cells). Classes:
 * 0 background, 1 boundary (an instance's pixels within `boundary` px of its edge, where touching objects meet),
 * then one interior class per category (`2 + k` for `categoryIds[k]`). Crowd regions are `ignoreIndex`.
 *
 * Back (`targetsToInstances`): each 4-connected component of one interior class seeds an instance, which grows into
 * the boundary pixels around it (breadth first, all seeds at once, a contested pixel to the first seed to reach
 * it); its score is the mean probability of its interior class over the seed when probabilities are given.
 */
import { createMask, type Mask } from "../core/image.js";
import { connectedComponents } from "./components.js";
import { type Instances, maskBox } from "./instances.js";
import { type Rle, rleDecode, rleEncodeLabels } from "./rle.js";

export const BOUNDARY_CLASS = 1;
const FIRST_INTERIOR = 2;

/** Class names of the targets: background, boundary, then each category's interior. */
export function instanceTargetClasses(categoryNames: readonly string[]): string[] {
  return ["background", "boundary", ...categoryNames];
}

/**
 * The target class map of `inst`: interior of instance k = its pixels farther than `boundary` px (4-neighbour
 * steps) from a pixel outside it; the rest of it is boundary. Later instances are painted over earlier ones.
 * Categories not in `categoryIds` are left as background.
 */
export function instancesToTargets(
  inst: Instances,
  categoryIds: readonly number[],
  options: { boundary?: number; ignoreIndex?: number } = {},
): Mask {
  const { boundary = 1, ignoreIndex = 255 } = options;
  const { width: w, height: h } = inst;
  const out = createMask(w, h);
  for (const [k, rle] of inst.masks.entries()) {
    const m = rleDecode(rle).data;
    if (inst.iscrowd?.[k]) {
      for (let p = 0; p < m.length; p++) if (m[p]) out.data[p] = ignoreIndex;
      continue;
    }
    const c = categoryIds.indexOf(inst.classIds[k] as number);
    if (c < 0) continue;
    const inner = erode(m, w, h, boundary);
    for (let p = 0; p < m.length; p++) {
      if (m[p]) out.data[p] = inner[p] ? FIRST_INTERIOR + c : BOUNDARY_CLASS;
    }
  }
  return out;
}

/** `m` eroded `steps` times by the 4-neighbourhood (outside the image counts as inside: no edge at the border). */
function erode(m: Uint8Array, w: number, h: number, steps: number): Uint8Array {
  let cur = m;
  for (let s = 0; s < steps; s++) {
    const next = new Uint8Array(cur.length);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const p = y * w + x;
        next[p] =
          cur[p] &&
          (x === 0 || cur[p - 1]) &&
          (x === w - 1 || cur[p + 1]) &&
          (y === 0 || cur[p - w]) &&
          (y === h - 1 || cur[p + w])
            ? 1
            : 0;
      }
    }
    cur = next;
  }
  return cur;
}

export interface TargetsToInstancesOptions {
  /** `[classes, H, W]` softmax probabilities behind `classes` (scores = mean interior probability), else scores 1. */
  probs?: Float32Array;
  /** Seeds (interior components) smaller than this are dropped (default 4 px). */
  minSeedArea?: number;
}

/** Instances from a predicted target class map (see the module comment); category ids from `categoryIds`. */
export function targetsToInstances(
  classes: Mask,
  categoryIds: readonly number[],
  options: TargetsToInstancesOptions = {},
): Instances {
  const { probs, minSeedArea = 4 } = options;
  const { width: w, height: h, data } = classes;
  const n = w * h;
  const owner = new Int32Array(n).fill(-1);
  const seeds: { classId: number; score: number }[] = [];
  const queue: number[] = [];
  for (const [k, id] of categoryIds.entries()) {
    const value = FIRST_INTERIOR + k;
    const { labels, sizes } = connectedComponents(classes, { connectivity: 4, value });
    const first = seeds.length;
    const kept = sizes.map((size) => (size >= minSeedArea ? seeds.push({ classId: id, score: 0 }) - 1 : -1));
    const sums = new Float64Array(sizes.length);
    for (let p = 0; p < n; p++) {
      const label = labels[p] as number;
      const s = label > 0 ? (kept[label - 1] as number) : -1;
      if (s < 0) continue;
      owner[p] = s;
      queue.push(p);
      sums[label - 1] = (sums[label - 1] as number) + (probs ? (probs[value * n + p] as number) : 1);
    }
    for (const [j, s] of kept.entries()) {
      if (s >= first) (seeds[s] as { score: number }).score = (sums[j] as number) / (sizes[j] as number);
    }
  }
  // grow into the boundary, breadth first from every seed pixel at once
  for (let q = 0; q < queue.length; q++) {
    const p = queue[q] as number;
    const x = p % w;
    for (const r of [x > 0 ? p - 1 : -1, x < w - 1 ? p + 1 : -1, p - w, p + w]) {
      if (r < 0 || r >= n || owner[r] !== -1 || data[r] !== BOUNDARY_CLASS) continue;
      owner[r] = owner[p] as number;
      queue.push(r);
    }
  }
  const rles = rleEncodeLabels(owner, w, h, seeds.length);
  const order = seeds.map((_, i) => i).sort((a, b) => (seeds[b]?.score ?? 0) - (seeds[a]?.score ?? 0));
  return {
    width: w,
    height: h,
    masks: order.map((i) => rles[i] as Rle),
    boxes: order.map((i) => maskBox(rles[i] as Rle)),
    classIds: order.map((i) => seeds[i]?.classId as number),
    scores: order.map((i) => seeds[i]?.score as number),
  };
}
