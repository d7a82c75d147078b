/**
 * The pure part of running a SAM prompt decoder, shared by Node (`model.ts` on onnxruntime-node, `predictor.ts`)
 * and the browser (`segkit/web` on onnxruntime-web): telling the decoder form from the graph's declared inputs and
 * outputs, packing a prompt into its feeds, reading its outputs, and choosing the masks a prediction returns. No
 * Node modules, no onnxruntime: callers wrap the plain typed arrays in their runtime's tensors.
 *
 * The decoder forms are described in model.ts's module comment (official split, EdgeSAM, transformers.js, SAM 2).
 */
import { SegkitError } from "../core/errors.js";
import {
  applyBoxes,
  decoderInputs,
  SAM_LOW_RES_SIZE,
  type SamBox,
  type SamPoint,
  type SamSize,
  selectMaskChannels,
} from "./transforms.js";

/**
 * How a model's graphs are split and fed: SAM's official split (and EdgeSAM's), transformers.js's, or SAM 2's
 * (samexporter's two graphs, or the 7-graph split behind `loadSamModel`'s SAM 2 support).
 */
export type SamLayout = "split" | "transformers" | "sam2";
export const SAM_LAYOUTS: readonly SamLayout[] = ["split", "transformers", "sam2"];

/** Row-major float32 data and its dims. */
export interface SamTensor {
  data: Float32Array;
  dims: number[];
}

/** The encoder's outputs by the decoder input names they feed (always `image_embeddings` [1,256,64,64]). */
export type SamEmbeddings = Readonly<Record<string, SamTensor>>;

/** One prompt for one decoder run. Coordinates are in the resized frame (after resize-longest-side, 0..S). */
export interface SamDecodePrompt {
  /** [N,2] (x, y) pairs, N >= 1. */
  points: Float32Array;
  /**
   * [N] labels as the layout's decoder reads them. split: 1 foreground, 0 background, 2 / 3 box top-left /
   * bottom-right, -1 not a point (the padding point). transformers: 1, 0, -1 not a point, -10 padding (ignored).
   */
  labels: Float32Array;
  /**
   * transformers layout only (fed as input_boxes [1,1,4]): x1, y1, x2, y2. The split layout takes a box as two
   * points labelled 2 and 3.
   */
  box?: readonly [number, number, number, number];
  /**
   * Decoders with a `mask_input` (the official split form) only: a previous low-res logit plane [256,256] over the
   * padded square (has_mask_input = 1).
   */
  maskInput?: Float32Array;
  /** (H, W) of the original image: the official decoder's `orig_im_size`, the size of `masks`. */
  origSize: readonly [number, number];
}

export interface SamDecodeOptions {
  /**
   * Official split decoder: also fetch `masks`, the logits of all channels upscaled to `origSize` inside the graph.
   * Off by default: onnxruntime computes every output whatever is fetched, so without it the graph is given
   * `orig_im_size` 256 x 256, which sizes only `masks` (scores and low-res masks do not depend on it).
   */
  fullSize?: boolean;
}

export interface SamDecoded {
  /** [C] predicted IoU per mask channel. */
  scores: Float32Array;
  /** [C,256,256] mask logits over the padded S x S square (threshold 0). */
  lowRes: SamTensor;
  /** [C,H,W] mask logits at `origSize` (official split decoder with `fullSize` only; EdgeSAM has none). */
  masks?: SamTensor;
}

/**
 * A graph input or output as the model declares it (onnx/session.ts `OnnxValueInfo`, onnxruntime's metadata):
 * element type and dims, a string being a symbolic dim, an empty shape undeclared.
 */
export interface GraphValueInfo {
  readonly name: string;
  readonly type: string;
  readonly shape: readonly (number | string)[];
}

/** A decoder feed: float32, or int64 where the graph declares it (transformers.js `input_labels`). */
export type DecoderFeed = { data: Float32Array; dims: number[] } | { data: BigInt64Array; dims: number[] };

