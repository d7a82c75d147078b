import { readFile } from "node:fs/promises";
import { extname, join, relative, resolve } from "node:path";
import { SegkitError } from "../core/errors.js";
import { DEFAULT_IGNORE_INDEX, type Mask } from "../core/image.js";
import type { SkippedSample } from "../core/skipped.js";
import { type Dataset, skippedFrom } from "../data/dataset.js";
import { isWithin, writeFileAtomic } from "../io/fs.js";
import { encodeMaskPng, encodePng } from "../io/write.js";
import { type CocoAnnotation, type CocoInstances, cocoCategories, maskToAnnotations } from "./coco.js";
import { yoloClassOf, yoloDataYaml, yoloLines } from "./yolo.js";

/**
 * `exportDataset`: any dataset to one of three layouts in `out`, images copied byte for byte (generated images, which
 * have no file, are written as PNG):
 * - `coco`: `annotations.json` (see `export/coco.ts`) and the images at their `file_name`: the path relative to the
 *   dataset root (`images/<id><ext>` when the image lies outside it or has no file). `--format coco` reads it.
 * - `png`: `images/<name><ext>`, `masks/<name>.png` (8-bit palette PNG of class indices, ignore pixels 255, class
 *   names in the PNG) and `classes.json` (`{classes, ignoreIndex, backgroundClass}`); `--format folder` reads it.
 * - `yolo`: `images/<name><ext>`, `labels/<name>.txt` (see `export/yolo.ts`) and `data.yaml`.
 * `<name>` is the sample id with `/` and `\` replaced by `__` (one flat directory, as folder and YOLO readers want).
 */
export const EXPORT_TARGETS = ["coco", "yolo", "png"] as const;
export type ExportTarget = (typeof EXPORT_TARGETS)[number];

export interface ExportOptions {
  to: ExportTarget;
  /** The dataset's root directory, for COCO `file_name`s (generated datasets have none). */
  root?: string;
  /** coco: polygons instead of RLE. */
  polygons?: boolean;
  /** coco: one annotation per connected component. */
  instances?: boolean;
  /** Polygon simplification in pixels (coco `polygons`, yolo). */
  tolerance?: number;
  onProgress?: (done: number, total: number) => void;
  onSkip?: (s: SkippedSample) => void;
}

export interface ExportSummary {
  /** Samples written. */
  samples: number;
  skipped: SkippedSample[];
  /** COCO annotations or YOLO lines written (0 for png). */
  annotations: number;
  /** Holes that polygons could not carry (filled). */
  holesFilled: number;
  /** The index file written (annotations.json, classes.json or data.yaml). */
  file: string;
}

const flatName = (id: string): string => id.replace(/[\\/]/g, "__");

