/**
 * Automatic masks on disk (what `segkit sam auto` writes) for an image file or a directory of images, named by each
 * image's base name (`cat.jpg` -> `cat.*`):
 * - one image: `cat.json`, the records as segment-anything's `scripts/amg.py --convert-to-rle` writes them: a JSON
 *   list in the generator's order (decreasing score), `segmentation` a COCO RLE `{ size: [h, w], counts: string }`,
 *   `bbox` and `crop_box` XYWH with the reference's inclusive maxima (width = maxX - minX), `point_coords` in pixels;
 * - a directory: `annotations.json` (`AMG_COCO_FILE`), COCO instances: `images` (`file_name` relative to the
 *   directory), one category `{ id: 1, name: "object" }`, one annotation per record with compressed RLE,
 *   `iscrowd: 0`, `area`, `bbox` as pycocotools' `toBbox` gives it (`[x, y, w, h]` of the pixels, w = maxX - minX + 1)
 *   and the generator's scores, `score` (predicted IoU, what pycocotools' `loadRes` reads) and `stability_score`;
 *   `AmgCocoInstancesSchema` checks it;
 * - every image: `cat.overlay.png`, all masks tinted over the image, largest first so smaller masks stay visible,
 *   each in its own colour (`amgOverlay`);
 * - with `masksPng`: `cat/mask-K.png`, record K as 8-bit gray 0 / 255 at the image size.
 * In a directory, unreadable images, images the model cannot take (e.g. 3000 x 1) and files whose base name repeats
 * an earlier one are reported (`onSkip`) and skipped (a failing model ends the run); an aborted `signal` stops at the
 * next decoder call and keeps what is finished (`annotations.json` lists the finished images).
 */
import { basename, join } from "node:path";
import { z } from "zod";
import { SegkitError } from "../../core/errors.js";
import { createMask, type RgbImage } from "../../core/image.js";
import { INSTANCE_PALETTE } from "../../core/palette.js";
import type { SkippedSample } from "../../core/skipped.js";
import { CocoAnnotationSchema, CocoInstancesSchema } from "../../export/coco.js";
import { type ImageJob, runImageFiles } from "../../infer/batch.js";
import { writeFileAtomic } from "../../io/fs.js";
import { encodeBinaryMaskPng, overlayMask, writeImagePng } from "../../io/write.js";
import { type Rle, rleArea, rlePaint, rleToBbox, rleToString } from "../../masks/rle.js";
import type { SamPredictor } from "../predictor.js";
import { samInputShape } from "../transforms.js";
import { type AmgOptions, type AmgProgress, type AmgRecord, generateMasks, validateAmgOptions } from "./generator.js";

/** The COCO file of a directory run. */
export const AMG_COCO_FILE = "annotations.json";

/** The COCO instances schema with the generator's scores on each annotation (both in [0, 1]). */
export const AmgCocoInstancesSchema = CocoInstancesSchema.safeExtend({
  annotations: z.array(
    CocoAnnotationSchema.extend({ score: z.number().min(0).max(1), stability_score: z.number().min(0).max(1) }),
  ),
});
export type AmgCocoInstances = z.infer<typeof AmgCocoInstancesSchema>;

export interface AmgFilesOptions extends Omit<AmgOptions, "outputMode" | "onProgress"> {
  /** Also write `NAME/mask-K.png` per record. */
  masksPng?: boolean;
  /** The generator's progress (after every batch of points) with the image it is on. */
  onProgress?: (progress: AmgFilesProgress) => void;
  onSkip?: (skip: SkippedSample) => void;
}

export interface AmgFilesProgress extends AmgProgress {
  /** The image file, its index among the images to segment, and their count. */
  file: string;
  image: number;
  images: number;
}

export interface AmgFilesSummary {
  /** Images segmented and written, and their masks. */
  images: number;
  masks: number;
  skipped: SkippedSample[];
  /** Files written (paths under the output directory), in order. */
  written: string[];
  /** True when the signal stopped the run before every image was done. */
  stopped: boolean;
  seconds: number;
}

/** Gray levels: mask value 255 is written as white. */

/**
 * `image` with every record's mask tinted (alpha 0.5), largest area first so later, smaller masks paint over it;
 * record colours cycle through 254 hues in that order. Records hold uncompressed RLEs at the image size.
 */
