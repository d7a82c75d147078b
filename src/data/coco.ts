import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import { extname, join, relative, resolve } from "node:path";
import { z } from "zod";
import { SegkitError } from "../core/errors.js";
import { createMask, type Mask } from "../core/image.js";
import type { SkippedSample } from "../core/skipped.js";
import { readJson, resolveInside } from "../io/fs.js";
import { readImage, readImageSize } from "../io/image.js";
import { type Instances, instancesFromCoco } from "../masks/instances.js";
import { segmentationToRle } from "../masks/polygon.js";
import { rlePaint } from "../masks/rle.js";
import type { ClassCategory, Dataset, Sample } from "./dataset.js";

/**
 * The `coco` dataset format: a directory with `annotations.json` (COCO instances: images, categories, annotations
 * with polygons, compressed RLE or uncompressed RLE) and the images at their `file_name`s, relative to the directory
 * (what `segkit export --to coco` writes) or to the `images` directory given (what `segkit sam auto` on a folder
 * writes: `--images` is the folder it segmented).
 *
 * Semantic reading, stated once:
 * - Classes: class 0 is `background` (every pixel no annotation covers), then the categories sorted by id (1, 2, ...);
 *   at most 254 categories (the mask is uint8 and the ignore index must stay outside the classes).
 * - Each image's mask paints its annotations in file order, later ones winning where they overlap.
 * - Crowd annotations (`iscrowd: 1`) are read as their category, as COCO-Stuff's semantic masks are, not ignored.
 * - Untrusted input is bounded: the JSON at most `MAX_COCO_JSON_BYTES`, `file_name`s must stay inside the image
 *   directory,
 *   RLE sizes must equal the image's `[height, width]`, polygon coordinates within 4 image sizes (`polygonToRle`).
 * - A bad annotation, a missing image or a duplicate id costs its image (reported in `skipped`, naming the file), not
 *   the dataset; a file that is not COCO JSON at all is an error naming it.
 */
export const COCO_ANNOTATIONS_FILE = "annotations.json";

/** Largest annotations file read (256 MiB; COCO 2017 train instances is 448 MiB: split it). */
export const MAX_COCO_JSON_BYTES = 256 * 1024 * 1024;

const CocoFileSchema = z.object({
  images: z.array(
    z.looseObject({
      id: z.number().int(),
      file_name: z.string().min(1),
      width: z.number().int().min(1),
      height: z.number().int().min(1),
    }),
  ),
  categories: z.array(z.looseObject({ id: z.number().int(), name: z.string() })),
  annotations: z.array(z.unknown()).default([]),
});

const AnnotationSchema = z.looseObject({
  id: z.number().int().optional(),
  image_id: z.number().int(),
  category_id: z.number().int(),
  iscrowd: z.union([z.literal(0), z.literal(1)]).optional(),
  bbox: z.array(z.number()).length(4).optional(),
  segmentation: z.union([
    z.object({ size: z.array(z.number()), counts: z.union([z.string(), z.array(z.number())]) }),
    z.array(z.array(z.number())),
  ]),
});
type Segmentation = z.infer<typeof AnnotationSchema>["segmentation"];

interface CocoImageAnnotation {
  classIndex: number;
  categoryId: number;
  segmentation: Segmentation;
  /** `annotation <id>`, for errors. */
  name: string;
  iscrowd: boolean;
  bbox?: readonly number[];
}

interface CocoImage {
  id: string;
  path: string;
  width: number;
  height: number;
  /** In file order. */
  annotations: CocoImageAnnotation[];
}

const zodProblem = (error: z.ZodError): string => {
  const issue = error.issues[0];
  return `${issue?.path.join(".") || "top level"}: ${issue?.message ?? "invalid"}`;
};

/**
 * Opens the `coco` dataset in `root` (see the module comment); `annotations`: the annotations file when it is not
 * `root/annotations.json` (COCO's own layout: `annotations/instances_val2017.json`); `images`: the directory the
 * `file_name`s are relative to when it is not `root` (`val2017/`, or the photos `segkit sam auto` segmented);
 * `strict` throws the first skip instead.
 */
