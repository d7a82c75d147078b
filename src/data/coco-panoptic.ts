import { existsSync, readdirSync } from "node:fs";
import { stat } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import { inflate } from "node:zlib";
import { z } from "zod";
import { SegkitError } from "../core/errors.js";
import { createMask, type Mask } from "../core/image.js";
import type { Palette } from "../core/palette.js";
import type { SkippedSample } from "../core/skipped.js";
import { readJson, resolveInside } from "../io/fs.js";
import { MAX_INPUT_PIXELS, readBytes, readImage, readImageSize } from "../io/image.js";
import { type PngRows, plainPng, pngSize, unfilterPng } from "../io/png-rows.js";
import { MAX_COCO_JSON_BYTES } from "./coco.js";
import type { ClassCategory, Dataset, Sample } from "./dataset.js";
import { stem } from "./files.js";

/**
 * The `coco-panoptic` dataset format: COCO's panoptic layout, a JSON file (`images`, `annotations` with one PNG
 * `file_name` and its `segments_info` per image, `categories` with `isthing`) and the folder of PNGs beside it of the
 * same name (`panoptic_val2017.json` + `panoptic_val2017/`), where each pixel's segment id is R + 256 G + 256^2 B.
 *
 * Semantic reading: the classes are the categories sorted by id (things and stuff alike; no background class), each
 * pixel the class of its segment's category; id 0 (void) and ids the image's `segments_info` does not list are the
 * ignore index. Crowd segments are read as their category. `getPanoptic(i)` gives the ids and segments themselves
 * (what `pqCompute` scores).
 * A bad annotation, a missing image or PNG costs its image (reported in `skipped`, naming the file), not the dataset;
 * a file that is not COCO panoptic JSON at all is an error naming it.
 */

const SegmentSchema = z.looseObject({
  id: z.number().int().min(0).max(0xffffff),
  category_id: z.number().int(),
  iscrowd: z.union([z.literal(0), z.literal(1), z.boolean()]).optional(),
  area: z.number().min(0).optional(),
  bbox: z.array(z.number()).length(4).optional(),
});

const AnnotationSchema = z.looseObject({
  image_id: z.union([z.number().int(), z.string()]),
  file_name: z.string().min(1),
  segments_info: z.array(SegmentSchema),
});

const PanopticFileSchema = z.object({
  images: z
    .array(
      z.looseObject({
        id: z.union([z.number().int(), z.string()]),
        file_name: z.string().min(1),
        width: z.number().int().min(1),
        height: z.number().int().min(1),
      }),
    )
    .default([]),
  annotations: z.array(z.unknown()),
  categories: z
    .array(
      z.looseObject({
        id: z.number().int(),
        name: z.string(),
        isthing: z.union([z.number(), z.boolean()]),
        color: z.tuple([z.number(), z.number(), z.number()]).optional(),
      }),
    )
    .default([]),
});

/** One segment of `segments_info`; `area` and `bbox` as the file has them (a prediction file may leave them out). */
export interface PanopticSegment {
  id: number;
  categoryId: number;
  iscrowd: boolean;
  area?: number;
  bbox?: [number, number, number, number];
}

/** The panoptic segmentation of one image: segment id per pixel (row-major), and the segments the JSON lists. */
export interface PanopticSegmentation {
  width: number;
  height: number;
  ids: Uint32Array;
  segments: PanopticSegment[];
}

export interface PanopticCategory {
  id: number;
  name: string;
  isthing: boolean;
  /** The category's colour in COCO's panoptic files (`color`), if given. */
  color?: [number, number, number];
}

/** One entry of a panoptic file's `annotations`. */
export interface PanopticAnnotation {
  imageId: number | string;
  /** The PNG, relative to the file's PNG folder. */
  fileName: string;
  segments: PanopticSegment[];
}

/** A COCO panoptic JSON file, checked. `annotations` holds the entries that parsed; `problems` the others. */
export interface CocoPanopticFile {
  file: string;
  images: { id: number | string; fileName: string; width: number; height: number }[];
  annotations: PanopticAnnotation[];
  categories: PanopticCategory[];
  /** Annotations that are not usable (`annotation #k (image_id ...): what`), in file order. */
  problems: { imageId: unknown; reason: string }[];
}

