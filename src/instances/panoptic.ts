/**
 * Panoptic results from an instance model (things) and a segkit semantic model (stuff), as `segkit panoptic` writes
 * them: the COCO panoptic categories of the pair, and the overlay picture of a fused map (`fusePanoptic`).
 *
 * Categories: the things are the instance model's categories with their ids (`isthing` 1); the stuff are the
 * semantic model's classes that are not "thing" classes, named as the model names them (`isthing` 0), with the COCO
 * ids of the dataset the model was trained on (its card's `classCategories`: a `coco` or `coco-panoptic` run), else
 * ids after the largest thing id in class order. Thing classes (Panoptic FPN's class 0, "some thing", never a
 * segment): by default every class named like one of the instance model's categories, and the classes the card
 * says are no category (a `coco` model's background) or things (`coco-panoptic`), or class 0 when the card says
 * nothing; or the classes given, by name or index.
 */

import { SegkitError } from "../core/errors.js";
import { createMask, type RgbImage } from "../core/image.js";
import type { Palette } from "../core/palette.js";
import { overlayMask } from "../io/write.js";
import { maskBox } from "../masks/instances.js";
import type { FusedSegment } from "../masks/panoptic-fusion.js";
import { rleEncode } from "../masks/rle.js";
import type { Instances } from "./instances.js";
import { instancesOverlayPng } from "./overlay.js";

/** A category of a COCO panoptic file as written (`isthing` 1 or 0). */
export interface PanopticCategoryEntry {
  id: number;
  name: string;
  isthing: 0 | 1;
}

/** The categories of an instance model + semantic model pair (see the module comment). */
export interface PanopticCategories {
  /** The things (the instance model's, in its order), then the stuff classes in class order. */
  categories: PanopticCategoryEntry[];
  /** The semantic classes that are not stuff (indices, ascending). */
  thingClasses: number[];
  /** Stuff category id of each stuff class index. */
  stuffIds: ReadonlyMap<number, number>;
}

/**
 * The categories of the pair: `things` the instance model's categories, `classes` the semantic model's class names,
 * `thingClasses` the semantic classes that are not stuff, by name or index (default: see the module comment),
 * `classCategories` the card's. A name or index that is not a class is an error listing the classes; a stuff class
 * whose COCO id is a thing's, an error.
 */
export function panopticCategories(
  things: readonly { id: number; name: string }[],
  classes: readonly string[],
  thingClasses?: readonly (string | number)[],
  classCategories?: readonly ({ readonly id: number; readonly isthing?: boolean } | null)[] | null,
): PanopticCategories {
  const thingNames = new Set(things.map((t) => t.name));
  const chosen = new Set<number>();
  if (thingClasses === undefined) {
    if (!classCategories) chosen.add(0);
    for (const [k, name] of classes.entries()) {
      const c = classCategories?.[k];
      if (thingNames.has(name) || c === null || c?.isthing) chosen.add(k);
    }
  } else {
    for (const c of thingClasses) {
      const k = typeof c === "number" ? c : classes.indexOf(c);
      if (!(Number.isInteger(k) && k >= 0 && k < classes.length)) {
        throw new SegkitError(`thing class ${JSON.stringify(c)} is not a class of the semantic model`, {
          hint: `its classes: ${classes.map((name, i) => `${i} ${name}`).join(", ")}`,
        });
      }
      chosen.add(k);
    }
  }
  const ids = new Set(things.map((t) => t.id));
  if (ids.size !== things.length) throw new SegkitError("the instance model lists a category id twice");
  let next = Math.max(0, ...ids) + 1;
  const stuffIds = new Map<number, number>();
  const categories: PanopticCategoryEntry[] = things.map((t) => ({ id: t.id, name: t.name, isthing: 1 }));
  for (const [k, name] of classes.entries()) {
    if (chosen.has(k)) continue;
    const id = classCategories?.[k]?.id ?? next++;
    if (ids.has(id)) {
      throw new SegkitError(`stuff class ${k} (${name}) has COCO id ${id}, the id of a thing category`, {
        hint: "name it in --thing-classes if it is a thing, or use models trained on one dataset's categories",
      });
    }
    stuffIds.set(k, id);
    categories.push({ id, name, isthing: 0 });
  }
  return { categories, thingClasses: [...chosen].sort((a, b) => a - b), stuffIds };
}

/** The category id of a fused segment: a thing's own, a stuff class's from `stuffIds`. */
export function segmentCategory(stuffIds: ReadonlyMap<number, number>): (s: FusedSegment) => number {
  return (s) => {
    if (s.isthing) return s.categoryId;
    const id = stuffIds.get(s.classIndex);
    if (id === undefined) throw new SegkitError(`semantic class ${s.classIndex} is not a stuff category`);
    return id;
  };
}

/**
 * The overlay of a fused panoptic map on its image, as PNG bytes: each stuff segment tinted in its semantic class's
 * colour (`palette`), then the things drawn as `instancesOverlayPng` draws instances (each its own colour over the
 * pixels it kept, its box around them, `name score` on a strip; `categories` name the ids). Void stays untinted.
 */
export async function panopticOverlayPng(
  image: RgbImage,
  fused: { ids: Uint32Array; segments: readonly FusedSegment[] },
  options: { palette: Palette; categories: readonly { id: number; name: string }[] },
): Promise<Uint8Array> {
  const { width, height } = image;
  if (fused.ids.length !== width * height) {
    throw new SegkitError(`a panoptic map of ${fused.ids.length} pixels for a ${width}x${height} image`);
  }
  const IGNORE = 255;
  const stuff = createMask(width, height, new Uint8Array(width * height).fill(IGNORE));
  const stuffClass = new Map(fused.segments.flatMap((s) => (s.isthing ? [] : [[s.id, s.classIndex] as const])));
  for (const [p, id] of fused.ids.entries()) {
    const c = stuffClass.get(id);
    if (c !== undefined) stuff.data[p] = c;
  }
  const tinted = overlayMask(image, stuff, { palette: options.palette, ignoreIndex: IGNORE });
  // the pixels each thing kept, one bitmap at a time
  const things = fused.segments.filter((s) => s.isthing);
  const masks = things.map((s) => {
    const m = createMask(width, height);
    for (const [p, id] of fused.ids.entries()) if (id === s.id) m.data[p] = 1;
    return rleEncode(m);
  });
  const inst: Instances = {
    width,
    height,
    masks,
    boxes: masks.map(maskBox),
    classIds: things.map((s) => s.categoryId),
    scores: things.map((s) => s.score),
  };
  return instancesOverlayPng(tinted, inst, options.categories);
}
