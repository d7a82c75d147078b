import { z } from "zod";
import { type Mask, maskHistogram } from "../core/image.js";
import {
  contoursToRle,
  DEFAULT_POLYGON_OPTIONS,
  maskToPolygons,
  type Polygon,
  polygonsToRle,
} from "../masks/polygon.js";
import { type CompressedRle, type Rle, rleArea, rleEncode, rleToBbox, rleToString } from "../masks/rle.js";

/**
 * COCO instances JSON from class-index masks, and the schema it keeps.
 *
 * Conventions, stated once:
 * - Categories: every class except the dataset's `backgroundClass` becomes a category, in class order, with ids
 *   1, 2, ... (contiguous, 0 unused); the background is not exported (its pixels are simply not annotated), nor are
 *   ignore-index pixels. The `coco` dataset reader maps back the same way: class 0 = background, then the categories
 *   sorted by id, so a dataset whose background is class 0 comes back with the same indices (others: same names).
 * - Semantic (default): one annotation per (image, class present), compressed RLE, `iscrowd: 1` (COCO-Stuff).
 * - `instances`: one annotation per 4-connected component of each class, compressed RLE, `iscrowd: 0`.
 * - `polygons`: the outer rings of the components (Douglas-Peucker, `tolerance` px), `iscrowd: 0`; one annotation per
 *   class, or per component with `instances`. COCO polygons cannot carry holes (pycocotools unions an annotation's
 *   polygons), so holes are filled: annotations of an image are ordered by filled area, largest first, and a reader
 *   that paints them in order (later wins, as segkit's `coco` reader does) restores a hole's content when it is
 *   another exported class; a background hole is lost (counted in `holesFilled`).
 * - `area` is the annotation's pixel count as pycocotools rasterises it; `bbox` is `[x, y, w, h]` of those pixels.
 */

const id = z.number().int().min(1);
const dim = z.number().int().min(0);

export const CocoRleSchema = z
  .object({ size: z.tuple([dim, dim]), counts: z.union([z.string(), z.array(dim)]) })
  .strict();

const PolygonsSchema = z.array(
  z
    .array(z.number())
    .min(6)
    .refine((p) => p.length % 2 === 0, "a polygon has an even number of coordinates"),
);

export const CocoAnnotationSchema = z
  .object({
    id,
    image_id: id,
    category_id: id,
    segmentation: z.union([CocoRleSchema, PolygonsSchema]),
    area: z.number().min(0),
    bbox: z.tuple([z.number().min(0), z.number().min(0), z.number().min(0), z.number().min(0)]),
    iscrowd: z.union([z.literal(0), z.literal(1)]),
  })
  .strict();

/**
 * The COCO instances JSON segkit writes, checked strictly: no unknown keys, unique ids, every annotation's image and
 * category exist, RLE `size` equals the image's `[height, width]`, crowd annotations are RLE.
 */
export const CocoInstancesSchema = z
  .object({
    images: z.array(
      z
        .object({ id, file_name: z.string().min(1), width: z.number().int().min(1), height: z.number().int().min(1) })
        .strict(),
    ),
    categories: z.array(z.object({ id, name: z.string().min(1) }).strict()),
    annotations: z.array(CocoAnnotationSchema),
  })
  .strict()
  .superRefine((coco, ctx) => {
    const unique = (what: string, ids: number[]) => {
      if (new Set(ids).size !== ids.length) ctx.addIssue({ code: "custom", message: `duplicate ${what} ids` });
    };
    unique(
      "image",
      coco.images.map((i) => i.id),
    );
    unique(
      "category",
      coco.categories.map((c) => c.id),
    );
    unique(
      "annotation",
      coco.annotations.map((a) => a.id),
    );
    const images = new Map(coco.images.map((i) => [i.id, i]));
    const categories = new Set(coco.categories.map((c) => c.id));
    for (const a of coco.annotations) {
      const image = images.get(a.image_id);
      const fail = (message: string) => ctx.addIssue({ code: "custom", message: `annotation ${a.id}: ${message}` });
      if (!image) fail(`image ${a.image_id} does not exist`);
      if (!categories.has(a.category_id)) fail(`category ${a.category_id} does not exist`);
      const seg = a.segmentation;
      if (!Array.isArray(seg) && image && (seg.size[0] !== image.height || seg.size[1] !== image.width)) {
        fail(`RLE size [${seg.size.join(", ")}] is not the image's [${image.height}, ${image.width}]`);
      }
      if (a.iscrowd === 1 && Array.isArray(seg)) fail("a crowd annotation must be RLE");
    }
  });

