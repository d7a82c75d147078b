/**
 * `SamPredictor`: segment-anything's `SamPredictor` on a `SamModel` (split or transformers.js layout). `setImage`
 * runs the encoder once per image; every `predict` (a click) runs only the prompt decoder on the cached embeddings.
 *
 * Conventions, as the reference predictor (segment-anything `predictor.py`):
 * - prompts are in ORIGINAL image pixels: points `(x, y)` with label 1 foreground / 0 background, boxes
 *   `x1, y1, x2, y2`; they are mapped to the resized frame with `applyCoords` / `applyBoxes`;
 * - `maskInput` is one low-res logit plane `[256 * 256]` float32 over the padded 1024 square (one plane of a
 *   previous prediction's `lowResLogits`, not thresholded), for decoders with a `mask_input` (not EdgeSAM's or
 *   transformers.js's);
 * - `multimask: true` (default) returns the 3 candidates in decoder order (channels 1, 2, 3 of the official or
 *   EdgeSAM decoder's 4) with their predicted IoU; `false` returns the single-mask answer, channel 0. The
 *   transformers.js decoder returns only the 3 candidates: `false` then picks the one with the highest predicted IoU
 *   (first on ties), as transformers.js's SAM examples do. A decoder with one mask channel (SAM-HQ, a
 *   `--return-single-mask` export) returns that mask in both modes (`perPrompt` 1);
 * - masks are `Mask` planes at the original size, 1 where the upscaled logit is > 0 (`upscaleMasks`, the same
 *   semantics as `Sam.postprocess_masks`); the stability score is `calculate_stability_score` (threshold 0, offset 1)
 *   of those original-size logits, as the automatic mask generator computes it.
 * - `boxes` (several boxes) run one decoder call per box with the same points and mask input, as the reference's
 *   batched `predict_torch`; results are box-major: mask `b * perPrompt + k`.
 * Per click only the low-res logits are fetched from the decoder (not its in-graph full-size `masks` of all 4
 * channels), and only the returned channels are upscaled, over the whole image (a cost that does not depend on the
 * masks: `upscaleToRle`, which computes only where a mask can be, took 30.6 ms instead of 9.9 ms for bench/sam's 3
 * noisy masks at 640 x 480).
 *
 * Embeddings are cached in memory and optionally on disk (`embedding-cache.ts`); `setImage` on the last image it
 * hashed compares the pixels with a copy instead of hashing them again (`createImageHasher`).
 */
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { SegkitError } from "../core/errors.js";
import { createMask, type Mask, type RgbImage } from "../core/image.js";
import { type ImageSource, readImage } from "../io/image.js";
import { chooseMaskChannels, samDecodePrompt } from "./decoder-feeds.js";
import { createEmbeddingCache, createImageHasher } from "./embedding-cache.js";
import { type LoadSamModelOptions, loadSamModel, type SamEmbeddings, type SamModel, type SamTensor } from "./model.js";
import { nativeUpscaler } from "./native-upscale.js";
import { createParallelUpscaler, type ParallelUpscaler } from "./parallel-upscale.js";
import { type SamMaskFrame, upscaleAndThreshold } from "./postprocess.js";
import {
  preprocessImage,
  preprocessShape,
  preprocessStretched,
  resizeLongestSide,
  SAM_IMAGE_SIZE,
  SAM_LOW_RES_SIZE,
  SAM_PIXEL_MEAN,
  SAM_PIXEL_STD,
  type SamBox,
  type SamPoint,
  type SamSize,
} from "./transforms.js";

export interface SamPredictorOptions extends LoadSamModelOptions {
  /** Directory of the on-disk embeddings cache (created when needed); no disk cache when absent. */
  cacheDir?: string;
  /** How many images' embeddings stay in memory (least recently used dropped first); >= 1. */
  memoryCache?: number;
  /**
   * Upscale a click's masks on a worker thread as well as the calling one (`createParallelUpscaler`, rows split by
   * the two threads' measured speeds: the 3 masks of a 640 x 480 click in 3.1-4.3 instead of 5.0-5.3 ms in
   * `npm run bench:sam` on a 2-core VM, 2026-12-07) where the native upscaling does not run (`nativeUpscale`).
   * Default: when the machine has more than one core and `threads` is not 1.
   */
  upscaleWorker?: boolean;
  /**
   * Upscale a click's masks with the native addon's kernel where it loaded (`nativeUpscaler`: one thread per core, or
   * one when `threads` is 1; the worker is then not started): the same masks and scores; the 3 masks of a 640 x 480
   * click in 1.0 instead of 3.6 ms inside clicks (`npm run bench:sam`, 2026-12-07). Default true.
   */
  nativeUpscale?: boolean;
}