export async function openCoco(
  root: string,
  options: {
    ignoreIndex: number;
    strict?: boolean;
    annotations?: string;
    images?: string;
    task?: "semantic" | "instance";
  },
): Promise<Dataset> {
  const file = options.annotations ?? join(root, COCO_ANNOTATIONS_FILE);
  const size = await stat(file).then(
    (s) => s.size,
    (err: unknown) => {
      throw new SegkitError("COCO annotations file not found", {
        file,
        cause: err,
        ...(options.annotations ? {} : { hint: "another annotations file is named with --annotations FILE" }),
      });
    },
  );
  if (size > MAX_COCO_JSON_BYTES) {
    throw new SegkitError(`annotations file is ${size} bytes, more than the ${MAX_COCO_JSON_BYTES} read`, { file });
  }
  const parsed = CocoFileSchema.safeParse(await readJson(file));
  if (!parsed.success) {
    throw new SegkitError(`not a COCO instances file: ${zodProblem(parsed.error)}`, {
      file,
      hint: "expected { images: [{id, file_name, width, height}], categories: [{id, name}], annotations: [...] }",
    });
  }
  const coco = parsed.data;

  // classes: background, then the categories by id
  const categories = [...coco.categories].sort((a, b) => a.id - b.id);
  const classOf = new Map<number, number>();
  for (const [i, c] of categories.entries()) {
    if (classOf.has(c.id)) throw new SegkitError(`category id ${c.id} appears twice`, { file });
    classOf.set(c.id, i + 1);
  }
  const classNames = ["background", ...categories.map((c) => c.name)];
  if (classNames.length > options.ignoreIndex) {
    throw new SegkitError(`${categories.length} categories leave no room for ignore index ${options.ignoreIndex}`, {
      file,
      hint: "masks are 8-bit: at most 254 categories with the ignore index 255",
    });
  }

  // images: inside the image directory, existing, unique
  const skipped: SkippedSample[] = [];
  const bad = new Map<number, string>(); // image id -> why it is skipped
  const images = new Map<number, CocoImage>();
  const names = new Set<string>();
  const top = resolve(options.images ?? root);
  for (const img of coco.images) {
    const path = resolve(top, img.file_name);
    const rel = relative(top, path);
    if (images.has(img.id) || bad.has(img.id)) {
      bad.set(img.id, `image id ${img.id} appears twice`);
      images.delete(img.id);
    } else if (!resolveInside(top, img.file_name)) {
      bad.set(img.id, `file_name ${JSON.stringify(img.file_name)} is outside the image directory ${top}`);
    } else if (names.has(rel)) bad.set(img.id, `file_name ${img.file_name} appears twice`);
    else if (!existsSync(path)) {
      const where = options.images ? "" : " (file_names are relative to the dataset directory; --images names another)";
      bad.set(img.id, `image file not found: ${path}${where}`);
    } else {
      names.add(rel);
      const ext = extname(rel);
      images.set(img.id, {
        id: (ext ? rel.slice(0, -ext.length) : rel).split("\\").join("/"),
        path,
        width: img.width,
        height: img.height,
        annotations: [],
      });
    }
  }

  // annotations, grouped by image in file order; one bad annotation skips its image
  coco.annotations.forEach((raw, k) => {
    const ann = AnnotationSchema.safeParse(raw);
    const imageId = (raw as { image_id?: unknown } | null)?.image_id;
    const name = `annotation ${(raw as { id?: unknown } | null)?.id ?? `#${k}`}`;
    const image = typeof imageId === "number" ? images.get(imageId) : undefined;
    let problem: string | undefined;
    if (!ann.success) problem = `${name}: ${zodProblem(ann.error)}`;
    else if (!classOf.has(ann.data.category_id)) problem = `${name}: category ${ann.data.category_id} does not exist`;
    else if (image && !Array.isArray(ann.data.segmentation)) {
      const [h, w] = ann.data.segmentation.size;
      if (h !== image.height || w !== image.width) {
        problem = `${name}: RLE size [${h}, ${w}] is not the image's [${image.height}, ${image.width}]`;
      }
    }
    if (typeof imageId !== "number" || (!image && !bad.has(imageId))) {
      skipped.push({ path: file, reason: `${name} refers to no image (image_id ${JSON.stringify(imageId)})` });
    } else if (problem && image) {
      bad.set(imageId, problem);
      images.delete(imageId);
    } else if (image && ann.success) {
      const { category_id, segmentation, iscrowd, bbox } = ann.data;
      image.annotations.push({
        classIndex: classOf.get(category_id) as number,
        categoryId: category_id,
        segmentation,
        name,
        iscrowd: iscrowd === 1,
        ...(bbox ? { bbox } : {}),
      });
    }
  });
  for (const [imageId, reason] of bad) skipped.push({ path: file, reason: `image ${imageId}: ${reason}` });
  const first = skipped[0];
  if (options.strict && first) throw new SegkitError(first.reason, { file: first.path });
  return new CocoDataset(
    [...images.values()],
    classNames,
    options.ignoreIndex,
    skipped,
    file,
    options.task ?? "semantic",
    categories.map((c) => ({ id: c.id, name: c.name })),
  );
}