const zodProblem = (error: z.ZodError): string => {
  const issue = error.issues[0];
  return `${issue?.path.join(".") || "top level"}: ${issue?.message ?? "invalid"}`;
};

/**
 * Reads a COCO panoptic JSON file (ground truth or predictions: `images` and `categories` may be absent from a
 * prediction file). At most `MAX_COCO_JSON_BYTES`; not JSON or not that shape is an error naming the file.
 */
export async function readCocoPanopticJson(file: string): Promise<CocoPanopticFile> {
  const size = await stat(file).then(
    (s) => s.size,
    (err: unknown) => {
      throw new SegkitError("COCO panoptic file not found", { file, cause: err });
    },
  );
  if (size > MAX_COCO_JSON_BYTES) {
    throw new SegkitError(`panoptic file is ${size} bytes, more than the ${MAX_COCO_JSON_BYTES} read`, { file });
  }
  const parsed = PanopticFileSchema.safeParse(await readJson(file));
  if (!parsed.success) {
    throw new SegkitError(`not a COCO panoptic file: ${zodProblem(parsed.error)}`, {
      file,
      hint: "expected { annotations: [{image_id, file_name, segments_info: [{id, category_id, iscrowd, area}]}], categories: [{id, name, isthing}], images: [...] }",
    });
  }
  const { images, categories } = parsed.data;
  const out: CocoPanopticFile = {
    file,
    images: images.map((i) => ({ id: i.id, fileName: i.file_name, width: i.width, height: i.height })),
    categories: categories.map((c) => ({
      id: c.id,
      name: c.name,
      isthing: c.isthing === 1 || c.isthing === true,
      ...(c.color ? { color: c.color } : {}),
    })),
    annotations: [],
    problems: [],
  };
  parsed.data.annotations.forEach((raw, k) => {
    const ann = AnnotationSchema.safeParse(raw);
    const imageId = (raw as { image_id?: unknown } | null)?.image_id;
    if (!ann.success) {
      out.problems.push({ imageId, reason: `annotation #${k} (image_id ${imageId}): ${zodProblem(ann.error)}` });
      return;
    }
    out.annotations.push({
      imageId: ann.data.image_id,
      fileName: ann.data.file_name,
      segments: ann.data.segments_info.map((s) => ({
        id: s.id,
        categoryId: s.category_id,
        iscrowd: s.iscrowd === 1 || s.iscrowd === true,
        ...(s.area !== undefined ? { area: s.area } : {}),
        ...(s.bbox ? { bbox: s.bbox as [number, number, number, number] } : {}),
      })),
    });
  });
  return out;
}

/** The PNG folder of a panoptic JSON file by COCO's convention: its path without `.json`. */
export function panopticPngDir(jsonFile: string): string {
  return jsonFile.replace(/\.json$/i, "");
}

/**
 * The segment ids of a panoptic PNG: R + 256 G + 256^2 B of each pixel (an alpha channel is ignored, a palette PNG
 * gives its colours), the file's own values (no colour management). Anything but an 8-bit RGB(A) or palette PNG is
 * an error naming the file.
 */
export async function readPanopticPng(path: string): Promise<{ ids: Uint32Array; width: number; height: number }> {
  const bytes = await readBytes(path);
  // IHDR: bit depth at byte 24, colour type at 25 (2 RGB, 3 palette, 6 RGBA)
  if (bytes.length < 33 || !pngSize(bytes)) {
    throw new SegkitError("not a PNG (a panoptic segmentation is an RGB PNG)", { file: path });
  }
  const depth = bytes[24];
  const colourType = bytes[25] as number;
  if (depth !== 8 || ![2, 3, 6].includes(colourType)) {
    throw new SegkitError(
      `a panoptic PNG must be 8-bit RGB (id = R + 256 G + 256^2 B), this one is ${depth}-bit ${colourType === 0 || colourType === 4 ? "gray" : `colour type ${colourType}`}`,
      { file: path },
    );
  }
  let image: Pick<PngRows, "data" | "width" | "height" | "stride" | "offset"> & { channels: number };
  try {
    image = (await decodeRgbPng(bytes)) ?? { ...(await readImage(bytes)), channels: 3, stride: 0, offset: 0 };
  } catch (err) {
    const message = err instanceof SegkitError ? err.message : `cannot decode: ${(err as Error).message}`;
    throw new SegkitError(message, { file: path, cause: err });
  }
  const { width, height, data, channels, stride, offset } = image;
  const ids = new Uint32Array(width * height);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0, j = offset + y * (stride || width * channels); x < width; x++, i++, j += channels) {
      ids[i] = (data[j] as number) | ((data[j + 1] as number) << 8) | ((data[j + 2] as number) << 16);
    }
  }
  return { ids, width, height };
}

