/**
 * YOLO segmentation models as Ultralytics exports them to ONNX (`yolo export format=onnx` of YOLOv8-seg / YOLO11-seg),
 * post-processed exactly as Ultralytics' `SegmentationPredictor` does with its defaults (conf 0.25, iou 0.7,
 * max_det 300, class-aware NMS, retina_masks False). Transcribed from ultralytics `utils/ops.py`
 * (non_max_suppression, process_mask, crop_mask, scale_boxes, scale_masks), `data/augment.py` LetterBox and
 * `models/yolo/segment/predict.py`; the fixture script (scripts/fixtures/make_yolo_seg.py) holds the same transcription
 * in torch and the test compares the two.
 *
 * The graph: input `images` `[1, 3, H, W]` (RGB in 0..1), outputs `output0` `[1, 4 + nc + nm, anchors]` (boxes
 * cx, cy, w, h in input pixels, class scores, mask coefficients) and `output1` `[1, nm, H/4, W/4]` (prototypes). The
 * ONNX metadata (`metadata_props`) holds `names` (a Python dict literal), `imgsz`, `stride`, `task`.
 *
 * Steps, as Ultralytics:
 * 1. LetterBox(auto=False, center=True): scale r = min(H/h0, W/w0), resized size `round(w0 r) x round(h0 r)` (Python's
 *    round), bilinear resize (cv2 INTER_LINEAR semantics: half-pixel centres, no antialias; segkit rounds half up in
 *    float where cv2 uses 11-bit fixed-point weights: +-1 grey level), gray 114 padding split `round(d - 0.1)` before
 *    and `round(d + 0.1)` after, pixels / 255 in float32;
 * 2. non_max_suppression: anchors whose best class score > conf, boxes to x1y1x2y2, best class (first on ties),
 *    at most max_nms (30000) by score, boxes offset by class x 7680 (max_wh) so one NMS is class-aware, torchvision's
 *    NMS in float32 (IoU > iou suppresses), the first max_det kept: best score first;
 * 3. process_mask(upsample=True): coefficients x prototypes (logits), zeroed outside the box scaled to the prototype
 *    grid (pixel centre rule `x >= x1 && x < x2` on integer coordinates), bilinear to H x W, > 0;
 * 4. scale_boxes: minus the padding `round(d - 0.1)`, divided by the gain, clipped to the image;
 *    scale_masks: the 0/1 masks cropped to `int(pad) .. int(size - pad)`, bilinear to the original size, > 0.5.
 */
import onnxProto from "onnx-proto";
import { SegkitError } from "../core/errors.js";
import { createMask, type RgbImage } from "../core/image.js";
import { bilinearTaps, resizeBilinear } from "../masks/resize.js";
import { type Rle, rleEncode } from "../masks/rle.js";
import type { OnnxSession } from "../onnx/session.js";
import { cocoIdsOf } from "./coco-categories.js";
import type { Box, Instances } from "./instances.js";
import type { InstanceModel } from "./model.js";

/** Ultralytics' predictor defaults (`cfg/default.yaml`) and `non_max_suppression`'s constants. */
export const YOLO_DEFAULTS = { conf: 0.25, iou: 0.7, maxDet: 300, maxNms: 30000, maxWh: 7680 } as const;

const f32 = Math.fround;

