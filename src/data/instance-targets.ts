import { SegkitError } from "../core/errors.js";
import { instancesToTargets, instanceTargetClasses } from "../masks/instance-targets.js";
import type { Dataset } from "./dataset.js";

/**
 * An instance dataset seen as the class maps a semantic model learns instances from (`instancesToTargets`:
 * background, boundary, one interior class per category; crowd regions ignored). The images are the dataset's own.
 */
export function instanceTargetDataset(ds: Dataset, options: { boundary?: number } = {}): Dataset {
  const { categories, getInstances } = ds;
  if (!categories || !getInstances) {
    throw new SegkitError(`format ${ds.format} has no instances`, {
      hint: 'use a COCO instance file (format coco, task "instance") or synthetic-instances',
    });
  }
  const ids = categories.map((c) => c.id);
  const boundary = options.boundary ?? 1;
  const targets = { boundary, ignoreIndex: ds.ignoreIndex };
  return {
    format: ds.format,
    classNames: instanceTargetClasses(categories.map((c) => c.name)),
    ignoreIndex: ds.ignoreIndex,
    backgroundClass: 0,
    skipped: ds.skipped,
    length: ds.length,
    categories,
    instanceTargets: { boundary },
    id: (i) => ds.id(i),
    files: (i) => ds.files(i),
    getInstances,
    async get(i) {
      const s = await ds.get(i);
      if (!s.instances) throw new SegkitError(`sample ${s.id} has no instances`, { file: ds.files(i)[0] });
      return { id: s.id, image: s.image, mask: instancesToTargets(s.instances, ids, targets), instances: s.instances };
    },
    getMask: async (i) => instancesToTargets(await getInstances(i), ids, targets),
  };
}