const inflateAsync = promisify(inflate);

/** An 8-bit RGB(A) PNG through Node's zlib on libuv's threads (`plainPng`); undefined for others (sharp reads those). */
async function decodeRgbPng(bytes: Uint8Array): Promise<PngRows | undefined> {
  const png = plainPng(bytes, [2, 6], MAX_INPUT_PIXELS);
  if (!png) return undefined;
  // one output chunk of the image's size (no 16 KiB chunks to gather), and a crafted stream inflates no further
  const size = Math.max(64, png.inflatedBytes);
  return unfilterPng(png, await inflateAsync(png.idat, { chunkSize: size, maxOutputLength: size }));
}

/** The panoptic JSON files (`panoptic*.json`) in `root` or `root/annotations`. */
export function findPanopticJsonSync(root: string): string[] {
  for (const dir of [root, join(root, "annotations")]) {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {}
    const found = names.filter((n) => /^panoptic.*\.json$/i.test(n)).sort();
    if (found.length > 0) return found.map((n) => join(dir, n));
  }
  return [];
}

interface PanopticSample {
  id: string;
  image: string;
  png: string;
  width: number;
  height: number;
  segments: PanopticSegment[];
}

/**
 * Opens the `coco-panoptic` dataset in `root` (see the module comment). `annotations`: the JSON file (default: the one
 * `panoptic*.json` in `root` or `root/annotations`); `masks`: its PNG folder (default: the JSON's path without
 * `.json`); `images`: the directory the images' `file_name`s are relative to (default `root`).
 */
export async function openCocoPanoptic(
  root: string,
  options: { ignoreIndex: number; strict?: boolean; annotations?: string; masks?: string; images?: string },
): Promise<CocoPanopticDataset> {
  let file = options.annotations;
  if (!file) {
    const found = findPanopticJsonSync(root);
    if (found.length !== 1) {
      throw new SegkitError(
        found.length ? `several panoptic files: ${found.join(", ")}` : "no panoptic*.json in it or in annotations/",
        { file: root, hint: "name the panoptic JSON file with --annotations FILE" },
      );
    }
    file = found[0] as string;
  }
  const pan = await readCocoPanopticJson(file);
  const pngDir = options.masks ?? panopticPngDir(file);
  const categories = [...pan.categories].sort((a, b) => a.id - b.id);
  const classOf = new Map<number, number>();
  for (const [i, c] of categories.entries()) {
    if (classOf.has(c.id)) throw new SegkitError(`category id ${c.id} appears twice`, { file });
    classOf.set(c.id, i);
  }
  if (categories.length === 0) throw new SegkitError("no categories", { file });
  if (categories.length > options.ignoreIndex) {
    throw new SegkitError(`${categories.length} categories leave no room for ignore index ${options.ignoreIndex}`, {
      file,
      hint: "masks are 8-bit: at most 255 categories with the ignore index 255",
    });
  }

  const skipped: SkippedSample[] = pan.problems.map((p) => ({ path: file, reason: p.reason }));
  const imageDir = resolve(options.images ?? root);
  const images = new Map(pan.images.map((i) => [i.id, i]));
  const seen = new Set<number | string>();
  const samples: PanopticSample[] = [];
  for (const ann of pan.annotations) {
    const img = images.get(ann.imageId);
    const image = img && resolveInside(imageDir, img.fileName);
    const png = resolveInside(resolve(pngDir), ann.fileName);
    const unknown = ann.segments.find((s) => !classOf.has(s.categoryId));
    const reason = seen.has(ann.imageId)
      ? "a second annotation for it"
      : !img
        ? "no entry in images"
        : !image
          ? `file_name ${JSON.stringify(img.fileName)} is outside the image directory ${imageDir}`
          : !png
            ? `file_name ${JSON.stringify(ann.fileName)} is outside the PNG folder ${pngDir}`
            : unknown
              ? `segment ${unknown.id}: category ${unknown.categoryId} does not exist`
              : !existsSync(image)
                ? `image file not found: ${image}`
                : !existsSync(png)
                  ? `panoptic PNG not found: ${png}`
                  : undefined;
    seen.add(ann.imageId);
    if (reason || !img || !image || !png) {
      skipped.push({ path: file, reason: `image ${ann.imageId}: ${reason}` });
      continue;
    }
    const id = stem(relative(imageDir, image)).split("\\").join("/");
    samples.push({ id, image, png, width: img.width, height: img.height, segments: ann.segments });
  }
  const first = skipped[0];
  if (options.strict && first) throw new SegkitError(first.reason, { file: first.path });
  const colours = categories.map((c) => c.color);
  return new CocoPanopticDataset(
    samples,
    {
      classNames: categories.map((c) => c.name),
      classCategories: categories.map((c) => ({ id: c.id, isthing: c.isthing })),
      ...(colours.every((c) => c !== undefined) ? { palette: colours } : {}),
    },
    options.ignoreIndex,
    skipped,
    file,
  );
}