/** Python's `round` (half to even) on a double. */
function pyRound(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The key/value `metadata_props` of an ONNX model (as Ultralytics' exporter writes them). */
export function onnxMetadata(bytes: Uint8Array): Record<string, string> {
  const model = onnxProto.onnx.ModelProto.decode(bytes);
  const out: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) if (p.key) out[p.key] = p.value ?? "";
  return out;
}

/**
 * Ultralytics' `names` metadata, `str()` of a Python dict of class index to name (`{0: 'person', 1: "it's"}`),
 * as a list by index. Undefined when the text is not such a dict.
 */
export function parseYoloNames(text: string): string[] | undefined {
  const entry = /\s*(\d+)\s*:\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s*(,|\}$)/y;
  const t = text.trim();
  if (!t.startsWith("{")) return undefined;
  if (/^\{\s*\}$/.test(t)) return [];
  const names: string[] = [];
  entry.lastIndex = 1;
  for (;;) {
    const m = entry.exec(t);
    if (!m) return undefined;
    const quoted = m[2] as string;
    names[Number(m[1])] = quoted.slice(1, -1).replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)/g, (_, e: string) => {
      if (e.length > 1) return String.fromCharCode(Number.parseInt(e.slice(1), 16));
      return ({ n: "\n", t: "\t", r: "\r" } as Record<string, string>)[e] ?? e;
    });
    if (m[3] === "}") break;
  }
  return Array.from(names, (n, i) => n ?? `class${i}`);
}

/** Whether the graph has the Ultralytics segmentation export's signature (one 4-D input; a 3-D and a 4-D output). */
export function isYoloSegGraph(session: OnnxSession): boolean {
  const [input] = session.inputs;
  const ranks = session.outputs.map((o) => o.shape.length);
  return (
    session.inputs.length === 1 && input?.shape.length === 4 && ranks.length === 2 && ranks[0] === 3 && ranks[1] === 4
  );
}

/** The letterboxed input: `[1, 3, H, W]` float32 in 0..1 and the geometry to undo it. */
export interface Letterbox {
  readonly data: Float32Array;
  readonly width: number;
  readonly height: number;
  /** Padding before the image, left and top (`round(d - 0.1)`). */
  readonly left: number;
  readonly top: number;
}

/** Ultralytics' LetterBox(new_shape = (height, width), auto=False, scaleup=True, center=True), RGB / 255. */
export function letterbox(img: RgbImage, width: number, height: number): Letterbox {
  const r = Math.min(height / img.height, width / img.width);
  const nw = pyRound(img.width * r);
  const nh = pyRound(img.height * r);
  const dw = (width - nw) / 2;
  const dh = (height - nh) / 2;
  const left = pyRound(dw - 0.1);
  const top = pyRound(dh - 0.1);
  let pixels: ArrayLike<number> = img.data;
  if (nw !== img.width || nh !== img.height) {
    const resized = resizeBilinear(Float32Array.from(img.data), img.width, img.height, 3, nw, nh);
    pixels = resized.map((v) => Math.floor(v + 0.5));
  }
  const plane = width * height;
  const data = new Float32Array(3 * plane).fill(f32(114 / 255));
  for (let y = 0; y < nh; y++) {
    for (let x = 0; x < nw; x++) {
      const s = (y * nw + x) * 3;
      const d = (y + top) * width + x + left;
      for (let c = 0; c < 3; c++) data[c * plane + d] = f32((pixels[s + c] as number) / 255);
    }
  }
  return { data, width, height, left, top };
}

/** One kept detection in the input frame: box x1y1x2y2 (float32), score, class index, its anchor. */
interface Detection {
  box: [number, number, number, number];
  score: number;
  cls: number;
  anchor: number;
}

/**
 * `non_max_suppression` on `output0` (`[channels, anchors]` row-major, batch 1) with nc classes: candidates, best
 * class, class offset, torchvision's float32 NMS, best first.
 */
