/**
 * A `SamPredictor` result on disk (what `segkit sam` writes) and a previous mask read back as `maskInput`.
 *
 * Files in the output directory:
 * - `mask-K.png`: mask K of the prediction (prompt-major, decoder order), 8-bit gray 0 / 255 at the original size;
 * - `overlay.png`: the image with the best-scoring mask of each prompt tinted blue, foreground points as green
 *   dots, background points as red dots, boxes as green rectangles (the colours of segment-anything's notebooks);
 * - `low_res_logits.npy`: the returned channels' low-res logits, float32 `[K, 256, 256]` (`[prompts, K, 256, 256]`
 *   with several boxes), over the padded 1024 square: one plane of it is a valid `maskInput`.
 */
import { extname, join } from "node:path";
import { SegkitError } from "../core/errors.js";
import { createImage, createMask, type Mask, type RgbImage } from "../core/image.js";
import type { Palette } from "../core/palette.js";
import { writeFileAtomic } from "../io/fs.js";
import { readBytes } from "../io/image.js";
import { readRawMask } from "../io/mask.js";
import { encodeBinaryMaskPng, overlayMask, writeImagePng } from "../io/write.js";
import { decodeNpy, encodeNpy } from "./npy.js";
import type { SamPrediction, SamPredictRequest } from "./predictor.js";
import { preprocessShape, SAM_IMAGE_SIZE, SAM_LOW_RES_SIZE, type SamSize } from "./transforms.js";

/** Gray levels: a 0 / 255 mask written with it reads back as 0 / 255 (Pillow mode "P" indices, segkit gray). */
const MASK_TINT: Palette = Array.from({ length: 256 }, () => [30, 144, 255] as const);
const GREEN = [0, 255, 0] as const;
const RED = [255, 0, 0] as const;
const WHITE = [255, 255, 255] as const;

/** Logit given to mask pixels inside (+) and outside (-) when a binary mask image becomes a `maskInput` plane. */
export const MASK_INPUT_LOGIT = 10;

export interface SamMaskFile {
  file: string;
  score: number;
  stabilityScore: number;
  /** The decoder channel. */
  channel: number;
  /** Which prompt (box) it answers, 0-based. */
  prompt: number;
}

export interface SamOutputFiles {
  masks: SamMaskFile[];
  overlay: string;
  lowResLogits: string;
}

/** Writes the files listed in the module comment (each atomically); returns their names relative to `dir`. */
export async function writeSamOutputs(
  dir: string,
  image: RgbImage,
  prediction: SamPrediction,
  request: SamPredictRequest,
): Promise<SamOutputFiles> {
  const masks: SamMaskFile[] = [];
  for (const [k, mask] of prediction.masks.entries()) {
    const file = `mask-${k}.png`;
    await writeFileAtomic(join(dir, file), encodeBinaryMaskPng(mask));
    masks.push({
      file,
      score: prediction.scores[k] as number,
      stabilityScore: prediction.stabilityScores[k] as number,
      channel: prediction.channels[k % prediction.perPrompt] as number,
      prompt: Math.floor(k / prediction.perPrompt),
    });
  }
  await writeImagePng(join(dir, "overlay.png"), promptOverlay(image, prediction, request));
  await writeFileAtomic(join(dir, "low_res_logits.npy"), encodeNpy(prediction.lowResLogits));
  return { masks, overlay: "overlay.png", lowResLogits: "low_res_logits.npy" };
}