export const DEFAULT_SAM_PREDICTOR_OPTIONS: Readonly<{ memoryCache: number }> = { memoryCache: 4 };

/** The image `setImage` prepared. */
export interface SamImageInfo {
  /** SHA-256 (hex) of the image's size and RGB pixels. */
  hash: string;
  /** `(H, W)` of the image as given. */
  originalSize: SamSize;
  /** `(H, W)` of the resized image inside the padded square. */
  inputSize: SamSize;
  /** Where the embeddings came from. */
  source: "encoder" | "memory" | "disk";
  /** Milliseconds `setImage` took (reading a path not included). */
  ms: number;
}

export interface SamPredictRequest {
  /** Clicks in original-image pixels. */
  points?: readonly SamPoint[];
  /** One box `x1, y1, x2, y2` in original-image pixels. */
  box?: SamBox;
  /** Several boxes: one decoder call each (not with `box`). */
  boxes?: readonly SamBox[];
  /** A previous low-res logit plane `[256 * 256]` (decoders with a `mask_input`). */
  maskInput?: Float32Array;
  /** 3 candidates (true, default) or the single-mask answer; a 1-mask decoder returns its mask either way. */
  multimask?: boolean;
  /** Also return the original-size logits behind `masks`. */
  returnLogits?: boolean;
}

/** What `decode` returns: the decoder's answer for a request, before upscaling. */
export interface SamLowResPrediction {
  originalSize: SamSize;
  /** `(H, W)` of the resized image inside the padded square (what the low-res logits cover, scaled by 1/4). */
  inputSize: SamSize;
  /** What `upscaleMasks` takes for these logits: `inputSize`, or "stretch" for SAM 2 (the image fills the frame). */
  maskFrame: SamMaskFrame;
  /** Decoder prompts run: the number of boxes with `boxes`, else 1. */
  prompts: number;
  /**
   * Masks per prompt (3 with multimask, else 1; 1 from a 1-mask decoder). Every list below is prompt-major: index
   * `b * perPrompt + k`.
   */
  perPrompt: number;
  /** The decoder channel each mask is. */
  channels: number[];
  /** Predicted IoU per mask. */
  scores: Float32Array;
  /** The returned channels' low-res logits: `[perPrompt, 256, 256]`, or `[prompts, perPrompt, 256, 256]` with `boxes`. */
  lowResLogits: SamTensor;
  /** Milliseconds in the decoder, summed over prompts. */
  timings: { decodeMs: number };
}

export interface SamPrediction extends Omit<SamLowResPrediction, "timings"> {
  /** 1 inside, 0 outside, at the original size. */
  masks: Mask[];
  /** With `returnLogits`: `[H * W]` float32 logits per mask at the original size. */
  logits?: Float32Array[];
  stabilityScores: Float32Array;
  /** Milliseconds in the decoder and in upscaling / thresholding, summed over prompts. */
  timings: { decodeMs: number; upscaleMs: number };
}

export interface SamPredictor {
  readonly model: SamModel;
  /** The current image, after `setImage`. */
  readonly image: SamImageInfo | undefined;
  /** Makes `image` (pixels, or a file / encoded bytes) current, running the encoder unless it is cached. */
  setImage(image: RgbImage | ImageSource): Promise<SamImageInfo>;
  /** Masks for one prompt (or one per box) on the current image. */
  predict(request: SamPredictRequest): Promise<SamPrediction>;
  /**
   * The decoder's part of `predict`: scores and low-res logits of the same masks, nothing upscaled (`returnLogits`
   * ignored). For callers that upscale only some masks, or at another size (`upscaleMasks`).
   */
  decode(request: SamPredictRequest): Promise<SamLowResPrediction>;
  /** Drops the caches; disposes the model when the predictor loaded it (not when it was given one). */
  dispose(): Promise<void>;
}

const LOW_AREA = SAM_LOW_RES_SIZE * SAM_LOW_RES_SIZE;

/**
 * A predictor on the model in `model` (a directory, loaded with `options` and owned by the predictor) or on an open
 * `SamModel` (left open by `dispose`).
 */