export function yoloNms(
  out: Float32Array,
  anchors: number,
  nc: number,
  options: { conf: number; iou: number; maxDet: number },
): Detection[] {
  const { maxNms, maxWh } = YOLO_DEFAULTS;
  let dets: Detection[] = [];
  for (let a = 0; a < anchors; a++) {
    let best = -Infinity;
    let cls = 0;
    for (let c = 0; c < nc; c++) {
      const s = out[(4 + c) * anchors + a] as number;
      if (s > best) {
        best = s;
        cls = c;
      }
    }
    if (!(best > f32(options.conf))) continue;
    const cx = out[a] as number;
    const cy = out[anchors + a] as number;
    const hw = f32((out[2 * anchors + a] as number) / 2);
    const hh = f32((out[3 * anchors + a] as number) / 2);
    dets.push({ box: [f32(cx - hw), f32(cy - hh), f32(cx + hw), f32(cy + hh)], score: best, cls, anchor: a });
  }
  // torch's sort is stable here in effect: equal scores keep anchor order
  const byScore = (p: Detection, q: Detection) => q.score - p.score || p.anchor - q.anchor;
  if (dets.length > maxNms) dets = dets.sort(byScore).slice(0, maxNms);
  const order = [...dets].sort(byScore);
  const off = order.map((d) => {
    const o = f32(d.cls * maxWh);
    return d.box.map((v) => f32(v + o)) as [number, number, number, number];
  });
  const areas = off.map(([x1, y1, x2, y2]) => f32(f32(x2 - x1) * f32(y2 - y1)));
  const suppressed = new Uint8Array(order.length);
  const keep: Detection[] = [];
  for (let i = 0; i < order.length && keep.length < options.maxDet; i++) {
    if (suppressed[i]) continue;
    keep.push(order[i] as Detection);
    const [ix1, iy1, ix2, iy2] = off[i] as number[];
    for (let j = i + 1; j < order.length; j++) {
      if (suppressed[j]) continue;
      const [jx1, jy1, jx2, jy2] = off[j] as number[];
      const w = Math.max(0, f32(Math.min(ix2 as number, jx2 as number) - Math.max(ix1 as number, jx1 as number)));
      const h = Math.max(0, f32(Math.min(iy2 as number, jy2 as number) - Math.max(iy1 as number, jy1 as number)));
      const inter = f32(w * h);
      const ovr = f32(inter / f32(f32((areas[i] as number) + (areas[j] as number)) - inter));
      if (ovr > options.iou) suppressed[j] = 1;
    }
  }
  return keep;
}

/**
 * The outputs `[start, end)` of a bilinear resize `inSize -> outSize` (torch's float32 taps) that read an input in
 * `[lo, hi)`: outside them, a plane that is zero outside `[lo, hi)` resizes to exactly zero.
 */
function reach(inSize: number, outSize: number, lo: number, hi: number): [number, number] {
  const t = bilinearTaps(inSize, outSize, "float32");
  let start = -1;
  let end = 0;
  for (let i = 0; i < outSize; i++) {
    const a = t.i0[i] as number;
    const b = t.i1[i] as number;
    if ((a >= lo && a < hi) || (b >= lo && b < hi)) {
      if (start < 0) start = i;
      end = i + 1;
    }
  }
  return start < 0 ? [0, 0] : [start, end];
}

/**
 * `process_mask(upsample=True)` then `scale_masks` for one detection: the mask at the original size, as an RLE.
 * `protos` is `[nm, mh, mw]`; `coef` the detection's nm coefficients. Both resizes are computed only where they can
 * be non-zero (the crop box and the pixels whose bilinear taps reach it): the same values as the full planes.
 */
