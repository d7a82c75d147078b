/**
 * Mask R-CNN as torchvision exports it to ONNX (`maskrcnn_resnet50_fpn`, `_v2`, or any `MaskRCNN` module, through
 * `torch.onnx.export` at opset 11+ as torchvision's test_onnx.py does): one float image `[3, H, W]` in 0..1 (RGB,
 * CHW) in; `boxes` `[N, 4]` (x1, y1, x2, y2 in image pixels), `labels` `[N]` (int64 category ids), `scores` `[N]`
 * and `masks` `[N, 1, H, W]` (probabilities at the image's size) out, best score first. Resizing, normalisation,
 * the RPN, NMS and the paste of the masks into the image all happen inside the graph, so segkit only scales the
 * pixels to 0..1, and thresholds the masks at 0.5 (`mask >= 0.5`, the threshold torchvision's documentation gives)
 * into RLE.
 *
 * Class names come from `labels.json` beside the model (a list of names indexed by label, index 0 the background,
 * as torchvision's `weights.meta["categories"]`; a list of `{ id, name }`; or an object `{ "<id>": name }`), else
 * from `config.json`'s `id2label` (the transformers form), else COCO's 91 ids (torchvision's `_COCO_CATEGORIES`, N/A
 * gaps included) when the model has 91 classes, else `class_<id>`. Names "__background__" and "N/A" are no category.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import { z } from "zod";
import { SegkitError } from "../core/errors.js";
import type { RgbImage } from "../core/image.js";
import { readJson } from "../io/fs.js";
import { type Rle, rleEncode } from "../masks/rle.js";
import type { OnnxSession, OnnxValueInfo } from "../onnx/session.js";
import { COCO_91_NAMES } from "./coco-categories.js";
import type { Box } from "./instances.js";
import type { InstanceModel } from "./model.js";

/** The mask probability at and above which a pixel is the instance's (torchvision's documented convention). */
export const MASK_THRESHOLD = 0.5;

type Category = { id: number; name: string };
type Outputs = { boxes: string; labels: string; scores: string; masks: string };

const OUTPUTS = ["boxes", "labels", "scores", "masks"] as const;
/** Element types and ranks of boxes, labels, scores, masks. */
const EXPECTED: readonly [string, number][] = [
  ["float32", 2],
  ["int64", 1],
  ["float32", 1],
  ["float32", 4],
];

const fits = (v: OnnxValueInfo | undefined, [type, rank]: [string, number]) =>
  v !== undefined && v.type === type && (v.shape.length === 0 || v.shape.length === rank);

/**
 * The graph's boxes / labels / scores / masks outputs: by name (torchvision's test export names them so), or, when
 * it was exported without `output_names` (numbered outputs), its four outputs in torchvision's order; each of the
 * expected type and rank. Undefined when the graph is not a Mask R-CNN export of one `[3, H, W]` float image.
 */
function maskRcnnOutputs(session: OnnxSession): Outputs | undefined {
  const [input] = session.inputs;
  if (session.inputs.length !== 1 || input?.type !== "float32" || input.shape.length !== 3) return undefined;
  if (typeof input.shape[0] === "number" && input.shape[0] !== 3) return undefined;
  const named = OUTPUTS.map((name) => session.outputs.find((o) => o.name === name));
  const chosen = named.every((o) => o) ? named : session.outputs.length === 4 ? [...session.outputs] : [];
  if (chosen.length !== 4 || !chosen.every((o, k) => fits(o, EXPECTED[k] as [string, number]))) return undefined;
  const [boxes = "", labels = "", scores = "", masks = ""] = chosen.map((o) => o?.name ?? "");
  return { boxes, labels, scores, masks };
}

/** Whether `session` looks like torchvision's Mask R-CNN export (see `maskRcnnOutputs`). */
export function isMaskRcnnGraph(session: OnnxSession): boolean {
  return maskRcnnOutputs(session) !== undefined;
}

const NOT_CATEGORY = new Set(["__background__", "N/A", ""]);
const MAX_ID = 2 ** 24; // labels come back as float32 (exact up to 2^24)

const LabelsSchema = z.union([
  z.array(z.string()).max(MAX_ID),
  z.array(z.object({ id: z.number().int().min(0).max(MAX_ID), name: z.string() })).max(MAX_ID),
  z.record(z.string().regex(/^\d+$/), z.string()),
]);
const ConfigSchema = z.looseObject({ id2label: z.record(z.string().regex(/^\d+$/), z.string()).optional() });

/** Categories in id order, without the background and "N/A" entries; an id named twice is an error. */
function toCategories(labels: z.infer<typeof LabelsSchema>, file?: string): Category[] {
  const pairs: [number, string][] = Array.isArray(labels)
    ? labels.map((entry, index) => (typeof entry === "string" ? [index, entry] : [entry.id, entry.name]))
    : Object.entries(labels).map(([id, name]) => [Number(id), name]);
  const categories = pairs
    .filter(([id, name]) => !NOT_CATEGORY.has(name) && id <= MAX_ID)
    .sort((a, b) => a[0] - b[0])
    .map(([id, name]) => ({ id, name }));
  const twice = categories.find((c, k) => k > 0 && categories[k - 1]?.id === c.id);
  if (twice) throw new SegkitError(`label id ${twice.id} is named twice`, file ? { file } : {});
  return categories;
}

/** The classes of the graph (background included): the rows of torchvision's `roi_heads.box_predictor.cls_score`. */
function countClasses(graph: Uint8Array): number | undefined {
  const model = onnxProto.onnx.ModelProto.decode(graph);
  const bias = model.graph?.initializer?.find((t) => t.name?.endsWith("box_predictor.cls_score.bias"));
  return bias?.dims?.length === 1 ? Number(bias.dims[0]) : undefined;
}