/** The overlay described in the module comment; dots and lines scale with the image (radius >= 3 px). */
export function promptOverlay(image: RgbImage, prediction: SamPrediction, request: SamPredictRequest): RgbImage {
  const { width, height } = image;
  const union = new Uint8Array(width * height);
  for (let b = 0; b < prediction.prompts; b++) {
    let best = b * prediction.perPrompt;
    for (let k = best; k < (b + 1) * prediction.perPrompt; k++) {
      if ((prediction.scores[k] as number) > (prediction.scores[best] as number)) best = k;
    }
    const m = prediction.masks[best] as Mask;
    for (let i = 0; i < union.length; i++) if (m.data[i]) union[i] = 1;
  }
  const out = overlayMask(image, createMask(width, height, union), {
    palette: MASK_TINT,
    skipClasses: [0],
    alpha: 0.6,
  });
  const data = new Uint8Array(out.data);
  const paint = (x: number, y: number, c: readonly [number, number, number]) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    data.set(c, (y * width + x) * 3);
  };
  const r = Math.max(3, Math.round(Math.min(width, height) / 100));
  const line = Math.max(1, Math.round(r / 3));
  for (const box of request.boxes ?? (request.box ? [request.box] : [])) {
    const [x1, y1, x2, y2] = box.map(Math.round) as [number, number, number, number];
    for (let t = 0; t < line; t++) {
      for (let x = x1; x <= x2; x++) {
        paint(x, y1 + t, GREEN);
        paint(x, y2 - t, GREEN);
      }
      for (let y = y1; y <= y2; y++) {
        paint(x1 + t, y, GREEN);
        paint(x2 - t, y, GREEN);
      }
    }
  }
  for (const p of request.points ?? []) {
    const cx = Math.round(p.x);
    const cy = Math.round(p.y);
    for (let dy = -r - 1; dy <= r + 1; dy++) {
      for (let dx = -r - 1; dx <= r + 1; dx++) {
        const d2 = dx * dx + dy * dy;
        if (d2 <= r * r) paint(cx + dx, cy + dy, p.label === 1 ? GREEN : RED);
        else if (d2 <= (r + 1) * (r + 1)) paint(cx + dx, cy + dy, WHITE);
      }
    }
  }
  return createImage(width, height, data);
}

/**
 * A `maskInput` plane `[256 * 256]` from a file:
 * - `.npy`: float32/float64 logits `[256, 256]`, `[1, 256, 256]`, `[1, 1, 256, 256]`, or `[C, 256, 256]` with
 *   `index` choosing the plane (what `low_res_logits.npy` holds);
 * - an image (a `mask-K.png`): nonzero = inside, at the original image size (mapped into the low-res frame by the
 *   model's geometry, nearest pixel, padding outside: `inputSize` is the image's place in the 1024 frame, by
 *   default SAM's resize-longest-side; SAM 2's is the whole frame) or at 256 x 256 (the low-res frame itself);
 *   inside becomes logit +`MASK_INPUT_LOGIT`, outside -`MASK_INPUT_LOGIT` (SAM defines no binary-to-logit rule).
 */
export async function readMaskInput(
  path: string,
  originalSize: SamSize,
  index?: number,
  inputSize: SamSize = preprocessShape(originalSize.height, originalSize.width),
): Promise<Float32Array> {
  const low = SAM_LOW_RES_SIZE;
  const plane = low * low;
  if (extname(path).toLowerCase() === ".npy") {
    const t = decodeNpy(await readBytes(path), path);
    const planes = t.data.length / plane;
    const lead = t.dims.slice(0, -2);
    if (t.dims.at(-1) !== low || t.dims.at(-2) !== low || lead.some((d, i) => d !== 1 && i < lead.length - 1)) {
      throw new SegkitError(`shape (${t.dims.join(", ")}) is not [256, 256], [C, 256, 256] or [1, C, 256, 256]`, {
        file: path,
        hint: "give a low-res logit plane, e.g. low_res_logits.npy from a previous run",
      });
    }
    if (planes > 1 && index === undefined) {
      throw new SegkitError(`holds ${planes} low-res planes; choose one`, { file: path, hint: "pass --mask-index K" });
    }
    const k = index ?? 0;
    if (!Number.isInteger(k) || k < 0 || k >= planes) {
      throw new SegkitError(`mask index ${k} out of range: the file holds ${planes} planes`, { file: path });
    }
    return t.data.slice(k * plane, (k + 1) * plane);
  }
  const raw = await readRawMask(path);
  const { height: H, width: W } = originalSize;
  const out = new Float32Array(plane).fill(-MASK_INPUT_LOGIT);
  if (raw.width === low && raw.height === low) {
    for (let i = 0; i < plane; i++) if (raw.data[i]) out[i] = MASK_INPUT_LOGIT;
    return out;
  }
  if (raw.width !== W || raw.height !== H) {
    throw new SegkitError(`mask is ${raw.width}x${raw.height}; expected the image size ${W}x${H} or 256x256`, {
      file: path,
    });
  }
  const input = inputSize;
  const step = SAM_IMAGE_SIZE / low;
  for (let i = 0; i < low; i++) {
    const y = step * i + step / 2; // low-res pixel centre in the 1024 frame
    if (y >= input.height) break;
    const yo = Math.min(H - 1, Math.floor((y * H) / input.height));
    for (let j = 0; j < low; j++) {
      const x = step * j + step / 2;
      if (x >= input.width) break;
      const xo = Math.min(W - 1, Math.floor((x * W) / input.width));
      if (raw.data[yo * W + xo]) out[i * low + j] = MASK_INPUT_LOGIT;
    }
  }
  return out;
}
