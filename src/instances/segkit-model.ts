import { SegkitError } from "../core/errors.js";
import { loadPredictor } from "../infer/predict.js";
import { targetsToInstances } from "../masks/instance-targets.js";
import { filterInstances } from "../masks/instances.js";
import type { InstanceModel } from "./model.js";

/**
 * A segkit model trained with `--task instance` (its card's `instances`) as an instance model: the predicted map of
 * background / boundary / interiors split by `targetsToInstances`, scores the mean interior probability.
 */
export async function createSegkitInstanceModel(
  dir: string,
  options: { threads?: number } = {},
): Promise<InstanceModel> {
  const predictor = await loadPredictor(dir, options.threads ? { threads: options.threads } : {});
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