export async function createSamPredictor(
  model: string | SamModel,
  options: SamPredictorOptions = {},
): Promise<SamPredictor> {
  const { cacheDir, memoryCache, upscaleWorker, nativeUpscale, ...loadOptions } = {
    ...DEFAULT_SAM_PREDICTOR_OPTIONS,
    ...options,
  };
  if (!Number.isInteger(memoryCache) || memoryCache < 1) {
    throw new SegkitError(`memoryCache must be an integer >= 1, got ${memoryCache}`);
  }
  const owned = typeof model === "string";
  const m = owned ? await loadSamModel(model, loadOptions) : model;
  try {
    checkPreprocess(m);
  } catch (err) {
    if (owned) await m.dispose();
    throw err;
  }
  const longest = m.preprocess.longestSide;
  const stretch = m.preprocess.resize === "stretch";
  /** The image's place in the model's frame: SAM's resized image in the padded square, or SAM 2's whole square. */
  const inputSizeOf = (img: { height: number; width: number }): SamSize =>
    stretch ? { height: longest, width: longest } : preprocessShape(img.height, img.width, longest);
  const cache = createEmbeddingCache(m, { memoryCache, cacheDir });
  const imageHash = createImageHasher();
  let current: { info: SamImageInfo; embeddings: SamEmbeddings } | undefined;
  let disposed = false;
  // started by the first setImage; clicks do not wait for it
  const native = nativeUpscale === false ? undefined : nativeUpscaler(loadOptions.threads === 1 ? 1 : 0);
  const parallel = !native && (upscaleWorker ?? (availableParallelism() > 1 && loadOptions.threads !== 1));
  let upscaler: ParallelUpscaler | undefined;

  /**
   * The decoder's once-per-image part for a new image (`SamModel.prepare`, shaped like a one-point prompt), so that
   * the image's first click does not also run it.
   */
  const prepare = async (size: SamSize, embeddings: SamEmbeddings) => {
    const centre = { x: size.width / 2, y: size.height / 2, label: 1 as const };
    // a decoder that fails here fails on the first click, which reports it
    await m
      .prepare?.(embeddings, samDecodePrompt(m.layout, { points: [centre] }, size, longest))
      .catch(() => undefined);
  };

  const alive = () => {
    if (disposed) throw new SegkitError("this SamPredictor was disposed");
  };
  const decode = async (request: SamPredictRequest): Promise<SamLowResPrediction> => {
    alive();
    if (!current) throw new SegkitError("no image: call setImage before predict");
    const { originalSize, inputSize } = current.info;
    const { points = [], box, boxes, maskInput, multimask = true } = request;
    if (box && boxes) throw new SegkitError("give either `box` or `boxes`, not both");
    if (boxes?.length === 0) throw new SegkitError("`boxes` is empty");
    if (!points.length && !box && !boxes && !maskInput) {
      throw new SegkitError("an empty prompt: give points, a box, boxes or a mask input");
    }
    const promptBoxes: readonly (SamBox | undefined)[] = boxes ?? [box];
    const scores: number[] = [];
    const lowRes: Float32Array[] = [];
    let channels: number[] = [];
    let decodeMs = 0;
    for (const b of promptBoxes) {
      const prompt = samDecodePrompt(
        m.layout,
        { points, ...(b ? { box: b } : {}), ...(maskInput ? { maskInput } : {}) },
        originalSize,
        longest,
      );
      const t = performance.now();
      const decoded = await m.decode(current.embeddings, prompt);
      decodeMs += performance.now() - t;
      const count = decoded.lowRes.dims[0] ?? 0;
      channels = chooseMaskChannels(
        { layout: m.layout, file: m.files.decoder },
        count,
        multimask,
        decoded.scores,
        decoded.lowRes.data,
      );
      for (const c of channels) {
        scores.push(decoded.scores[c] as number);
        lowRes.push(decoded.lowRes.data.subarray(c * LOW_AREA, (c + 1) * LOW_AREA));
      }
    }
    const low = new Float32Array(lowRes.length * LOW_AREA);
    for (const [i, p] of lowRes.entries()) low.set(p, i * LOW_AREA);
    const perPrompt = channels.length;
    const lowDims = [perPrompt, SAM_LOW_RES_SIZE, SAM_LOW_RES_SIZE];
    return {
      originalSize,
      inputSize,
      maskFrame: stretch ? "stretch" : inputSize,
      prompts: promptBoxes.length,
      perPrompt,
      channels,
      scores: Float32Array.from(scores),
      lowResLogits: { data: low, dims: boxes ? [boxes.length, ...lowDims] : lowDims },
      timings: { decodeMs },
    };
  };

  return {
    model: m,
    get image() {
      return current?.info;
    },

    async setImage(image) {
      alive();
      const img = typeof image === "string" || image instanceof Uint8Array ? await readImage(image) : image;
      alive();
      const t0 = performance.now();
      // the upscaling worker starts (and compiles) while the image is encoded, not during the first clicks
      if (parallel) upscaler ??= createParallelUpscaler();
      const hash = imageHash(img);
      const originalSize = { height: img.height, width: img.width };
      const inputSize = inputSizeOf(img);
      const cached = await cache.get(hash);
      const source: SamImageInfo["source"] = cached?.source ?? "encoder";
      let embeddings = cached?.embeddings;
      if (!embeddings) {
        embeddings = await m.encode(encoderInput(m, img));
        await cache.put(hash, embeddings);
      }
      alive(); // (disposed while it encoded: nothing is kept)
      const info: SamImageInfo = { hash, originalSize, inputSize, source, ms: 0 };
      const changed = current?.embeddings !== embeddings;
      current = { info, embeddings };
      if (changed) await prepare(originalSize, embeddings);
      info.ms = performance.now() - t0;
      return info;
    },

    decode,

    async predict(request) {
      const d = await decode(request);
      alive();
      const { originalSize, maskFrame } = d;
      const t = performance.now();
      // every returned plane upscaled, thresholded and counted for its stability in one pass (taps kept per size)
      const logits = request.returnLogits === true;
      if (parallel) upscaler ??= createParallelUpscaler();
      const low = d.lowResLogits.data;
      const up = logits
        ? upscaleAndThreshold(low, maskFrame, originalSize, { logits })
        : native
          ? native(low, maskFrame, originalSize)
          : upscaler
            ? upscaler.run(low, maskFrame, originalSize)
            : upscaleAndThreshold(low, maskFrame, originalSize);
      const masks = up.masks.map((p) => createMask(originalSize.width, originalSize.height, p));
      const timings = { decodeMs: d.timings.decodeMs, upscaleMs: performance.now() - t };
      return { ...d, masks, ...(up.logits ? { logits: up.logits } : {}), stabilityScores: up.stability, timings };
    },

    async dispose() {
      if (disposed) return;
      disposed = true;
      cache.clear();
      current = undefined;
      await upscaler?.dispose();
      if (owned) await m.dispose();
    },
  };
}

