/**
 * Pre-labels for the studio: a trained segkit model's prediction of an image as instances, one per 4-connected
 * component of each class (`maskToAnnotations` with `instances`), the model's classes matched to the project's by
 * name (case-insensitive); the model's background class and classes the project does not have are left out.
 */
import { maskToAnnotations } from "../export/coco.js";
import type { Predictor } from "../infer/predict.js";
import type { CompressedRle } from "../masks/rle.js";
import type { StudioClass, StudioImage } from "./store.js";

export async function modelPrelabels(
  predictor: Predictor,
  image: StudioImage,
  classes: readonly StudioClass[],
): Promise<{ classId: number; rle: CompressedRle }[]> {
  const { mask } = await predictor.predict(image.path);
  const categoryOf = predictor.classes.map((name, c) =>
    c === predictor.backgroundClass ? undefined : classes.find((k) => k.name.toLowerCase() === name.toLowerCase())?.id,
  );
  const { annotations } = maskToAnnotations(mask, { categoryOf, instances: true });
  return annotations.map((a) => ({ classId: a.category_id, rle: a.segmentation as CompressedRle }));
}
