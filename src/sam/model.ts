/**
 * Loading a Segment Anything model (SAM, MobileSAM, EdgeSAM, SlimSAM, SAM-HQ exported to ONNX) from a directory,
 * with thin typed calls to its two graphs. Prompt geometry (resize-longest-side, padding points, box corners,
 * choosing a mask) belongs to the predictor; here data goes in and out as plain float32 arrays with stated dims.
 *
 * Two directory layouts, told apart by the decoder graph's input names (file names only find the candidates):
 * - "split": one `*encoder*.onnx` and one `*decoder*.onnx` (in the directory or its `onnx/`), the decoder in one of
 *   two forms, both taking point_coords [1,N,2] and point_labels [1,N] float32 (labels 1, 0, 2 / 3 box corners,
 *   -1 padding) and image_embeddings [1,256,64,64]:
 *   - official, as segment-anything's `scripts/export_onnx_model.py` writes it (also MobileSAM's, samexporter's,
 *     SAM-HQ's): + mask_input [1,1,256,256], has_mask_input [1], orig_im_size [2] -> masks [1,C,H,W],
 *     iou_predictions [1,C], low_res_masks [1,C,256,256]. C = 4: channel 0 the single-mask answer, 1-3 the
 *     multimask candidates; C = 1 for a `--return-single-mask` export and for SAM-HQ (whose decoder also takes the
 *     encoder's interm_embeddings [4,1,64,64,C']);
 *   - EdgeSAM's (`scripts/export_onnx_model.py` there): those three inputs only -> scores [1,4], masks
 *     [1,4,256,256] (low-res logits, channels as above); no mask input.
 * - "transformers": transformers.js repositories (Xenova/sam-vit-base, Xenova/slimsam-*): `onnx/vision_encoder.onnx`
 *   (pixel_values -> image_embeddings, image_positional_embeddings) and `onnx/prompt_encoder_mask_decoder.onnx`
 *   (input_points [B,P,N,2], input_labels [B,P,N] int64, optional input_boxes [B,nb,4] (SlimSAM has none), the two
 *   embeddings -> iou_scores [B,P,3], pred_masks [B,P,3,256,256]: the 3 multimask candidates, low-res only), with
 *   `preprocessor_config.json` giving the resize and normalisation.
 * Files with a variant suffix (`_quantized`, `_fp16`, `.quant`, ...) are skipped unless `variant` asks for one, or
 * unless the directory holds only one variant (e.g. only `*_quantized.onnx`). Two decoders named `*_single` and
 * `*_multi` (Acly's MobileSAM) resolve to the multi one, which holds the single-mask answer too.
 * - "sam2": samexporter's SAM 2 split (`export_sam2.py`): `*.encoder.onnx` (image [1,3,1024,1024], the image
 *   stretched to the square and normalised -> high_res_feats_0, high_res_feats_1, image_embed with no_mem_embed
 *   added) and `*.decoder.onnx` (those three + point_coords [1,N,2] in the 1024 frame, point_labels [1,N] float32
 *   (box corners 2 / 3 first, no padding point: the graph adds it), mask_input [1,1,256,256], has_mask_input [1]
 *   -> masks [1,3,256,256] low-res logits of the multimask tokens 1..3 only, iou_predictions [1,3]). The export
 *   leaves token 0 out, so a single-mask request gets the best of the three (the official predictor would take
 *   token 0 when it is stable). transformers.js's SAM 2 exports (`image_embeddings.0`) are refused.
 *
 * The encoder takes one of two input forms, read from its input's rank: "nchw", [1,3,S,S] float32 normalised with
 * the pixel mean/std and zero-padded bottom-right (S = 1024), or "hwc", [H,W,3] float32 RGB 0..255 already resized
 * so that max(H, W) = S, unpadded (samexporter's `--use-preprocess` export, input `input_image`): that graph
 * normalises and pads itself. Every encoder output is kept in the embeddings record and fed to the decoder input
 * of the same name; a split encoder's main output (named `image_embeddings`, else its first) is renamed
 * `image_embeddings` (exports also call it `embeddings` or `output`), so SAM-HQ's extra `interm_embeddings` flows
 * through unchanged. Declared shapes of an encoder output and the decoder input it feeds must agree.
 */