const OFFICIAL_EXPECTED =
  "expected the official SAM decoder inputs image_embeddings [1,256,64,64], point_coords [1,N,2], point_labels [1,N], " +
  "mask_input [1,1,256,256], has_mask_input [1], orig_im_size [2] and outputs iou_predictions, low_res_masks, masks " +
  "(or EdgeSAM's: inputs image_embeddings, point_coords, point_labels and outputs scores, masks [1,4,256,256])";
const EDGESAM_EXPECTED =
  "expected EdgeSAM's decoder inputs image_embeddings [1,256,64,64], point_coords [1,N,2], point_labels [1,N] and " +
  "outputs scores [1,4], masks [1,4,256,256]";
const SAM2_EXPECTED =
  "expected samexporter's SAM 2 decoder inputs image_embed, high_res_feats_0, high_res_feats_1, point_coords [N,P,2], " +
  "point_labels [N,P], mask_input [N,1,256,256], has_mask_input [N] and outputs masks [N,3,256,256], iou_predictions [N,3]";
const TRANSFORMERS_EXPECTED =
  "expected the transformers.js decoder inputs input_points [B,P,N,2], input_labels [B,P,N], " +
  "image_embeddings [B,256,64,64], image_positional_embeddings [B,256,64,64] (input_boxes [B,nb,4] optional) " +
  "and outputs iou_scores, pred_masks";

/** The decoder forms (see model.ts): required inputs, the outputs read, the axis of the mask channels. */
const DECODERS = {
  official: {
    inputs: ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size"],
    scores: "iou_predictions",
    lowRes: "low_res_masks",
    channelAxis: 1,
    expected: OFFICIAL_EXPECTED,
  },
  edgesam: {
    inputs: ["image_embeddings", "point_coords", "point_labels"],
    scores: "scores",
    lowRes: "masks",
    channelAxis: 1,
    expected: EDGESAM_EXPECTED,
  },
  sam2: {
    inputs: [
      "image_embed",
      "high_res_feats_0",
      "high_res_feats_1",
      "point_coords",
      "point_labels",
      "mask_input",
      "has_mask_input",
    ],
    scores: "iou_predictions",
    lowRes: "masks",
    channelAxis: 1,
    expected: SAM2_EXPECTED,
  },
  transformers: {
    inputs: ["input_points", "input_labels", "image_embeddings", "image_positional_embeddings"],
    scores: "iou_scores",
    lowRes: "pred_masks",
    channelAxis: 2,
    expected: TRANSFORMERS_EXPECTED,
  },
} as const;
export type SamDecoderForm = keyof typeof DECODERS;

/** Decoder inputs that carry the prompt; every other input is fed from the embeddings of the same name. */
export const PROMPT_INPUTS: ReadonlySet<string> = new Set([
  "point_coords",
  "point_labels",
  "mask_input",
  "has_mask_input",
  "orig_im_size",
  "input_points",
  "input_labels",
  "input_boxes",
]);

/** Input / output names of SAM 2 exports segkit does not run (transformers.js's). */
const SAM2_NAMES = ["image_embeddings.0"];
const LOW_RES = SAM_LOW_RES_SIZE;
const LOW_AREA = LOW_RES * LOW_RES;
/** The `mask_input` fed when there is none (has_mask_input 0): zeros, shared, never written. */
const NO_MASK_INPUT = new Float32Array(LOW_AREA);

/** The official decoder's mask feeds when there is no previous mask, as `decoderFeeds` gives them. */
export function noMaskFeeds(): Record<"mask_input" | "has_mask_input", { data: Float32Array; dims: number[] }> {
  return {
    mask_input: { data: NO_MASK_INPUT, dims: [1, 1, LOW_RES, LOW_RES] },
    has_mask_input: { data: new Float32Array([0]), dims: [1] },
  };
}

/** A decoder graph as segkit runs it: its form and what its prompts may hold. */
export interface SamDecoderGraph {
  /** The graph's file or URL (named in errors). */
  readonly file: string;
  readonly form: SamDecoderForm;
  readonly layout: SamLayout;
  /** Channels a decode returns: split 4 (0 single-mask, 1-3 multimask) or 1, transformers 3, SAM 2 3 (or 4). */
  readonly maskChannels: number;
  /** Takes `prompt.box` (a transformers decoder with `input_boxes`). */
  readonly acceptsBox: boolean;
  /** Takes `prompt.maskInput` (a split or SAM 2 decoder with `mask_input`: not EdgeSAM's). */
  readonly acceptsMaskInput: boolean;
  readonly inputs: readonly GraphValueInfo[];
}

