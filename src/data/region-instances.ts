import { SegkitError } from "../core/errors.js";
import { createMask, type Mask } from "../core/image.js";
import { connectedComponents } from "../masks/components.js";
import { type Instances, maskBox } from "../masks/instances.js";
import { rleEncode } from "../masks/rle.js";
import { type Dataset, viewInfo } from "./dataset.js";

/**
 * Instances where a class map has no instance labels but its objects are the separate regions of one class: ISBI
 * 2012's cells are the 4-connected regions of the `cell` class between membranes (two cells touching only at a
 * corner are two cells). Each region is one instance of category `categoryId`, score 1, in raster order of its
 * first pixel; pixels of other classes (and ignored ones) belong to no instance.
 */
export function regionInstances(mask: Mask, classIndex: number, categoryId = 1): Instances {
  const { width: w, height: h } = mask;
  const { labels, sizes } = connectedComponents(mask, { connectivity: 4, value: classIndex });
  const bitmaps = sizes.map(() => createMask(w, h));
  for (let p = 0; p < labels.length; p++) {
    const label = labels[p] as number;
    if (label > 0) (bitmaps[label - 1] as Mask).data[p] = 1;
  }
  const masks = bitmaps.map((m) => rleEncode(m));
  return {
    width: w,
    height: h,
    masks,
    boxes: masks.map(maskBox),
    classIds: masks.map(() => categoryId),
    scores: masks.map(() => 1),
  };
}

/**
 * A semantic dataset as an instance dataset whose instances are the regions of class `classIndex`
 * (`regionInstances`), one category `{ id: 1, name }` (default: the class's name). Samples keep their class map and
 * carry `instances`, as `openDataset(path, { task: "instance" })` gives them; `instanceTargetDataset` turns them
 * into the background / boundary / interior maps an instance model learns.
 */
export function regionInstanceDataset(ds: Dataset, options: { classIndex: number; name?: string }): Dataset {
  const { classIndex } = options;
  const name = options.name ?? ds.classNames[classIndex];
  if (name === undefined) {
    throw new SegkitError(`class ${classIndex} is not a class of this ${ds.format} dataset`, {
      hint: `its classes: ${ds.classNames.join(", ")}`,
    });
  }
  const instancesOf = (m: Mask) => regionInstances(m, classIndex);
  const getInstances = async (i: number) => instancesOf(ds.getMask ? await ds.getMask(i) : (await ds.get(i)).mask);
  return {
    ...viewInfo(ds),
    length: ds.length,
    categories: [{ id: 1, name }],
    id: (i) => ds.id(i),
    files: (i) => ds.files(i),
    async get(i, size) {
      const s = await ds.get(i, size);
      return { id: s.id, image: s.image, mask: s.mask, instances: instancesOf(s.mask) };
    },
    ...(ds.getMask ? { getMask: ds.getMask.bind(ds) } : {}),
    getInstances,
  };
}