import { readFile, stat } from "node:fs/promises";
import { basename, join, relative } from "node:path";
import { SegkitError } from "../core/errors.js";
import { listFiles, pathExists, readJson } from "../io/fs.js";
import { pruneOnnx } from "../onnx/prune.js";
import { rewriteDecoder } from "../onnx/rewrite.js";
import {
  createOnnxSession,
  DEFAULT_ONNX_SESSION_OPTIONS,
  type ExecutionProvider,
  type OnnxInput,
  type OnnxSession,
} from "../onnx/session.js";
import { createSplitOnnxSession, type SplitOnnxSession } from "../onnx/split.js";
import {
  decoderFeeds,
  decoderOutputs,
  describeDecoder,
  listNames,
  lowResOutputs,
  noMaskFeeds,
  PROMPT_INPUTS,
  rejectSam2,
  type SamDecoded,
  type SamDecodeOptions,
  type SamDecodePrompt,
  type SamEmbeddings,
  type SamLayout,
  type SamTensor,
  shapeText,
} from "./decoder-feeds.js";
import { openGraph, runGraph, runGuarded } from "./graphs.js";
import { findSam2Files, openSam2, type Sam2Files, sam2Decode, sam2ImageEmbeddings } from "./sam2.js";
import { SAM_IMAGE_SIZE, SAM_PIXEL_MEAN, SAM_PIXEL_STD } from "./transforms.js";

export { SAM_LAYOUTS } from "./decoder-feeds.js";
export type { ExecutionProvider, SamDecoded, SamDecodeOptions, SamDecodePrompt, SamEmbeddings, SamLayout, SamTensor };

/** "nchw": [1,3,S,S] normalised and padded; "hwc": [H,W,3] RGB 0..255, longest side S, not padded. */
export type SamEncoderInput = "nchw" | "hwc";

/**
 * How the image reaches the encoder: resize so the longest side is `longestSide`, normalise, pad to `padSize`
 * (SAM); or, `resize` "stretch", resized to `padSize` x `padSize` whatever its aspect ratio (SAM 2).
 */
export interface SamPreprocess {
  resize: "longest-side" | "stretch";
  longestSide: number;
  padSize: number;
  /** Per-channel (R, G, B) mean and std in 0..255 units: x' = (x - mean) / std. */
  mean: [number, number, number];
  std: [number, number, number];
}

/** segment-anything's `pixel_mean` / `pixel_std` and image size (the same as transformers' SamImageProcessor). */
export const SAM_PREPROCESS: Readonly<SamPreprocess> = {
  resize: "longest-side",
  longestSide: SAM_IMAGE_SIZE,
  padSize: SAM_IMAGE_SIZE,
  mean: [...SAM_PIXEL_MEAN],
  std: [...SAM_PIXEL_STD],
};

export interface LoadSamModelOptions {
  /** onnxruntime intra-op threads (CPU). */
  threads?: number;
  /**
   * onnxruntime execution providers in order of preference ("cuda", `{ name: "cuda", deviceId: 0 }`, ...);
   * CPU when absent.
   */
  executionProviders?: readonly ExecutionProvider[];
  /**
   * Pick the files with this suffix, e.g. "quantized" for `vision_encoder_quantized.onnx`, "quant" for
   * `sam.encoder.quant.onnx`; without it, files with a known variant suffix are skipped unless a graph exists only
   * in one variant (a directory of `*_quantized.onnx` files alone loads them).
   */
  variant?: string;
}

export const DEFAULT_LOAD_SAM_MODEL_OPTIONS: Readonly<{ threads: number }> = {
  threads: DEFAULT_ONNX_SESSION_OPTIONS.threads,
};