export async function exportDataset(ds: Dataset, out: string, options: ExportOptions): Promise<ExportSummary> {
  const { to } = options;
  if (!EXPORT_TARGETS.includes(to)) {
    throw new SegkitError(`unknown export target "${to}"`, { hint: `valid targets: ${EXPORT_TARGETS.join(", ")}` });
  }
  if (to !== "coco" && (options.polygons || options.instances)) {
    throw new SegkitError(`polygons and instances apply to coco export, not ${to}`, {
      hint:
        to === "yolo"
          ? "YOLO labels are always polygons, one per connected component"
          : "png masks are written as they are",
    });
  }
  const { categories, categoryOf } = cocoCategories(ds.classNames, ds.backgroundClass);
  const yoloOf = yoloClassOf(ds.classNames, ds.backgroundClass);
  const coco: CocoInstances = { images: [], categories, annotations: [] };
  const skipped: SkippedSample[] = [];
  let annotations = 0;
  let holesFilled = 0;
  const used = new Set<string>();
  const skip = (i: number, err: unknown) => {
    const s = skippedFrom(ds, i, err);
    skipped.push(s);
    options.onSkip?.(s);
    options.onProgress?.(i + 1, ds.length);
  };
  for (let i = 0; i < ds.length; i++) {
    // load: only the mask when the image can be copied from its file
    const imageFile = ds.files(i)[0];
    let mask: Mask;
    let image: Uint8Array;
    try {
      if (imageFile) {
        [mask, image] = await Promise.all([
          ds.getMask ? ds.getMask(i) : ds.get(i).then((s) => s.mask),
          readFile(imageFile),
        ]);
      } else {
        const sample = await ds.get(i);
        [mask, image] = [sample.mask, await encodePng(sample.image)];
      }
    } catch (err) {
      skip(i, err);
      continue;
    }
    // where the image goes
    const name = flatName(ds.id(i));
    const ext = imageFile ? extname(imageFile) : ".png";
    let fileName = `images/${name}${ext}`;
    if (to === "coco" && imageFile && options.root) {
      if (isWithin(options.root, imageFile)) {
        fileName = relative(resolve(options.root), resolve(imageFile)).split("\\").join("/");
      }
    }
    // two ids that flatten to one name (a/b, a__b) would write one file over the other
    const key = to === "coco" ? fileName : name;
    if (used.has(key)) {
      skip(i, new SegkitError(`sample ${ds.id(i)} would be written as ${key}, as an earlier sample was`));
      continue;
    }
    used.add(key);
    await writeFileAtomic(join(out, fileName), image);
    // the labels
    if (to === "coco") {
      const imageId = coco.images.length + 1;
      coco.images.push({ id: imageId, file_name: fileName, width: mask.width, height: mask.height });
      const found = maskToAnnotations(mask, {
        categoryOf,
        ...(options.instances ? { instances: true } : {}),
        ...(options.polygons ? { polygons: true } : {}),
        ...(options.tolerance !== undefined ? { tolerance: options.tolerance } : {}),
      });
      for (const a of found.annotations) {
        coco.annotations.push({ id: coco.annotations.length + 1, image_id: imageId, ...a } as CocoAnnotation);
      }
      holesFilled += found.holesFilled;
    } else if (to === "yolo") {
      const found = yoloLines(mask, yoloOf, options.tolerance);
      await writeFileAtomic(join(out, "labels", `${name}.txt`), found.lines.map((l) => `${l}\n`).join(""));
      annotations += found.lines.length;
      holesFilled += found.holesFilled;
    } else {
      await writeFileAtomic(join(out, "masks", `${name}.png`), maskPng(ds, mask));
    }
    options.onProgress?.(i + 1, ds.length);
  }
  // the index file
  const indexFile = join(out, to === "coco" ? "annotations.json" : to === "yolo" ? "data.yaml" : "classes.json");
  if (to === "coco") {
    annotations = coco.annotations.length;
    await writeFileAtomic(indexFile, JSON.stringify(coco));
  } else if (to === "yolo") {
    await writeFileAtomic(
      indexFile,
      yoloDataYaml(
        resolve(out),
        ds.classNames.filter((_, c) => c !== ds.backgroundClass),
      ),
    );
  } else {
    const info = {
      classes: ds.classNames,
      ignoreIndex: DEFAULT_IGNORE_INDEX,
      ...(ds.backgroundClass !== undefined ? { backgroundClass: ds.backgroundClass } : {}),
    };
    await writeFileAtomic(indexFile, `${JSON.stringify(info, null, 2)}\n`);
  }
  return { samples: ds.length - skipped.length, skipped, annotations, holesFilled, file: indexFile };
}

/** The mask as a palette PNG with the ignore index moved to 255 (`DEFAULT_IGNORE_INDEX`). */
function maskPng(ds: Dataset, mask: Mask): Uint8Array {
  let data = mask.data;
  if (ds.ignoreIndex !== DEFAULT_IGNORE_INDEX) {
    data = data.map((v) => (v === ds.ignoreIndex ? DEFAULT_IGNORE_INDEX : v));
  }
  return encodeMaskPng(
    { width: mask.width, height: mask.height, data },
    { classNames: ds.classNames, ...(ds.palette ? { palette: ds.palette } : {}) },
  );
}