function detectionMask(
  protos: Float32Array,
  nm: number,
  mw: number,
  mh: number,
  coef: Float32Array,
  box: readonly number[],
  lb: Letterbox,
  orig: { width: number; height: number },
): Rle {
  const { width: iw, height: ih } = lb;
  const plane = mw * mh;
  const bits = new Uint8Array(orig.width * orig.height);
  const done = () => rleEncode(createMask(orig.width, orig.height, bits));
  // crop_mask on the prototype grid: integer x with x >= x1 && x < x2, i.e. ceil(x1) <= x < ceil(x2)
  const rx = f32(mw / iw);
  const ry = f32(mh / ih);
  const px0 = Math.max(0, Math.ceil(f32((box[0] as number) * rx)));
  const py0 = Math.max(0, Math.ceil(f32((box[1] as number) * ry)));
  const px1 = Math.min(mw, Math.ceil(f32((box[2] as number) * rx)));
  const py1 = Math.min(mh, Math.ceil(f32((box[3] as number) * ry)));
  if (px1 <= px0 || py1 <= py0) return done();
  const logits = new Float32Array(plane);
  for (let y = py0; y < py1; y++) {
    for (let x = px0; x < px1; x++) {
      let acc = 0;
      for (let k = 0; k < nm; k++) acc += (coef[k] as number) * (protos[k * plane + y * mw + x] as number);
      logits[y * mw + x] = acc;
    }
  }
  // bilinear to the input size, > 0, only where the taps reach the box
  const [ux0, ux1] = reach(mw, iw, px0, px1);
  const [uy0, uy1] = reach(mh, ih, py0, py1);
  const uw = ux1 - ux0;
  const up = resizeBilinear(logits, mw, mh, 1, iw, ih, {
    precision: "float32",
    crop: { x: ux0, y: uy0, width: uw, height: uy1 - uy0 },
  });
  // scale_masks: crop the padding (int() of the float padding), bilinear to the original size, > 0.5
  const gain = Math.min(ih / orig.height, iw / orig.width);
  const padW = (iw - orig.width * gain) / 2;
  const padH = (ih - orig.height * gain) / 2;
  const top = Math.trunc(padH);
  const left = Math.trunc(padW);
  const cw = Math.trunc(iw - padW) - left;
  const ch = Math.trunc(ih - padH) - top;
  const bx0 = Math.max(ux0, left) - left;
  const bx1 = Math.min(ux1, left + cw) - left;
  const by0 = Math.max(uy0, top) - top;
  const by1 = Math.min(uy1, top + ch) - top;
  if (bx1 <= bx0 || by1 <= by0) return done();
  const binary = new Float32Array(cw * ch);
  for (let y = by0; y < by1; y++) {
    for (let x = bx0; x < bx1; x++) {
      binary[y * cw + x] = (up[(y + top - uy0) * uw + x + left - ux0] as number) > 0 ? 1 : 0;
    }
  }
  const [fx0, fx1] = reach(cw, orig.width, bx0, bx1);
  const [fy0, fy1] = reach(ch, orig.height, by0, by1);
  const fw = fx1 - fx0;
  const full = resizeBilinear(binary, cw, ch, 1, orig.width, orig.height, {
    precision: "float32",
    crop: { x: fx0, y: fy0, width: fw, height: fy1 - fy0 },
  });
  for (let y = fy0; y < fy1; y++) {
    for (let x = fx0; x < fx1; x++) {
      bits[y * orig.width + x] = (full[(y - fy0) * fw + x - fx0] as number) > 0.5 ? 1 : 0;
    }
  }
  return done();
}

/** `scale_boxes` (float32, as torch on a float32 tensor) then `clip_boxes`. */
function scaleBox(box: readonly number[], lb: Letterbox, orig: { width: number; height: number }): Box {
  const gain = Math.min(lb.height / orig.height, lb.width / orig.width);
  const padX = pyRound((lb.width - orig.width * gain) / 2 - 0.1);
  const padY = pyRound((lb.height - orig.height * gain) / 2 - 0.1);
  const g = f32(gain);
  const s = (v: number, pad: number, max: number) => Math.min(Math.max(f32(f32(v - pad) / g), 0), max);
  return [
    s(box[0] as number, padX, orig.width),
    s(box[1] as number, padY, orig.height),
    s(box[2] as number, padX, orig.width),
    s(box[3] as number, padY, orig.height),
  ];
}

/**
 * A YOLO-seg InstanceModel over an open session (which it then owns and disposes); `bytes` are the model file's
 * (for its metadata).
 */