export interface SamModel {
  readonly dir: string;
  readonly layout: SamLayout;
  readonly encoderInput: SamEncoderInput;
  /** Paths of the two graphs. */
  readonly files: Readonly<{ encoder: string; decoder: string }>;
  readonly preprocess: Readonly<SamPreprocess>;
  /**
   * Channels `decode` returns, as the decoder declares them: split 4 (channel 0 single-mask, 1-3 multimask) or 1
   * (SAM-HQ, a `--return-single-mask` export: its one mask), transformers 3 (multimask).
   */
  readonly maskChannels: number;
  /** Whether `decode` takes `prompt.box` (a transformers decoder with an `input_boxes` input). */
  readonly acceptsBox: boolean;
  /** Whether `decode` takes `prompt.maskInput` (a split decoder with a `mask_input` input: not EdgeSAM's). */
  readonly acceptsMaskInput: boolean;
  /** The decoder's outputs a decode without `fullSize` fetches (IoU scores, low-res masks). */
  readonly lowResOutputs: readonly string[];
  /** Runs the encoder on one image in `encoderInput` form (see the module comment for dims). */
  encode(image: SamTensor): Promise<SamEmbeddings>;
  /** Runs the decoder on one prompt. */
  decode(embeddings: SamEmbeddings, prompt: SamDecodePrompt, options?: SamDecodeOptions): Promise<SamDecoded>;
  /**
   * Runs what the decoder computes once per image (the split's static part, `createSplitOnnxSession`) for these
   * embeddings, so that the next `decode` does not; `prompt` gives the prompt's shape (its values are not used).
   * Absent when the decoder has no such part.
   */
  prepare?(embeddings: SamEmbeddings, prompt: SamDecodePrompt): Promise<void>;
  dispose(): Promise<void>;
}

/** File-name suffixes of alternative exports of one graph (transformers.js, samexporter, optimum). */
const VARIANT_SUFFIXES = ["quantized", "quant", "fp16", "int8", "uint8", "q4", "q4f16", "bnb4", "q8"];
/**
 * Finds, checks and opens the two graphs of a SAM model in `dir`. Throws a SegkitError naming the file and the
 * expected input or output when the directory does not hold exactly one usable encoder and decoder.
 */
export async function loadSamModel(dir: string, options: LoadSamModelOptions = {}): Promise<SamModel> {
  const { threads, executionProviders, variant } = { ...DEFAULT_LOAD_SAM_MODEL_OPTIONS, ...options };
  const sam2 = await findSam2Files(dir);
  if (sam2) return loadSam2ImageModel(dir, sam2, { threads, ...(executionProviders ? { executionProviders } : {}) });
  const found = await findGraphs(dir, variant);
  // a click is one short decoder run between JavaScript steps: threads that sleep instead of spinning leave the
  // cores to them and to other processes (onnx/session.ts `spinning`)
  const sessionOptions = { threads, spinning: false, ...(executionProviders ? { executionProviders } : {}) };
  const encoderSession = await openGraph(found.encoder, sessionOptions);
  let decoderSession: OnnxSession;
  try {
    decoderSession = await openGraph(found.decoder, sessionOptions);
  } catch (err) {
    await encoderSession.dispose();
    throw err;
  }
  const lean = await leanDecoder(found.decoder, decoderSession, sessionOptions);
  try {
    return await assemble(dir, found, encoderSession, decoderSession, lean);
  } catch (err) {
    await encoderSession.dispose();
    await decoderSession.dispose();
    await lean.session?.dispose();
    await lean.split?.dispose();
    throw err;
  }
}

/** The decoder a click runs: cut to the low-res outputs, and split so that its image-only part runs once per image. */
interface LeanDecoder {
  session?: OnnxSession;
  split?: SplitOnnxSession;
}