/** The predictor resizes, normalises and upscales in SAM's 1024 frame with SAM's mean/std; other settings are refused. */
function checkPreprocess(m: SamModel): void {
  const p = m.preprocess;
  const close = (a: readonly number[], b: readonly number[]) =>
    a.every((v, i) => Math.abs(v - (b[i] as number)) < 1e-6);
  if (
    p.longestSide !== SAM_IMAGE_SIZE ||
    p.padSize !== SAM_IMAGE_SIZE ||
    !close(p.mean, SAM_PIXEL_MEAN) ||
    !close(p.std, SAM_PIXEL_STD)
  ) {
    throw new SegkitError(
      `preprocessing (longest side ${p.longestSide}, pad ${p.padSize}, mean ${p.mean}, std ${p.std}) differs from SAM's`,
      { file: join(m.dir, "preprocessor_config.json"), hint: "SamPredictor supports SAM's 1024 frame, mean and std" },
    );
  }
}

/**
 * The encoder input in the model's form (see model.ts): normalised padded NCHW, SAM 2's stretched normalised NCHW,
 * or resized HWC 0..255.
 */
export function encoderInput(m: SamModel, img: RgbImage): SamTensor {
  const size = m.preprocess.padSize;
  if (m.preprocess.resize === "stretch") return { data: preprocessStretched(img, size), dims: [1, 3, size, size] };
  if (m.encoderInput === "nchw") {
    const p = preprocessImage(img, m.preprocess.longestSide);
    return { data: p.data, dims: p.dims };
  }
  const r = resizeLongestSide(img, m.preprocess.longestSide);
  return { data: Float32Array.from(r.data), dims: [r.height, r.width, 3] };
}