/** A `coco-panoptic` dataset: semantic samples (`get`) and each sample's panoptic segmentation (`getPanoptic`). */
export class CocoPanopticDataset implements Dataset {
  readonly format = "coco-panoptic";
  readonly length: number;
  readonly classNames: readonly string[];
  /** The category of each class (its id and whether it is a thing). */
  readonly classCategories: readonly ClassCategory[];
  /** The categories' `color`s when every category has one. */
  readonly palette?: Palette;

  constructor(
    private readonly samples: readonly PanopticSample[],
    classes: { classNames: readonly string[]; classCategories: readonly ClassCategory[]; palette?: Palette },
    readonly ignoreIndex: number,
    readonly skipped: readonly SkippedSample[],
    private readonly file: string,
  ) {
    this.length = samples.length;
    this.classNames = classes.classNames;
    this.classCategories = classes.classCategories;
    if (classes.palette) this.palette = classes.palette;
  }

  private at(i: number): PanopticSample {
    const s = this.samples[i];
    if (!s) throw new RangeError(`sample ${i} out of range 0..${this.length - 1}`);
    return s;
  }

  id(i: number): string {
    return this.at(i).id;
  }

  files(i: number): readonly string[] {
    const s = this.at(i);
    return [s.image, s.png, this.file];
  }

  async get(i: number): Promise<Sample> {
    const s = this.at(i);
    const [image, pan] = await Promise.all([readImage(s.image), this.getPanoptic(i)]);
    this.checkSize(s, image, s.image);
    return { id: s.id, image, mask: this.classMask(pan) };
  }

  async getMask(i: number): Promise<Mask> {
    const s = this.at(i);
    const [size, pan] = await Promise.all([readImageSize(s.image), this.getPanoptic(i)]);
    this.checkSize(s, size, s.image);
    return this.classMask(pan);
  }

  /** Sample i's segment ids per pixel and its `segments_info`. */
  async getPanoptic(i: number): Promise<PanopticSegmentation> {
    const s = this.at(i);
    const png = await readPanopticPng(s.png);
    this.checkSize(s, png, s.png);
    return { ...png, segments: s.segments };
  }

  private checkSize(s: PanopticSample, got: { width: number; height: number }, path: string): void {
    if (got.width !== s.width || got.height !== s.height) {
      throw new SegkitError(`size ${got.width}x${got.height} differs from the ${s.width}x${s.height} in ${this.file}`, {
        file: path,
      });
    }
  }

  /** Class per pixel: its segment's category; void and unlisted ids the ignore index. */
  private classMask(pan: PanopticSegmentation): Mask {
    const classOf = new Map<number, number>();
    for (const seg of pan.segments)
      classOf.set(
        seg.id,
        this.classCategories.findIndex((c) => c.id === seg.categoryId),
      );
    const mask = createMask(pan.width, pan.height);
    let last = -1;
    let value = this.ignoreIndex;
    for (let p = 0; p < pan.ids.length; p++) {
      const id = pan.ids[p] as number;
      if (id !== last) {
        last = id;
        value = (id !== 0 ? classOf.get(id) : undefined) ?? this.ignoreIndex;
      }
      mask.data[p] = value;
    }
    return mask;
  }
}
