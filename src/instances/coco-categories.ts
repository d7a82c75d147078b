/** COCO's category ids and names, as the reference tools number them. */

/** torchvision's `_COCO_CATEGORIES`: the names of labels 0..90 ("__background__" and the "N/A" gaps included). */
// biome-ignore format: the 91 names, several to a line
export const COCO_91_NAMES: readonly string[] = [
  "__background__", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
  "traffic light", "fire hydrant", "N/A", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse",
  "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "N/A", "backpack", "umbrella", "N/A", "N/A", "handbag",
  "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
  "skateboard", "surfboard", "tennis racket", "bottle", "N/A", "wine glass", "cup", "fork", "knife", "spoon", "bowl",
  "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
  "couch", "potted plant", "bed", "N/A", "dining table", "N/A", "N/A", "toilet", "N/A", "tv", "laptop", "mouse",
  "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "N/A", "book", "clock",
  "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
];

/**
 * COCO's ids of `names` when they are COCO's 80 categories in COCO's order (a model trained on COCO, as Ultralytics
 * names them: its `coco80_to_coco91_class` numbering), else undefined.
 */
export function cocoIdsOf(names: readonly string[]): number[] | undefined {
  const ids: number[] = [];
  for (const [id, name] of COCO_91_NAMES.entries()) if (id > 0 && name !== "N/A") ids.push(id);
  if (names.length !== ids.length) return undefined;
  return names.every((n, i) => n === COCO_91_NAMES[ids[i] as number]) ? ids : undefined;
}
