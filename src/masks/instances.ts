/**
 * Object instances of one image: what an instance model predicts and what a COCO instance dataset holds.
 *
 * One `Instances` is N instances of a `width` x `height` image, parallel lists:
 * - `masks`: one RLE per instance (COCO's column-major run lengths, `size` [height, width]); `instancesFromMasks`
 *   makes them from 0/1 bitmaps, `rleDecode` gives a bitmap back;
 * - `boxes`: `[x1, y1, x2, y2]` in pixels (floats; a model's box, or the mask's extent for data);
 * - `classIds`: the dataset's category ids (COCO's, 1-based, not contiguous in general);
 * - `scores`: confidence in 0..1 (1 for ground truth);
 * - `iscrowd` (COCO crowd regions) and `ids` (tracking ids) when there are any.
 * The order is meaningful: a model's instances come best score first; a dataset's, in file order.
 */
import { SegkitError } from "../core/errors.js";
import type { Mask } from "../core/image.js";
import { type Polygon, segmentationToRle } from "./polygon.js";
import { type CompressedRle, type Rle, rleArea, rleEncode, rleToBbox, rleToString } from "./rle.js";

export type Box = readonly [number, number, number, number];

export interface Instances {
  readonly width: number;
  readonly height: number;
  readonly masks: readonly Rle[];
  readonly boxes: readonly Box[];
  readonly classIds: readonly number[];
  readonly scores: readonly number[];
  readonly iscrowd?: readonly boolean[];
  readonly ids?: readonly number[];
}

/** The number of instances, after checking that every list has one entry per mask and every mask the image's size. */
export function countInstances(inst: Instances, file?: string): number {
  const n = inst.masks.length;
  const lists: [string, readonly unknown[] | undefined][] = [
    ["boxes", inst.boxes],
    ["classIds", inst.classIds],
    ["scores", inst.scores],
    ["iscrowd", inst.iscrowd],
    ["ids", inst.ids],
  ];
  for (const [name, list] of lists) {
    if (list && list.length !== n) {
      throw new SegkitError(`instances: ${name} has ${list.length} entries for ${n} masks`, file ? { file } : {});
    }
  }
  for (const [k, m] of inst.masks.entries()) {
    if (m.size[0] !== inst.height || m.size[1] !== inst.width) {
      throw new SegkitError(
        `instances: mask ${k} is ${m.size[1]}x${m.size[0]}, the image ${inst.width}x${inst.height}`,
        file ? { file } : {},
      );
    }
  }
  return n;
}

/** The instances `keep(k)` accepts, in their order; optional lists kept in step. */
export function filterInstances(inst: Instances, keep: (k: number) => boolean): Instances {
  const ks = inst.masks.map((_, k) => k).filter(keep);
  const pick = <T>(list: readonly T[]) => ks.map((k) => list[k] as T);
  return {
    width: inst.width,
    height: inst.height,
    masks: pick(inst.masks),
    boxes: pick(inst.boxes),
    classIds: pick(inst.classIds),
    scores: pick(inst.scores),
    ...(inst.iscrowd ? { iscrowd: pick(inst.iscrowd) } : {}),
    ...(inst.ids ? { ids: pick(inst.ids) } : {}),
  };
}

/** Instances from 0/1 bitmaps at the image's size; boxes default to each mask's extent (`[0, 0, 0, 0]` when empty). */
export function instancesFromMasks(
  masks: readonly Mask[],
  info: { classIds: readonly number[]; scores?: readonly number[]; boxes?: readonly Box[] },
): Instances {
  const first = masks[0];
  const width = first?.width ?? 0;
  const height = first?.height ?? 0;
  const rles = masks.map((m) => rleEncode(m));
  return {
    width,
    height,
    masks: rles,
    boxes: info.boxes ?? rles.map(maskBox),
    classIds: info.classIds,
    scores: info.scores ?? rles.map(() => 1),
  };
}

/** `[x1, y1, x2, y2]` of the pixels of an RLE (exclusive right and bottom edges, as COCO's `[x, y, w, h]`). */
export function maskBox(rle: Rle): Box {
  const [x, y, w, h] = rleToBbox(rle);
  return [x, y, x + w, y + h];
}

/** A COCO annotation's fields for one image's instances: compressed RLE, `bbox` [x, y, w, h], area, score. */
export interface InstanceAnnotation {
  category_id: number;
  segmentation: CompressedRle;
  area: number;
  bbox: [number, number, number, number];
  iscrowd: 0 | 1;
  score: number;
}

/** The instances as COCO annotations (ids and image ids are the caller's), in the instances' order. */
export function instancesToCoco(inst: Instances): InstanceAnnotation[] {
  countInstances(inst);
  return inst.masks.map((m, k) => {
    const [x1, y1, x2, y2] = inst.boxes[k] as Box;
    return {
      category_id: inst.classIds[k] as number,
      segmentation: rleToString(m),
      area: rleArea(m),
      bbox: [x1, y1, x2 - x1, y2 - y1],
      iscrowd: inst.iscrowd?.[k] ? 1 : 0,
      score: inst.scores[k] as number,
    };
  });
}

/** A COCO annotation as read from a file: polygons or RLE, an optional score (results files have one). */
export interface CocoAnnotationIn {
  readonly category_id: number;
  readonly segmentation:
    | readonly Polygon[]
    | { readonly size: readonly number[]; readonly counts: string | readonly number[] };
  readonly bbox?: readonly number[];
  readonly iscrowd?: number;
  readonly score?: number;
}

/** One image's COCO annotations as instances; boxes from `bbox` when given, else the mask's extent. */
export function instancesFromCoco(
  annotations: readonly CocoAnnotationIn[],
  size: { width: number; height: number },
  file?: string,
): Instances {
  const { width, height } = size;
  const masks = annotations.map((a) => segmentationToRle(a.segmentation, height, width, file));
  return {
    width,
    height,
    masks,
    boxes: annotations.map((a, k) => {
      const b = a.bbox;
      return b && b.length === 4
        ? ([b[0], b[1], (b[0] as number) + (b[2] as number), (b[1] as number) + (b[3] as number)] as Box)
        : maskBox(masks[k] as Rle);
    }),
    classIds: annotations.map((a) => a.category_id),
    scores: annotations.map((a) => a.score ?? 1),
    iscrowd: annotations.map((a) => a.iscrowd === 1),
  };
}