export function amgOverlay(image: RgbImage, records: readonly AmgRecord[]): RgbImage {
  const labels = createMask(image.width, image.height);
  const order = records.map((_, i) => i).sort((a, b) => (records[b]?.area ?? 0) - (records[a]?.area ?? 0) || a - b);
  for (const [k, i] of order.entries()) {
    const label = (k % 254) + 1;
    rlePaint(labels, rleOf(records[i] as AmgRecord), label);
  }
  return overlayMask(image, labels, { palette: INSTANCE_PALETTE, skipClasses: [0] });
}

function rleOf(record: AmgRecord): Rle {
  const s = record.segmentation;
  if (!("counts" in s) || typeof s.counts === "string") {
    throw new SegkitError("amg files: records must hold uncompressed RLEs (outputMode uncompressed_rle)");
  }
  return s as Rle;
}

/** The records in the reference's `--convert-to-rle` form: `segmentation` as pycocotools' counts string. */
export function amgRecordsJson(records: readonly AmgRecord[]): AmgRecord[] {
  return records.map((r) => ({ ...r, segmentation: rleToString(rleOf(r)) }));
}

/** One COCO instances object of segmented images (see the module comment); ids count from 1 in the given order. */
export function amgCoco(
  images: readonly { fileName: string; width: number; height: number; records: readonly AmgRecord[] }[],
): AmgCocoInstances {
  const coco: AmgCocoInstances = { images: [], categories: [{ id: 1, name: "object" }], annotations: [] };
  for (const [i, im] of images.entries()) {
    coco.images.push({ id: i + 1, file_name: im.fileName, width: im.width, height: im.height });
    for (const r of im.records) {
      const rle = rleOf(r);
      const { size, counts } = rleToString(rle);
      coco.annotations.push({
        id: coco.annotations.length + 1,
        image_id: i + 1,
        category_id: 1,
        segmentation: { size: [size[0], size[1]], counts },
        area: rleArea(rle),
        bbox: rleToBbox(rle),
        iscrowd: 0,
        score: r.predicted_iou,
        stability_score: r.stability_score,
      });
    }
  }
  return coco;
}

/**
 * Segments an image file or every image of a directory (`listImageFiles`) with `predictor` and writes the files of
 * the module comment into `outDir`. Options are checked before any work (`validateAmgOptions`); a directory run may
 * not write into its own input directory (the overlays would be read as images next time).
 */
export async function generateMaskFiles(
  predictor: SamPredictor,
  input: string,
  outDir: string,
  options: AmgFilesOptions = {},
): Promise<AmgFilesSummary> {
  const started = performance.now();
  const { masksPng, onProgress, onSkip, ...amg } = options;
  validateAmgOptions(amg);
  const written: string[] = [];
  const write = async (file: string, data: Uint8Array | string) => {
    await writeFileAtomic(join(outDir, file), data);
    written.push(file);
  };
  const done: Parameters<typeof amgCoco>[0][number][] = [];
  let masks = 0;
  // 1. the images (in a directory, a bad image, unreadable or too elongated for SAM's frame, is reported and skipped)
  const summary = await runImageFiles(
    input,
    outDir,
    "write the masks to another directory (the overlays would be read as images on the next run)",
    async ([job], { total: images, isDir }) => {
      const { path, name, index, image } = job as ImageJob;
      // 2. masks as uncompressed RLEs; an abort stops at the next decoder call
      const records = await generateMasks(predictor, image, {
        ...amg,
        outputMode: "uncompressed_rle",
        onProgress: (p) => onProgress?.({ ...p, file: path, image: index, images }),
      });
      // 3. this image's files
      if (!isDir) await write(`${name}.json`, `${JSON.stringify(amgRecordsJson(records))}\n`);
      await writeImagePng(join(outDir, `${name}.overlay.png`), amgOverlay(image, records));
      written.push(`${name}.overlay.png`);
      if (masksPng) {
        for (const [k, r] of records.entries()) {
          const mask = rlePaint(createMask(image.width, image.height), rleOf(r), 1);
          await write(join(name, `mask-${k}.png`), encodeBinaryMaskPng(mask));
        }
      }
      done.push({ fileName: basename(path), width: image.width, height: image.height, records });
      masks += records.length;
    },
    {
      check: (image) => void samInputShape(image),
      throwOnSingleFile: true,
      signal: amg.signal,
      onSkip,
    },
  );
  // 4. a directory's COCO file, of the images finished
  if (summary.isDir && done.length > 0) await write(AMG_COCO_FILE, `${JSON.stringify(amgCoco(done))}\n`);
  const { skipped, stopped } = summary;
  return { images: done.length, masks, skipped, written, stopped, seconds: (performance.now() - started) / 1000 };
}