/**
 * The decoder cut down to the outputs a decode without `fullSize` fetches (`pruneOnnx`): onnxruntime runs every
 * node, and the official export's full-size `masks` branch is ~15% of a click (measured 38.8 -> 32.7 ms, identical
 * outputs); no session when there is nothing to cut or the graph cannot be cut (then the whole graph runs).
 * And that graph split (`createSplitOnnxSession`) into what depends only on the image's embeddings (and on the
 * no-mask `mask_input` / `has_mask_input`), run once per image, and the rest, run per click: in SAM's decoder the
 * first two-way block's image-side projections (keys + positions, k / v of token-to-image, q of image-to-token),
 * ~20% of a click's CPU time (ViT-B decoder: 47.6 -> 39.7 ms on one thread), identical outputs. Clicks with a
 * mask input, or prompts whose shapes would change the image-side part, run the cut graph. The per-click part has
 * two sessions, whose threads spin during a run or sleep (`alternative`, below). The cut graph and the split run
 * the graph rewritten for onnxruntime's CPU provider where it has SAM's structure (`rewriteDecoder`, onnx/rewrite.ts).
 */
async function leanDecoder(
  file: string,
  session: OnnxSession,
  options: { threads: number; executionProviders?: readonly ExecutionProvider[]; spinning?: boolean },
): Promise<LeanDecoder> {
  const out: LeanDecoder = {};
  try {
    const graph = describeDecoder(session, file);
    const keep = lowResOutputs(graph);
    const bytes = await readFile(file);
    const baked: Record<string, OnnxInput> = graph.acceptsMaskInput ? noMaskFeeds() : {};
    const varying = session.inputNames.filter((n) => PROMPT_INPUTS.has(n) && !(n in baked));
    const pruned = session.outputNames.every((o) => keep.includes(o)) ? undefined : pruneOnnx(bytes, keep, file);
    // a rewrite that fails leaves the graph as it is (the cut and the split still apply)
    const rewritten = await rewriteDecoder(pruned ?? bytes, varying).catch(() => undefined);
    const cut = rewritten?.bytes ?? pruned;
    if (cut) out.session = await createOnnxSession(cut, options);
    // threads that spin while a click's run is on: ~1.0-1.3 ms (7%) faster per decode on an idle machine, about twice
    // as slow on a loaded one (2 busy processes on 2 cores: 40 vs 22 ms), so they are used unless the sleeping
    // threads' session has been clearly faster lately (split.ts `createChooser`)
    const alternative = options.threads > 1 ? { alternative: { spinning: "run" as const } } : {};
    out.split = await createSplitOnnxSession(cut ?? bytes, {
      ...options,
      varying,
      baked,
      outputs: keep,
      ...alternative,
    });
    return out;
  } catch {
    // assemble reports what is wrong with the graph; an uncut graph still runs
    await out.session?.dispose();
    return {};
  }
}

/** A 7-graph SAM 2 directory as a SamModel: image encoder, then prompt encoder and mask decoder per prompt. */
async function loadSam2ImageModel(
  dir: string,
  files: Sam2Files,
  options: { threads: number; executionProviders?: readonly ExecutionProvider[] },
): Promise<SamModel> {
  const parts = await openSam2(files, options, ["image_encoder", "prompt_encoder", "mask_decoder"]);
  const size = parts.constants.image_size;
  const need = (e: SamEmbeddings, name: string) => {
    const t = e[name];
    if (!t) throw new SegkitError(`embeddings lack \`${name}\`: they come from another model`, { file: dir });
    return t;
  };
  return {
    dir,
    layout: "sam2",
    encoderInput: "nchw",
    files: { encoder: files.graphs.image_encoder, decoder: files.graphs.mask_decoder },
    preprocess: { ...SAM_PREPROCESS, resize: "stretch", longestSide: size, padSize: size },
    maskChannels: 4,
    acceptsBox: false,
    acceptsMaskInput: true,
    lowResOutputs: ["iou_pred", "masks"],
    encode: (image) => sam2ImageEmbeddings(parts, image),
    async decode(embeddings, prompt) {
      const features = {
        imageEmbed: need(embeddings, "image_embed"),
        highRes0: need(embeddings, "high_res_feats_0"),
        highRes1: need(embeddings, "high_res_feats_1"),
      };
      const d = await sam2Decode(parts, features, prompt);
      return { scores: d.scores, lowRes: d.lowRes };
    },
    dispose: () => parts.dispose(),
  };
}