/** The outputs a decode without `fullSize` fetches: the IoU scores and the low-res masks. */
export function lowResOutputs(graph: SamDecoderGraph): [string, string] {
  const names = DECODERS[graph.form];
  return [names.scores, names.lowRes];
}

/**
 * The decoder form its declared inputs and outputs show and its mask channel count (declared, else 4 split / 3
 * transformers), or a SegkitError naming `file` and what is missing (SAM 2 exports refused).
 */
export function describeDecoder(
  graph: { readonly inputs: readonly GraphValueInfo[]; readonly outputs: readonly GraphValueInfo[] },
  file: string,
): SamDecoderGraph {
  const inputs = graph.inputs.map((i) => i.name);
  const outputs = graph.outputs.map((o) => o.name);
  rejectSam2({ inputNames: inputs, outputNames: outputs }, file);
  if (!inputs.includes("input_points") && !inputs.includes("point_coords")) {
    throw new SegkitError(
      `input \`point_coords\` (or transformers.js \`input_points\`) missing; ${OFFICIAL_EXPECTED}`,
      {
        file,
        hint: `the graph has inputs ${listNames(inputs)}`,
      },
    );
  }
  const form: SamDecoderForm = inputs.includes("input_points")
    ? "transformers"
    : inputs.includes("image_embed")
      ? "sam2"
      : !inputs.includes("mask_input") && outputs.includes("scores")
        ? "edgesam"
        : "official";
  const d = DECODERS[form];
  for (const name of d.inputs) {
    if (!inputs.includes(name)) {
      throw new SegkitError(`input \`${name}\` missing; ${d.expected}`, {
        file,
        hint: `the graph has inputs ${listNames(inputs)}`,
      });
    }
  }
  for (const name of [d.scores, d.lowRes]) {
    if (!outputs.includes(name)) {
      throw new SegkitError(`output \`${name}\` missing; ${d.expected}`, {
        file,
        hint: `the graph has outputs ${listNames(outputs)}`,
      });
    }
  }
  const low = graph.outputs.find((o) => o.name === d.lowRes);
  const declared = low?.shape[d.channelAxis];
  const channels = typeof declared === "number" ? declared : form === "transformers" || form === "sam2" ? 3 : 4;
  // (a --return-extra-metrics export has 5 outputs and stability scores [1,C] under the name low_res_masks)
  const shape = low?.shape ?? [];
  const lowResShape =
    !shape.length ||
    (shape.length === d.channelAxis + 3 && shape.slice(-2).every((x) => typeof x !== "number" || x === LOW_RES));
  const fits = form === "transformers" || (form === "sam2" ? channels === 3 : channels === 4 || channels === 1);
  if (!lowResShape || !fits) {
    const want =
      form === "transformers" ? "[B,P,C,256,256]" : form === "sam2" ? "[N,3,256,256]" : "[1,C,256,256] with C = 4 or 1";
    throw new SegkitError(`output \`${d.lowRes}\` is ${shapeText(low)}; expected low-res mask logits ${want}`, {
      file,
      hint: d.expected,
    });
  }
  return {
    file,
    form,
    layout: form === "transformers" || form === "sam2" ? form : "split",
    maskChannels: channels,
    acceptsBox: inputs.includes("input_boxes"),
    acceptsMaskInput: form === "official" || form === "sam2",
    inputs: graph.inputs,
  };
}

/** Throws for a SAM 2 export, naming the file and the SAM 2 input or output it has. */
export function rejectSam2(
  graph: { readonly inputNames: readonly string[]; readonly outputNames: readonly string[] },
  file: string,
): void {
  for (const [kind, names] of [
    ["input", graph.inputNames],
    ["output", graph.outputNames],
  ] as const) {
    const name = names.find((n) => SAM2_NAMES.includes(n));
    if (name) {
      throw new SegkitError(
        `transformers.js SAM 2 exports are not supported (this graph has the ${kind} \`${name}\`)`,
        {
          file,
          hint: "segkit runs SAM 2 as samexporter's two graphs or the 7-graph split of scripts/export_sam2_onnx.py",
        },
      );
    }
  }
}

