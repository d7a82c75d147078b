import { SegkitError } from "../core/errors.js";
import { loadPredictor, type PredictorOptions } from "../infer/predict.js";
import { targetsToInstances } from "../masks/instance-targets.js";
import { filterInstances } from "../masks/instances.js";
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
      return filterInstances(found, (k) => (found.scores[k] as number) > (opts.scoreThreshold ?? 0));
    },
    dispose: () => predictor.dispose(),
  };
}