async function assemble(
  dir: string,
  files: { encoder: string; decoder: string },
  encoder: OnnxSession,
  decoder: OnnxSession,
  lean: LeanDecoder,
): Promise<SamModel> {
  const graph = describeDecoder(decoder, files.decoder);
  rejectSam2(encoder, files.encoder);
  const { layout, acceptsBox, acceptsMaskInput } = graph;
  const preprocess =
    layout === "transformers"
      ? await readPreprocess(dir)
      : { ...SAM_PREPROCESS, resize: layout === "sam2" ? ("stretch" as const) : ("longest-side" as const) };
  const enc = encoderSignature(encoder, files.encoder, preprocess);
  checkEmbeddings(encoder, enc, decoder, files);
  const S = preprocess.padSize;

  return {
    dir,
    layout,
    encoderInput: enc.form,
    files,
    preprocess,
    maskChannels: graph.maskChannels,
    acceptsBox,
    acceptsMaskInput,
    lowResOutputs: lowResOutputs(graph),

    async encode(image) {
      const expected = enc.form === "nchw" ? `[1,3,${S},${S}]` : `[H,W,3] with max(H, W) = ${preprocess.longestSide}`;
      const d = image.dims;
      const ok =
        enc.form === "nchw"
          ? d.length === 4 && d[0] === 1 && d[1] === 3 && d[2] === S && d[3] === S
          : d.length === 3 && d[2] === 3 && Math.max(d[0] ?? 0, d[1] ?? 0) === preprocess.longestSide;
      if (!ok || image.data.length !== d.reduce((a, b) => a * b, 1)) {
        throw new SegkitError(`encoder input must be ${expected} float32, got [${d.join(",")}]`, {
          file: files.encoder,
          hint: `${image.data.length} values given`,
        });
      }
      const out = await runGraph(encoder, files.encoder, { [enc.input]: image });
      const embeddings: Record<string, SamTensor> = {};
      for (const [name, feeds] of enc.outputs) {
        const t = out[name];
        if (t) embeddings[feeds] = t;
      }
      return embeddings;
    },

    ...(lean.split
      ? {
          async prepare(embeddings: SamEmbeddings, prompt: SamDecodePrompt) {
            const { feeds } = decoderFeeds(graph, embeddings, prompt, {});
            await runGuarded(files.decoder, () => (lean.split as SplitOnnxSession).run(feeds, []));
          },
        }
      : {}),

    async decode(embeddings, prompt, options = {}) {
      const { feeds, fetch } = decoderFeeds(graph, embeddings, prompt, options);
      const split = options.fullSize ? undefined : lean.split;
      const parts = split && (await runGuarded(files.decoder, () => split.run(feeds, fetch)));
      if (parts) return decoderOutputs(graph, parts);
      const session = options.fullSize ? decoder : (lean.session ?? decoder);
      return decoderOutputs(graph, await runGraph(session, files.decoder, feeds, fetch));
    },

    async dispose() {
      await encoder.dispose();
      await decoder.dispose();
      await lean.session?.dispose();
      await lean.split?.dispose();
    },
  };
}

/**
 * Every decoder input that is not a prompt must come out of the encoder, with a declared shape that agrees
 * (symbolic dims agree with anything): mismatched files fail here rather than inside onnxruntime.
 */
function checkEmbeddings(
  encoder: OnnxSession,
  enc: EncoderSignature,
  decoder: OnnxSession,
  files: { encoder: string; decoder: string },
): void {
  const source = new Map([...enc.outputs].map(([name, feeds]) => [feeds, name]));
  const needed = decoder.inputs.filter((i) => !PROMPT_INPUTS.has(i.name));
  for (const input of needed) {
    if (source.has(input.name)) continue;
    const hq = input.name === "interm_embeddings" ? " (a SAM-HQ decoder: use the SAM-HQ encoder export)" : "";
    throw new SegkitError(
      `output \`${input.name}\` missing; the decoder ${basename(files.decoder)} needs it as input${hq}`,
      { file: files.encoder, hint: `the encoder has outputs ${listNames(encoder.outputNames)}` },
    );
  }
  for (const input of needed) {
    const name = source.get(input.name) as string;
    const out = encoder.outputs.find((o) => o.name === name);
    const a = out?.shape ?? [];
    const b = input.shape;
    const agree =
      !a.length ||
      !b.length ||
      (a.length === b.length && a.every((d, i) => typeof d !== "number" || typeof b[i] !== "number" || d === b[i]));
    if (!agree) {
      throw new SegkitError(
        `output \`${name}\` is ${shapeText(out)} but the decoder ${basename(files.decoder)} takes \`${input.name}\` ${shapeText(input)}`,
        { file: files.encoder, hint: "the encoder and decoder come from different models" },
      );
    }
  }
}

