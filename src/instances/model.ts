/**
 * Instance segmentation models behind one interface: `loadInstanceModel(dir)` finds the ONNX model in `dir`, opens it
 * and tells the kind from the graph's inputs and outputs (as SAM's loader does): YOLO-seg as Ultralytics exports it
 * (yolo-seg.ts), Mask R-CNN as torchvision exports it (mask-rcnn.ts); and segkit's own instance models (segkit-model.ts).
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { SegkitError } from "../core/errors.js";
import type { RgbImage } from "../core/image.js";
import { pathExists } from "../io/fs.js";
import { createOnnxSession, type OnnxSession, type OnnxValueInfo } from "../onnx/session.js";
import type { Instances } from "./instances.js";
import { createMaskRcnnModel, isMaskRcnnGraph } from "./mask-rcnn.js";
import { createSegkitInstanceModel } from "./segkit-model.js";
import { createYoloSegModel, isYoloSegGraph } from "./yolo-seg.js";

export interface InstanceModel {
  readonly kind: "mask-rcnn" | "yolo-seg" | "segkit";
  readonly dir: string;
  /** COCO-style categories; Instances.classIds are these ids. YOLO: id = class index + 1 (COCO's ids for COCO's 80 classes). Mask R-CNN: the label. */
  readonly categories: readonly { id: number; name: string }[];
  /** Instances of one RGB image, best score first, at the image's size. */
  predict(image: RgbImage, options?: { scoreThreshold?: number }): Promise<Instances>;
  dispose(): Promise<void>;
}

function describeValues(values: readonly OnnxValueInfo[]): string {
  return values.map((v) => `${v.name} [${v.shape.join(", ")}]`).join(", ");
}

/** The one `.onnx` file in `dir`, or a SegkitError saying what is there. */
async function findOnnx(dir: string): Promise<string> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    throw new SegkitError("cannot read the instance model directory", { file: dir, cause: err });
  }
  const onnx = entries.filter((e) => e.toLowerCase().endsWith(".onnx")).sort();
  if (onnx.length === 1) return join(dir, onnx[0] as string);
  throw new SegkitError(
    onnx.length === 0
      ? `no .onnx model in the directory (it holds ${entries.length ? entries.sort().join(", ") : "nothing"})`
      : `several .onnx models in the directory: ${onnx.join(", ")}`,
    { file: dir, hint: "an instance model directory holds one YOLO-seg or Mask R-CNN ONNX export" },
  );
}

/**
 * The instance model in `dir`: a segkit run or checkpoint trained with `--task instance`, else one `.onnx` file,
 * YOLO-seg (Ultralytics export) or Mask R-CNN (torchvision export), told apart by the graph. Throws a SegkitError naming the file and its inputs and outputs when it is neither.
 */
export async function loadInstanceModel(dir: string, options: { threads?: number } = {}): Promise<InstanceModel> {
  if ((await pathExists(join(dir, "card.json"))) || (await pathExists(join(dir, "best", "card.json")))) {
    return createSegkitInstanceModel(dir, options); // a segkit checkpoint or run (segkit train --task instance)
  }
  const file = await findOnnx(dir);
  const bytes = await readFile(file);
  let session: OnnxSession;
  try {
    session = await createOnnxSession(bytes, options.threads === undefined ? {} : { threads: options.threads });
  } catch (err) {
    if (err instanceof SegkitError) throw err;
    throw new SegkitError("onnxruntime cannot load the model", { file, cause: err });
  }
  try {
    if (isYoloSegGraph(session)) return createYoloSegModel(session, dir, file, bytes);
    if (isMaskRcnnGraph(session)) return await createMaskRcnnModel(session, dir, file, bytes);
    throw new SegkitError("not an instance segmentation model segkit knows", {
      file,
      hint:
        `inputs: ${describeValues(session.inputs)}; outputs: ${describeValues(session.outputs)}. ` +
        "Expected a YOLO-seg export (images [1,3,H,W] -> output0 [1,4+classes+32,anchors], output1 [1,32,H/4,W/4]) " +
        "or a torchvision Mask R-CNN export (image [3,H,W] -> boxes, labels, scores, masks)",
    });
  } catch (err) {
    await session.dispose();
    throw err;
  }
}