export function createYoloSegModel(session: OnnxSession, dir: string, file: string, bytes: Uint8Array): InstanceModel {
  const meta = onnxMetadata(bytes);
  const input = session.inputs[0];
  const [out0, out1] = session.outputs;
  if (!input || !out0 || !out1) throw new SegkitError("not a YOLO segmentation graph", { file });
  if (meta.task !== undefined && meta.task !== "segment") {
    throw new SegkitError(`the YOLO model's task is "${meta.task}", segkit instances needs "segment"`, { file });
  }
  const [, , dh, dw] = input.shape;
  const imgsz = /^\[\s*(\d+)\s*,\s*(\d+)\s*\]$/.exec(meta.imgsz?.trim() ?? "");
  const metaSize = imgsz ? [Number(imgsz[1]), Number(imgsz[2])] : undefined;
  const height = typeof dh === "number" ? dh : metaSize?.[0];
  const width = typeof dw === "number" ? dw : metaSize?.[1];
  if (!height || !width) {
    throw new SegkitError("the YOLO model's input size is dynamic and its metadata has no imgsz", { file });
  }
  const nmDeclared = out1.shape[1];
  const chDeclared = out0.shape[1];
  const names = meta.names === undefined ? undefined : parseYoloNames(meta.names);
  if (meta.names !== undefined && !names) {
    throw new SegkitError(
      `the model's metadata \`names\` is not a Python dict of class names: ${meta.names.slice(0, 80)}`,
      { file },
    );
  }
  const ncDeclared =
    typeof chDeclared === "number" && typeof nmDeclared === "number" ? chDeclared - 4 - nmDeclared : undefined;
  const nClasses = names?.length ?? ncDeclared;
  if (nClasses === undefined)
    throw new SegkitError("the YOLO model declares no class count and has no names", { file });
  if (ncDeclared !== undefined && ncDeclared !== nClasses) {
    throw new SegkitError(`the model's output0 has ${ncDeclared} classes, its metadata names ${nClasses}`, { file });
  }
  const classNames = Array.from({ length: nClasses }, (_, i) => names?.[i] ?? `class${i}`);
  const ids = cocoIdsOf(classNames); // a COCO model's classes get COCO's ids, as Ultralytics writes COCO results
  const categories = classNames.map((name, i) => ({ id: ids?.[i] ?? i + 1, name }));
  let disposed = false;
  return {
    kind: "yolo-seg",
    dir,
    categories,
    async predict(image, options = {}) {
      if (disposed) throw new SegkitError("the YOLO model was disposed", { file });
      const conf = options.scoreThreshold ?? YOLO_DEFAULTS.conf;
      if (!(conf >= 0 && conf <= 1)) throw new SegkitError(`scoreThreshold must be in 0..1, got ${conf}`);
      const lb = letterbox(image, width, height);
      const outs = await session.run({ [input.name]: { data: lb.data, dims: [1, 3, height, width] } }, [
        out0.name,
        out1.name,
      ]);
      const pred = outs[out0.name];
      const proto = outs[out1.name];
      if (!pred || !proto) throw new SegkitError("the YOLO model returned no outputs", { file });
      const [, channels, anchors] = pred.dims as [number, number, number];
      const [, nm, mh, mw] = proto.dims as [number, number, number, number];
      if (channels !== 4 + nClasses + nm) {
        throw new SegkitError(`output0 has ${channels} channels, expected 4 + ${nClasses} classes + ${nm}`, { file });
      }
      const dets = yoloNms(pred.data, anchors, nClasses, {
        conf,
        iou: YOLO_DEFAULTS.iou,
        maxDet: YOLO_DEFAULTS.maxDet,
      });
      const orig = { width: image.width, height: image.height };
      const masks = dets.map((d) => {
        const coef = new Float32Array(nm);
        for (let k = 0; k < nm; k++) coef[k] = pred.data[(4 + nClasses + k) * anchors + d.anchor] as number;
        return detectionMask(proto.data, nm, mw, mh, coef, d.box, lb, orig);
      });
      const result: Instances = {
        width: image.width,
        height: image.height,
        masks,
        boxes: dets.map((d) => scaleBox(d.box, lb, orig)),
        classIds: dets.map((d) => d.cls + 1),
        scores: dets.map((d) => d.score),
      };
      return result;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await session.dispose();
    },
  };
}