interface EncoderSignature {
  form: SamEncoderInput;
  input: string;
  /** encoder output name -> the decoder input it feeds */
  outputs: Map<string, string>;
}

function encoderSignature(encoder: OnnxSession, file: string, preprocess: SamPreprocess): EncoderSignature {
  const expected = `expected one image input, [1,3,${preprocess.padSize},${preprocess.padSize}] (normalised, padded) or [H,W,3] (RGB 0..255)`;
  const [input, ...more] = encoder.inputs;
  if (!input || more.length > 0) {
    throw new SegkitError(`has ${encoder.inputs.length} inputs (${listNames(encoder.inputNames)}); ${expected}`, {
      file,
    });
  }
  const s = input.shape;
  const form: SamEncoderInput | null =
    s.length === 4 && (s[1] === 3 || typeof s[1] === "string")
      ? "nchw"
      : s.length === 3 && (s[2] === 3 || typeof s[2] === "string")
        ? "hwc"
        : null;
  if (!form || (input.type !== "float32" && input.type !== "float16")) {
    throw new SegkitError(`input \`${input.name}\` is ${input.type} ${shapeText(input)}; ${expected}`, { file });
  }
  if (input.type === "float16") {
    throw new SegkitError(`input \`${input.name}\` is float16; segkit feeds float32 images`, {
      file,
      hint: "use the float32 export of this encoder",
    });
  }
  if (form === "nchw" && typeof s[2] === "number" && s[2] !== preprocess.padSize) {
    throw new SegkitError(
      `input \`${input.name}\` is ${shapeText(input)}; expected [1,3,${preprocess.padSize},${preprocess.padSize}]`,
      {
        file,
      },
    );
  }
  const names = encoder.outputNames;
  // SAM 2 (samexporter): every output keeps its name, as the decoder's inputs do
  if (names.includes("image_embed")) return { form, input: input.name, outputs: new Map(names.map((n) => [n, n])) };
  const main = names.includes("image_embeddings") ? "image_embeddings" : names[0];
  if (main === undefined)
    throw new SegkitError(`has no outputs; expected \`image_embeddings\` [1,256,64,64]`, { file });
  return { form, input: input.name, outputs: new Map(names.map((n) => [n, n === main ? "image_embeddings" : n])) };
}

/**
 * transformers' preprocessor_config.json (SamImageProcessor) as resize / normalise / pad numbers; defaults when
 * the file is absent.
 */
async function readPreprocess(dir: string): Promise<SamPreprocess> {
  const file = join(dir, "preprocessor_config.json");
  if (!(await pathExists(file))) return { ...SAM_PREPROCESS };
  const cfg = await readJson<Record<string, unknown>>(file);
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v > 0 ? v : undefined);
  const triple = (v: unknown, key: string): [number, number, number] | undefined => {
    if (v === undefined) return undefined;
    if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === "number" && Number.isFinite(x))) {
      return v as [number, number, number];
    }
    throw new SegkitError(`\`${key}\` must be 3 numbers, got ${JSON.stringify(v)}`, { file });
  };
  // mean/std are in rescaled units (pixel * rescale_factor); segkit states them in 0..255
  const scale = cfg.do_rescale === false ? 1 : 1 / (num(cfg.rescale_factor) ?? 1 / 255);
  const mean = triple(cfg.image_mean, "image_mean");
  const std = triple(cfg.image_std, "image_std");
  const size = cfg.size as { longest_edge?: unknown } | undefined;
  const pad = cfg.pad_size as { height?: unknown; width?: unknown } | undefined;
  const longestSide = num(size?.longest_edge) ?? SAM_PREPROCESS.longestSide;
  const padSize = num(pad?.height) ?? longestSide;
  if (num(pad?.width) !== undefined && pad?.width !== padSize) {
    throw new SegkitError(`pad_size must be square, got ${JSON.stringify(pad)}`, { file });
  }
  return {
    resize: "longest-side",
    longestSide,
    padSize,
    mean: mean ? [mean[0] * scale, mean[1] * scale, mean[2] * scale] : [...SAM_PREPROCESS.mean],
    std: std ? [std[0] * scale, std[1] * scale, std[2] * scale] : [...SAM_PREPROCESS.std],
  };
}