/**
 * The model's categories: labels.json, else config.json's id2label, else COCO's when the graph has 91 classes, else
 * `class_<id>` for labels 1..classes-1 (none when the graph's bytes are not given or do not say how many classes).
 */
export async function maskRcnnCategories(dir: string, graph?: Uint8Array): Promise<Category[]> {
  const labelsFile = join(dir, "labels.json");
  if (existsSync(labelsFile)) {
    const parsed = LabelsSchema.safeParse(await readJson(labelsFile));
    if (!parsed.success) {
      throw new SegkitError("expected a list of class names (index = label), a list of { id, name } or { id: name }", {
        file: labelsFile,
      });
    }
    return toCategories(parsed.data, labelsFile);
  }
  const configFile = join(dir, "config.json");
  if (existsSync(configFile)) {
    const parsed = ConfigSchema.safeParse(await readJson(configFile));
    if (!parsed.success) throw new SegkitError("id2label must map label ids to names", { file: configFile });
    if (parsed.data.id2label) return toCategories(parsed.data.id2label, configFile);
  }
  const classes = graph ? countClasses(graph) : undefined;
  if (classes === 91) return toCategories([...COCO_91_NAMES]);
  return Array.from({ length: Math.max(0, (classes ?? 0) - 1) }, (_, k) => ({ id: k + 1, name: `class_${k + 1}` }));
}

/** The image as torchvision's input: float32 `[3, H, W]`, RGB in 0..1. */
export function imageToChw(image: RgbImage): Float32Array {
  const { data, width, height } = image;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    out[i] = (data[i * 3] as number) / 255;
    out[plane + i] = (data[i * 3 + 1] as number) / 255;
    out[2 * plane + i] = (data[i * 3 + 2] as number) / 255;
  }
  return out;
}

/** Mask `k` of `[N, 1, H, W]` probabilities, thresholded at `MASK_THRESHOLD`, as RLE. */
function maskRle(probs: Float32Array, k: number, width: number, height: number): Rle {
  const plane = width * height;
  const bits = new Uint8Array(plane);
  for (let i = 0; i < plane; i++) bits[i] = (probs[k * plane + i] as number) >= MASK_THRESHOLD ? 1 : 0;
  return rleEncode({ data: bits, width, height });
}

/**
 * An InstanceModel over a torchvision Mask R-CNN session (`file`: its .onnx, named in errors; `graph`: its bytes, for
 * the class count when no labels are given; `dir`: the folder with labels.json or config.json). The model owns the session: `dispose()` releases it. `predict`'s `scoreThreshold` keeps the
 * detections scoring above it, on top of the graph's own `box_score_thresh` (0.05 by default).
 */
export async function createMaskRcnnModel(
  session: OnnxSession,
  dir: string,
  file: string,
  graph?: Uint8Array,
): Promise<InstanceModel> {
  const outputs = maskRcnnOutputs(session);
  if (!outputs) {
    const io = (vs: readonly OnnxValueInfo[]) => vs.map((v) => `${v.name} ${v.type} [${v.shape.join(",")}]`).join(", ");
    throw new SegkitError(
      `not a torchvision Mask R-CNN graph (inputs: ${io(session.inputs)}; outputs: ${io(session.outputs)})`,
      {
        file,
        hint: "expected one float [3,H,W] image in and boxes [N,4], labels [N] int64, scores [N], masks [N,1,H,W] out",
      },
    );
  }
  const categories = await maskRcnnCategories(dir, graph);
  const input = session.inputs[0] as OnnxValueInfo;
  const [, fixedH, fixedW] = input.shape;
  return {
    kind: "mask-rcnn",
    dir,
    categories,
    async predict(image, options = {}) {
      const { width, height } = image;
      if ((typeof fixedH === "number" && fixedH !== height) || (typeof fixedW === "number" && fixedW !== width)) {
        throw new SegkitError(`the graph takes ${fixedW}x${fixedH} images only, this one is ${width}x${height}`, {
          file,
          hint: "export with dynamic_axes for the image's height and width (see the README)",
        });
      }
      const threshold = options.scoreThreshold ?? 0;
      const out = await session.run({ [input.name]: { data: imageToChw(image), dims: [3, height, width] } }, [
        outputs.boxes,
        outputs.labels,
        outputs.scores,
        outputs.masks,
      ]);
      const boxes = out[outputs.boxes]?.data ?? new Float32Array();
      const labels = out[outputs.labels]?.data ?? new Float32Array();
      const scores = out[outputs.scores]?.data ?? new Float32Array();
      const masks = out[outputs.masks];
      const n = scores.length;
      const [mn, mc, mh, mw] = masks?.dims ?? [];
      if (!masks || labels.length !== n || boxes.length !== 4 * n || mn !== n || (n > 0 && mc !== 1)) {
        throw new SegkitError(
          `the graph returned ${n} scores, ${labels.length} labels, boxes [${boxes.length / 4},4]`,
          {
            file,
          },
        );
      }
      if (n > 0 && (mh !== height || mw !== width)) {
        throw new SegkitError(`the graph's masks are ${mw}x${mh}, the image ${width}x${height}`, { file });
      }
      const result = { masks: [] as Rle[], boxes: [] as Box[], classIds: [] as number[], scores: [] as number[] };
      for (let k = 0; k < n; k++) {
        const score = scores[k] as number;
        if (!(score > threshold)) continue;
        result.masks.push(maskRle(masks.data, k, width, height));
        const at = (j: number) => boxes[4 * k + j] as number;
        result.boxes.push([at(0), at(1), at(2), at(3)]);
        result.classIds.push(labels[k] as number);
        result.scores.push(score);
      }
      return { width, height, ...result };
    },
    dispose: () => session.dispose(),
  };
}
