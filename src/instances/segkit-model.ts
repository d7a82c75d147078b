import { SegkitError } from "../core/errors.js";
import { loadPredictor, type PredictorOptions } from "../infer/predict.js";
import { targetsToInstances } from "../masks/instance-targets.js";
import type { InstanceModel } from "./model.js";

/**
 * A segkit model trained with `--task instance` (its card's `instances`) as an instance model: the predicted map of
 * background / boundary / interiors split by `targetsToInstances`, scores the mean interior probability. `tile`: the
 * predictor's sliding windows at the image's own scale, for a model trained on crops of larger images.
 */
export async function createSegkitInstanceModel(
  dir: string,
  options: { threads?: number; tile?: PredictorOptions["tile"] } = {},
): Promise<InstanceModel> {
  const { threads, tile } = options;
  const predictor = await loadPredictor(dir, { ...(threads ? { threads } : {}), ...(tile ? { tile } : {}) });
  const instances = predictor.instances;
  if (!instances) {
    await predictor.dispose();
    throw new SegkitError("a semantic segkit model: its classes are not instance targets", {
      file: predictor.dir,
      hint: "train an instance model with segkit train --task instance",
    });
  }
  const ids = instances.categories.map((c) => c.id);
  return {
    kind: "segkit",
    dir: predictor.dir,
    categories: instances.categories,
    async predict(image, opts = {}) {
      const { mask, probs } = await predictor.predict(image, { probs: true });
      const found = targetsToInstances(mask, ids, probs ? { probs } : {});
      const keep = found.scores.map((s, k) => (s > (opts.scoreThreshold ?? 0) ? k : -1)).filter((k) => k >= 0);
      return {
        ...found,
        masks: keep.map((k) => found.masks[k] as (typeof found.masks)[number]),
        boxes: keep.map((k) => found.boxes[k] as (typeof found.boxes)[number]),
        classIds: keep.map((k) => found.classIds[k] as number),
        scores: keep.map((k) => found.scores[k] as number),
      };
    },
    dispose: () => predictor.dispose(),
  };
}