class CocoDataset implements Dataset {
  readonly format = "coco";
  readonly backgroundClass = 0;
  readonly length: number;

  constructor(
    private readonly images: readonly CocoImage[],
    readonly classNames: readonly string[],
    readonly ignoreIndex: number,
    readonly skipped: readonly SkippedSample[],
    private readonly file: string,
    readonly task: "semantic" | "instance",
    categories: readonly { id: number; name: string }[],
  ) {
    this.length = images.length;
    this.classCategories = [null, ...categories.map((c) => ({ id: c.id }))];
    if (task === "instance") {
      this.getInstances = async (i) => this.instances(this.at(i));
      this.categories = categories;
    }
  }

  getInstances?: (i: number) => Promise<Instances>;
  categories?: readonly { id: number; name: string }[];
  readonly classCategories: readonly (ClassCategory | null)[];

  private at(i: number): CocoImage {
    const s = this.images[i];
    if (!s) throw new RangeError(`sample ${i} out of range 0..${this.length - 1}`);
    return s;
  }

  id(i: number): string {
    return this.at(i).id;
  }

  files(i: number): readonly string[] {
    return [this.at(i).path, this.file];
  }

  async get(i: number): Promise<Sample> {
    const s = this.at(i);
    const image = await readImage(s.path);
    this.checkSize(s, image);
    if (this.task !== "instance") return { id: s.id, image, mask: this.rasterise(s) };
    const instances = this.instances(s);
    const mask = createMask(s.width, s.height); // painted from the instances' RLEs: each segmentation read once
    for (const [k, rle] of instances.masks.entries()) rlePaint(mask, rle, s.annotations[k]?.classIndex ?? 0);
    return { id: s.id, image, mask, instances };
  }

  /** The image's annotations as instances (category ids; crowd kept), in file order. */
  private instances(s: CocoImage): Instances {
    const anns = s.annotations.map((a) => ({
      category_id: a.categoryId,
      segmentation: a.segmentation,
      iscrowd: a.iscrowd ? 1 : 0,
      ...(a.bbox ? { bbox: a.bbox } : {}),
    }));
    try {
      return instancesFromCoco(anns, s, this.file);
    } catch (err) {
      if (!(err instanceof SegkitError)) throw err;
      throw new SegkitError(`${s.id}: ${err.message}`, { file: this.file });
    }
  }

  async getMask(i: number): Promise<Mask> {
    const s = this.at(i);
    this.checkSize(s, await readImageSize(s.path));
    return this.rasterise(s);
  }

  private checkSize(s: CocoImage, image: { width: number; height: number }): void {
    if (image.width !== s.width || image.height !== s.height) {
      throw new SegkitError(
        `size ${image.width}x${image.height} differs from the ${s.width}x${s.height} in ${this.file}`,
        { file: s.path },
      );
    }
  }

  private rasterise(s: CocoImage): Mask {
    const mask = createMask(s.width, s.height);
    for (const { classIndex, segmentation, name } of s.annotations) {
      try {
        rlePaint(mask, segmentationToRle(segmentation, s.height, s.width, this.file), classIndex);
      } catch (err) {
        if (!(err instanceof SegkitError)) throw err;
        throw new SegkitError(`${name} of ${s.id}: ${err.message}`, { file: this.file });
      }
    }
    return mask;
  }
}