/**
 * The decoder's feeds for one prompt (embeddings by input name, the prompt packed for the form, int64 where the
 * graph declares it) and the outputs to fetch; errors name the decoder file.
 */
export function decoderFeeds(
  graph: SamDecoderGraph,
  embeddings: SamEmbeddings,
  prompt: SamDecodePrompt,
  options: SamDecodeOptions = {},
): { feeds: Record<string, DecoderFeed>; fetch: string[] } {
  const file = graph.file;
  const n = prompt.labels.length;
  if (n < 1 || prompt.points.length !== 2 * n) {
    throw new SegkitError(`a prompt needs N >= 1 points and N labels, got ${prompt.points.length / 2} and ${n}`, {
      file,
    });
  }
  const inputNames = graph.inputs.map((i) => i.name);
  if (prompt.maskInput && !graph.acceptsMaskInput) {
    throw new SegkitError("this decoder has no mask_input: a previous mask cannot be given", {
      file,
      hint: `the graph has inputs ${listNames(inputNames)}`,
    });
  }
  const feeds: Record<string, DecoderFeed> = {};
  for (const input of inputNames) {
    if (PROMPT_INPUTS.has(input)) continue;
    const t = embeddings[input];
    if (!t) throw new SegkitError(`embeddings lack \`${input}\`: they come from another model`, { file });
    feeds[input] = t;
  }
  const inputType = new Map(graph.inputs.map((i) => [i.name, i.type]));
  const typed = (name: string, data: Float32Array, dims: number[]): DecoderFeed =>
    inputType.get(name) === "int64"
      ? { data: BigInt64Array.from(data, (v) => BigInt(Math.round(v))), dims }
      : { data, dims };
  const names = DECODERS[graph.form];

  if (graph.layout === "sam2") {
    // samexporter's graph appends the padding point itself; one prompt (N = 1)
    if (prompt.box) throw new SegkitError("a SAM 2 decoder takes a box as two points labelled 2 and 3", { file });
    feeds.point_coords = typed("point_coords", prompt.points, [1, n, 2]);
    feeds.point_labels = typed("point_labels", prompt.labels, [1, n]);
    const mask = prompt.maskInput;
    if (mask && mask.length !== LOW_AREA) {
      throw new SegkitError(`mask_input must hold ${LOW_RES}x${LOW_RES} values, got ${mask.length}`, { file });
    }
    feeds.mask_input = { data: mask ?? NO_MASK_INPUT, dims: [1, 1, LOW_RES, LOW_RES] };
    feeds.has_mask_input = { data: new Float32Array([mask ? 1 : 0]), dims: [1] };
    return { feeds, fetch: [names.scores, names.lowRes] };
  }

  if (graph.layout === "split") {
    if (prompt.box) {
      throw new SegkitError("this decoder takes a box as two points labelled 2 and 3, not `box`", { file });
    }
    feeds.point_coords = typed("point_coords", prompt.points, [1, n, 2]);
    feeds.point_labels = typed("point_labels", prompt.labels, [1, n]);
    const fetch: string[] = [names.scores, names.lowRes];
    if (graph.acceptsMaskInput) {
      const mask = prompt.maskInput;
      if (mask && mask.length !== LOW_AREA) {
        throw new SegkitError(`mask_input must hold ${LOW_RES}x${LOW_RES} values, got ${mask.length}`, { file });
      }
      feeds.mask_input = { data: mask ?? NO_MASK_INPUT, dims: [1, 1, LOW_RES, LOW_RES] };
      feeds.has_mask_input = { data: new Float32Array([mask ? 1 : 0]), dims: [1] };
      // onnxruntime runs every node whatever is fetched: without `fullSize`, `masks` is made at 256 x 256 (its
      // only use of orig_im_size) instead of the image size (measured: 32 -> 25 ms a decode at 2048 x 1536)
      const size = options.fullSize ? prompt.origSize : [LOW_RES, LOW_RES];
      feeds.orig_im_size = typed("orig_im_size", new Float32Array(size), [2]);
      if (options.fullSize) fetch.push("masks");
    }
    return { feeds, fetch };
  }

  if (prompt.box && !graph.acceptsBox) {
    throw new SegkitError("this decoder has no input_boxes: boxes cannot be given", {
      file,
      hint: `the graph has inputs ${listNames(inputNames)}; give points instead`,
    });
  }
  feeds.input_points = typed("input_points", prompt.points, [1, 1, n, 2]);
  feeds.input_labels = typed("input_labels", prompt.labels, [1, 1, n]);
  if (graph.acceptsBox) {
    const box = prompt.box ? new Float32Array(prompt.box) : new Float32Array(0);
    feeds.input_boxes = typed("input_boxes", box, [1, prompt.box ? 1 : 0, 4]);
  }
  return { feeds, fetch: [names.scores, names.lowRes] };
}