export type CocoInstances = z.infer<typeof CocoInstancesSchema>;
export type CocoAnnotation = z.infer<typeof CocoAnnotationSchema>;
export interface CocoCategory {
  id: number;
  name: string;
}

/** The categories of a dataset's classes (see the module comment) and `categoryOf[class index]` (undefined: not exported). */
export function cocoCategories(
  classNames: readonly string[],
  backgroundClass?: number,
): { categories: CocoCategory[]; categoryOf: (number | undefined)[] } {
  const categories: CocoCategory[] = [];
  const categoryOf = classNames.map((name, c) => {
    if (c === backgroundClass) return undefined;
    categories.push({ id: categories.length + 1, name });
    return categories.length;
  });
  return { categories, categoryOf };
}

export interface MaskAnnotationOptions {
  /** Category id of each class index; undefined (or missing) classes are not annotated. */
  categoryOf: readonly (number | undefined)[];
  /** One annotation per 4-connected component instead of per class. */
  instances?: boolean;
  /** Outer-ring polygons instead of RLE. */
  polygons?: boolean;
  /** Douglas-Peucker tolerance of the polygons in pixels (default `DEFAULT_POLYGON_OPTIONS.tolerance`). */
  tolerance?: number;
}

/** An annotation of one image, before ids are given. */
export type MaskAnnotation = Omit<CocoAnnotation, "id" | "image_id">;

/**
 * The annotations of one class-index mask, largest filled area first (see the module comment); `holesFilled` counts
 * the holes polygons could not carry, `dropped` the polygon annotations that rasterise to no pixel (left out).
 */
export function maskToAnnotations(
  mask: Mask,
  options: MaskAnnotationOptions,
): { annotations: MaskAnnotation[]; holesFilled: number; dropped: number } {
  const { width: w, height: h } = mask;
  const tolerance = options.tolerance ?? DEFAULT_POLYGON_OPTIONS.tolerance;
  const histogram = maskHistogram(mask);
  const found: { ann: MaskAnnotation; filled: number }[] = [];
  let holesFilled = 0;
  let dropped = 0;
  const add = (category: number, rle: Rle, segmentation: CompressedRle | Polygon[], iscrowd: 0 | 1) => {
    const area = rleArea(rle);
    if (area === 0) {
      dropped++;
      return;
    }
    const seg = Array.isArray(segmentation)
      ? segmentation
      : { size: [segmentation.size[0], segmentation.size[1]] as [number, number], counts: segmentation.counts };
    const ann = { category_id: category, segmentation: seg, area, bbox: rleToBbox(rle), iscrowd };
    found.push({ ann, filled: Array.isArray(segmentation) ? area : 0 });
  };
  options.categoryOf.forEach((category, c) => {
    if (category === undefined || !histogram[c]) return;
    if (!options.polygons && !options.instances) {
      const rle = rleEncode(mask, c);
      add(category, rle, rleToString(rle), 1);
      return;
    }
    const contours = maskToPolygons(mask, { value: c, tolerance: options.polygons ? tolerance : 0 });
    if (!options.polygons) {
      // unsimplified rings rasterise back exactly: outer minus holes is the component
      for (const contour of contours) {
        const rle = contoursToRle([contour], h, w);
        add(category, rle, rleToString(rle), 0);
      }
      return;
    }
    for (const contour of contours) holesFilled += contour.holes.length;
    const groups = options.instances ? contours.map((k) => [k.outer]) : [contours.map((k) => k.outer)];
    for (const polygons of groups) add(category, polygonsToRle(polygons, h, w), polygons, 0);
  });
  // stable: equal areas keep class order
  found.sort((a, b) => b.filled - a.filled);
  return { annotations: found.map((f) => f.ann), holesFilled, dropped };
}