/**
 * The encoder and decoder files in `dir` and `dir/onnx`, by name; exactly one of each after variant filtering.
 * Without `variant`: the files without a variant suffix, or, when there are none, those of the only variant there is.
 */
async function findGraphs(dir: string, variant: string | undefined): Promise<{ encoder: string; decoder: string }> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) throw new SegkitError(info ? "not a directory" : "no such directory", { file: dir });
  const files: string[] = [];
  for (const sub of [dir, join(dir, "onnx")]) {
    const names = await listFiles(sub).catch(() => []);
    for (const name of names) if (name.toLowerCase().endsWith(".onnx")) files.push(join(sub, name));
  }
  const stem = (f: string) => basename(f).slice(0, -".onnx".length).toLowerCase();
  const endsWith = (f: string, suffix: string) => new RegExp(`[._-]${suffix}$`).test(stem(f));
  const suffix = (f: string) => VARIANT_SUFFIXES.find((v) => endsWith(f, v)) ?? "";
  const isGraph = (f: string) => /encoder|decoder/.test(stem(f));
  const variants = [...new Set(files.filter(isGraph).map(suffix))].sort();
  const only = variants.length === 1 ? variants[0] : undefined;
  const pick = variant?.toLowerCase() ?? (variants.includes("") ? "" : (only ?? ""));
  const chosen = files.filter((f) => (variant ? endsWith(f, pick) : suffix(f) === pick));
  let decoders = chosen.filter((f) => stem(f).includes("decoder"));
  const encoders = chosen.filter((f) => stem(f).includes("encoder") && !stem(f).includes("decoder"));
  // Acly's MobileSAM: sam_mask_decoder_multi.onnx (4 masks) beside sam_mask_decoder_single.onnx
  // (--return-single-mask); the multi one also holds the single-mask answer (channel 0)
  const named = (f: string, word: string) => new RegExp(`[._-]${word}([._-]|$)`).test(stem(f));
  const multi = decoders.filter((f) => named(f, "multi"));
  if (decoders.length === 2 && multi.length === 1 && decoders.some((f) => named(f, "single"))) decoders = multi;
  const which = pick ? ` with the suffix \`${pick}\`` : "";
  const expected =
    "expected one `*encoder*.onnx` and one `*decoder*.onnx` (split export), or `onnx/vision_encoder.onnx` and " +
    "`onnx/prompt_encoder_mask_decoder.onnx` (transformers.js)";
  const listed = files.length ? `found ${files.map((f) => relative(dir, f)).join(", ")}` : "found no .onnx files";
  const others = variants.filter((v) => v && v !== pick);
  const choose = others.length ? `; choose a variant (\`variant\`, segkit sam --variant): ${others.join(", ")}` : "";
  for (const [role, list] of [
    ["encoder", encoders],
    ["decoder", decoders],
  ] as const) {
    if (list.length === 0) {
      throw new SegkitError(`no ${role}${which}; ${expected}`, { file: dir, hint: `${listed}${choose}` });
    }
    if (list.length > 1) {
      throw new SegkitError(`${list.length} ${role}s${which}: ${list.map((f) => relative(dir, f)).join(", ")}`, {
        file: dir,
        hint: "keep one, or choose a variant (e.g. `quantized`)",
      });
    }
  }
  return { encoder: encoders[0] as string, decoder: decoders[0] as string };
}