/** The decoder's outputs (by name, float32) as scores [C], low-res logits [C,256,256] and, if fetched, masks. */
export function decoderOutputs(graph: SamDecoderGraph, out: Readonly<Record<string, SamTensor>>): SamDecoded {
  const names = DECODERS[graph.form];
  const required = (name: string): SamTensor => {
    const t = out[name];
    if (!t) throw new SegkitError(`output \`${name}\` missing from the decoder's results`, { file: graph.file });
    return t;
  };
  const low = squeeze(required(names.lowRes), names.channelAxis);
  if (low.dims.length !== 3 || low.dims[1] !== LOW_RES || low.dims[2] !== LOW_RES) {
    throw new SegkitError(
      `output \`${names.lowRes}\` has ${low.dims.length} dims after the batch axes, [${low.dims}]`,
      {
        file: graph.file,
        hint: `expected low-res logits [C,${LOW_RES},${LOW_RES}] per prompt`,
      },
    );
  }
  const masks = graph.form === "official" ? out.masks : undefined;
  return { scores: required(names.scores).data, lowRes: low, ...(masks ? { masks: squeeze(masks, 1) } : {}) };
}

/** Drops `count` leading dims of size 1 (the batch and point-batch axes). */
function squeeze(t: SamTensor, count: number): SamTensor {
  return { data: t.data, dims: t.dims.slice(count) };
}

/** `a`, `b` as an error lists names, or "(none)". */
export function listNames(names: readonly string[]): string {
  return names.length ? names.map((n) => `\`${n}\``).join(", ") : "(none)";
}

/** `[1,256,64,64]` for a declared value, `?` for none. */
export function shapeText(v: GraphValueInfo | undefined): string {
  return v ? `[${v.shape.join(",")}]` : "?";
}

/** A prompt in original-image pixels, as the predictor and `segkit/web` take it. */
export interface SamPixelPrompt {
  points: readonly SamPoint[];
  box?: SamBox;
  maskInput?: Float32Array;
}

/**
 * One prompt in the decoder's frame and labels. Both layouts go through `decoderInputs` (validation, `applyCoords`);
 * split takes its packing as is (points, then the box corners labelled 2 and 3 or the padding point labelled -1).
 * The transformers.js decoder takes the user's points unpadded (a lone label -10 point, which it ignores, when there
 * are none) and the box as `input_boxes`. SAM 2 (`SAM2ImagePredictor._predict`): the box's corners first (labels 2
 * and 3), then the points, unpadded (its prompt encoder pads), in the `longest` x `longest` frame the image is
 * stretched over (x * S / W, y * S / H); a prompt needs a point or a box.
 */
