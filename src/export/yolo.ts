import { stringify } from "yaml";
import { type Mask, maskHistogram } from "../core/image.js";
import { DEFAULT_POLYGON_OPTIONS, maskToPolygons } from "../masks/polygon.js";

/**
 * YOLO segmentation labels (Ultralytics): one text file per image, one line per instance,
 * `class x1 y1 x2 y2 ...` with the outer ring of the instance's polygon normalised to [0, 1] by the image's width
 * and height (pixel corners on the integers, as `maskToPolygons` traces them; up to 6 decimals).
 *
 * Conventions: an instance is a 4-connected component of one class; YOLO class ids are the dataset's classes without
 * its background class, renumbered 0, 1, ... in class order (`yoloClassOf`); ignore-index pixels are not labelled.
 * YOLO polygons have no holes: holes are filled (counted in `holesFilled`).
 */

/** `classOf[class index]`: the YOLO class id, undefined for the background (not labelled). */
export function yoloClassOf(classNames: readonly string[], backgroundClass?: number): (number | undefined)[] {
  let next = 0;
  return classNames.map((_, c) => (c === backgroundClass ? undefined : next++));
}

const coord = (v: number): string => String(Number(v.toFixed(6)));

/** The label lines of one class-index mask (see the module comment). */
export function yoloLines(
  mask: Mask,
  classOf: readonly (number | undefined)[],
  tolerance: number = DEFAULT_POLYGON_OPTIONS.tolerance,
): { lines: string[]; holesFilled: number } {
  const histogram = maskHistogram(mask);
  const lines: string[] = [];
  let holesFilled = 0;
  classOf.forEach((yoloClass, c) => {
    if (yoloClass === undefined || !histogram[c]) return;
    for (const { outer, holes } of maskToPolygons(mask, { value: c, tolerance })) {
      holesFilled += holes.length;
      const xy = outer.map((v, j) => coord(v / (j % 2 === 0 ? mask.width : mask.height)));
      lines.push(`${yoloClass} ${xy.join(" ")}`);
    }
  });
  return { lines, holesFilled };
}

/** The `data.yaml` of an Ultralytics dataset at `root` (absolute, as Ultralytics resolves relative roots elsewhere). */
export function yoloDataYaml(root: string, names: readonly string[]): string {
  return `# written by segkit export: images/ with labels/ beside it; train and val are the same set, split as needed\n${stringify(
    { path: root, train: "images", val: "images", names: Object.fromEntries(names.map((n, i) => [i, n])) },
  )}`;
}