export function samDecodePrompt(
  layout: SamLayout,
  prompt: SamPixelPrompt,
  originalSize: SamSize,
  longest: number,
): SamDecodePrompt {
  const packed = decoderInputs(prompt, originalSize, longest);
  const origSize = [originalSize.height, originalSize.width] as const;
  const maskInput = prompt.maskInput ? { maskInput: prompt.maskInput } : {};
  if (layout === "sam2") {
    const pixels: number[] = [];
    const labels: number[] = [];
    if (prompt.box) {
      pixels.push(...prompt.box);
      labels.push(2, 3);
    }
    for (const p of prompt.points) {
      pixels.push(p.x, p.y);
      labels.push(p.label);
    }
    if (!labels.length) throw new SegkitError("a SAM 2 prompt needs a point or a box (a mask input alone is not one)");
    const points = Float32Array.from(pixels, (v, i) =>
      i % 2 === 0 ? (v / originalSize.width) * longest : (v / originalSize.height) * longest,
    );
    return { points, labels: Float32Array.from(labels), origSize, ...maskInput };
  }
  if (layout === "split") {
    return { points: packed.point_coords.data, labels: packed.point_labels.data, origSize, ...maskInput };
  }
  const n = prompt.points.length;
  const points = n ? packed.point_coords.data.slice(0, 2 * n) : new Float32Array(2);
  const labels = n ? packed.point_labels.data.slice(0, n) : Float32Array.of(-10);
  const b = prompt.box ? applyBoxes(prompt.box, originalSize, longest) : undefined;
  const box = b ? { box: [b[0] as number, b[1] as number, b[2] as number, b[3] as number] as const } : {};
  return { points, labels, origSize, ...maskInput, ...box };
}

/** `indices` ordered by `scores[index]`, best first; a stable sort keeps the given order on ties. */
export function orderByScore(indices: readonly number[], scores: ArrayLike<number>): number[] {
  return [...indices].sort((a, b) => (scores[b] as number) - (scores[a] as number));
}

/** SAM 2's mask decoder settings for a single-mask answer (`dynamic_multimask_via_stability`). */
export interface Sam2Stability {
  delta: number;
  thresh: number;
}

/** `build_sam2`'s: `dynamic_multimask_stability_delta` 0.05, `dynamic_multimask_stability_thresh` 0.98. */
export const SAM2_STABILITY: Readonly<Sam2Stability> = { delta: 0.05, thresh: 0.98 };

/**
 * The decoder channels a prediction returns, in order: split 4 channels -> `[1, 2, 3]` with `multimask`, else
 * `[0]`; transformers' and samexporter's SAM 2 3 candidates -> all, else the best-scoring one (first on ties); a
 * 1-channel decoder -> `[0]`. SAM 2 with all 4 tokens (the 7-graph split): `[1, 2, 3]`, else as
 * `MaskDecoder._dynamic_multimask_via_stability`: token 0 when its stability (pixels of `lowRes` plane 0 above
 * `delta` over those above `-delta`, 1 when none is) is at least `thresh`, else the best of 1..3.
 */
export function chooseMaskChannels(
  graph: Pick<SamDecoderGraph, "layout" | "file">,
  count: number,
  multimask: boolean,
  scores: ArrayLike<number>,
  lowRes?: Float32Array,
  stability: Sam2Stability = SAM2_STABILITY,
): number[] {
  if (count === 1) return [0];
  if (graph.layout === "sam2" && count === 4) {
    if (multimask) return [1, 2, 3];
    if (!lowRes) throw new SegkitError("a SAM 2 single-mask answer needs the low-res logits", { file: graph.file });
    let inter = 0;
    let union = 0;
    for (let i = 0; i < LOW_AREA; i++) {
      const v = lowRes[i] as number;
      if (v > stability.delta) inter++;
      if (v > -stability.delta) union++;
    }
    if ((union > 0 ? inter / union : 1) >= stability.thresh) return [0];
    let best = 1;
    for (let i = 2; i < 4; i++) if ((scores[i] as number) > (scores[best] as number)) best = i;
    return [best];
  }
  if (graph.layout === "split") {
    if (count === 4) return selectMaskChannels(multimask);
    throw new SegkitError(
      `the decoder returned ${count} masks; expected 4, or 1 (SAM-HQ, a --return-single-mask export)`,
      { file: graph.file },
    );
  }
  if (multimask) return Array.from({ length: count }, (_, i) => i);
  let best = 0;
  for (let i = 1; i < count; i++) if ((scores[i] as number) > (scores[best] as number)) best = i;
  return [best];
}
