import { SegkitError } from "../core/errors.js";
import type { RgbImage } from "../core/image.js";
import { resizeBilinearAntialias } from "../masks/resize.js";
import { pillowResizeBilinear } from "./pillow-resize.js";

/**
 * Segment Anything's geometry and pre/postprocessing as pure functions on typed arrays, exact to the reference
 * (segment-anything `utils/transforms.py` ResizeLongestSide, `predictor.py` SamPredictor, `modeling/sam.py`
 * preprocess/postprocess_masks, `utils/onnx.py` SamOnnxModel, `utils/amg.py` calculate_stability_score, and the
 * ONNX example notebook's prompt packing).
 *
 * Frames and layouts, stated once:
 * - original frame: the user's image, `(x, y)` in its pixels, size `(H, W)` = `originalSize`;
 * - input frame: the image resized so its longest side is 1024, size `inputSize = preprocessShape(H, W)`; the
 *   encoder sees it normalised and padded bottom-right with zeros to 1024 x 1024;
 * - low-res frame: the decoder's `low_res_masks`, `[1, 4, 256, 256]` float32 logits covering the padded 1024 square
 *   (4x smaller); `mask_input` is one such plane;
 * - images are HWC uint8 (`RgbImage`), tensors row-major NCHW float32, boxes `x1, y1, x2, y2`, sizes `(H, W)`.
 */

/** The side of the square the encoder takes. */
export const SAM_IMAGE_SIZE = 1024;
/** The side of the decoder's low-res mask planes (and of `mask_input`). */
export const SAM_LOW_RES_SIZE = 256;
/** SAM's pixel mean and std (RGB, 0..255 scale), `Sam.pixel_mean` / `Sam.pixel_std`. */
export const SAM_PIXEL_MEAN: readonly [number, number, number] = [123.675, 116.28, 103.53];
export const SAM_PIXEL_STD: readonly [number, number, number] = [58.395, 57.12, 57.375];

/** An image size, height first as in the reference (`original_size`, `input_size`, `orig_im_size`). */
export interface SamSize {
  height: number;
  width: number;
}

function checkSize(size: SamSize, what: string): void {
  if (!Number.isInteger(size.height) || !Number.isInteger(size.width) || size.height < 1 || size.width < 1) {
    throw new SegkitError(`${what} must be positive integers, got ${size.height} x ${size.width} (H x W)`);
  }
}

/**
 * `ResizeLongestSide.get_preprocess_shape`: the size of an `H x W` image resized so its longest side is `longest`:
 * `scale = longest / max(H, W)`, each side `int(side * scale + 0.5)` (double arithmetic, as Python's floats).
 */
export function preprocessShape(height: number, width: number, longest = SAM_IMAGE_SIZE): SamSize {
  checkSize({ height, width }, "image size");
  const scale = (longest * 1.0) / Math.max(height, width);
  return { height: Math.trunc(height * scale + 0.5), width: Math.trunc(width * scale + 0.5) };
}

/**
 * `ResizeLongestSide.apply_image`: `img` resized to `preprocessShape(H, W, longest)` with Pillow's antialiased
 * BILINEAR resampler, bit-exact (see pillow-resize.ts).
 */
export function resizeLongestSide(img: RgbImage, longest = SAM_IMAGE_SIZE): RgbImage {
  const { height, width } = samInputShape(img, longest);
  return pillowResizeBilinear(img, width, height);
}

/** The resized size `preprocessShape` gives `img`, or an error when the image is too elongated to have one. */
export function samInputShape(img: { height: number; width: number }, longest = SAM_IMAGE_SIZE): SamSize {
  const size = preprocessShape(img.height, img.width, longest);
  if (size.height < 1 || size.width < 1) {
    throw new SegkitError(`image ${img.width}x${img.height} is too elongated: its short side rounds to 0 pixels`, {
      hint: `crop it so that the short side is at least max(H, W) / ${2 * longest}`,
    });
  }
  return size;
}

/**
 * `Sam.preprocess` on a resized image: `(pixel - mean) / std` in float32 (as torch computes it), then zero padding
 * bottom-right to `size x size` (zeros after normalising, so padding is 0, not black). Returns `[1, 3, size, size]`
 * float32, CHW: `out[(c * size + y) * size + x]`.
 */
export function normalizeAndPad(img: RgbImage, size = SAM_IMAGE_SIZE): Float32Array {
  if (img.width > size || img.height > size) {
    throw new SegkitError(`image ${img.width}x${img.height} is larger than the ${size}x${size} encoder input`, {
      hint: "resize it with resizeLongestSide first",
    });
  }
  const out = new Float32Array(3 * size * size);
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const mean = Math.fround(SAM_PIXEL_MEAN[c] as number);
    const std = Math.fround(SAM_PIXEL_STD[c] as number);
    // each float32 op is correctly rounded when done in double and rounded once (float32 has < half the bits)
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = Math.fround(v - mean) / std;
  }
  const d = img.data;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const i = (y * img.width + x) * 3;
      const o = y * size + x;
      out[o] = lut[d[i] as number] as number;
      out[size * size + o] = lut[256 + (d[i + 1] as number)] as number;
      out[2 * size * size + o] = lut[512 + (d[i + 2] as number)] as number;
    }
  }
  return out;
}

/** SAM 2's normalisation: torchvision's ImageNet mean and std, on 0..1 values. */
export const SAM2_PIXEL_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const SAM2_PIXEL_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/**
 * `SAM2Transforms` on an image (what `SAM2ImagePredictor.set_image` feeds the encoder): RGB to 0..1 float32
 * (`ToTensor`), stretched to `size` x `size` without keeping the aspect ratio by torch's antialiased bilinear
 * (`Resize`), then `(x - mean) / std` (`Normalize`). Returns `[1, 3, size, size]` float32, CHW.
 */
export function preprocessStretched(img: RgbImage, size = SAM_IMAGE_SIZE): Float32Array {
  const unit = Float32Array.from(img.data, (v) => v / 255);
  const resized = resizeBilinearAntialias(unit, img.width, img.height, 3, size, size);
  const area = size * size;
  const out = new Float32Array(3 * area);
  for (let c = 0; c < 3; c++) {
    const mean = Math.fround(SAM2_PIXEL_MEAN[c] as number);
    const std = Math.fround(SAM2_PIXEL_STD[c] as number);
    for (let p = 0; p < area; p++) out[c * area + p] = Math.fround((resized[p * 3 + c] as number) - mean) / std;
  }
  return out;
}

/** The encoder input of one image and the two sizes every later step needs. */
export interface SamPreprocessedImage {
  /** `[1, 3, 1024, 1024]` float32, normalised, zero-padded bottom-right. */
  data: Float32Array;
  dims: [1, 3, number, number];
  /** `(H, W)` of the image as given. */
  originalSize: SamSize;
  /** `(H, W)` of the resized image inside the padded square. */
  inputSize: SamSize;
}

/** `SamPredictor.set_image` up to the encoder: resize the longest side to 1024, normalise, pad. */
export function preprocessImage(img: RgbImage, longest = SAM_IMAGE_SIZE): SamPreprocessedImage {
  const resized = resizeLongestSide(img, longest);
  return {
    data: normalizeAndPad(resized, longest),
    dims: [1, 3, longest, longest],
    originalSize: { height: img.height, width: img.width },
    inputSize: { height: resized.height, width: resized.width },
  };
}

/**
 * `ResizeLongestSide.apply_coords`: `(x, y)` pairs in the original frame to the input frame,
 * `x * (newW / oldW)`, `y * (newH / oldH)` in doubles (the factor first, as the reference). Returns a new array.
 */
export function applyCoords(coords: ArrayLike<number>, originalSize: SamSize, longest = SAM_IMAGE_SIZE): Float64Array {
  if (coords.length % 2 !== 0) throw new SegkitError(`coordinates come in (x, y) pairs, got ${coords.length} values`);
  const { height, width } = preprocessShape(originalSize.height, originalSize.width, longest);
  const fx = width / originalSize.width;
  const fy = height / originalSize.height;
  const out = new Float64Array(coords.length);
  for (let i = 0; i < coords.length; i += 2) {
    out[i] = (coords[i] as number) * fx;
    out[i + 1] = (coords[i + 1] as number) * fy;
  }
  return out;
}

/** `ResizeLongestSide.apply_boxes`: `x1, y1, x2, y2` boxes (flat, 4 values each) to the input frame. */
export function applyBoxes(boxes: ArrayLike<number>, originalSize: SamSize, longest = SAM_IMAGE_SIZE): Float64Array {
  if (boxes.length % 4 !== 0) throw new SegkitError(`boxes are x1,y1,x2,y2 quadruples, got ${boxes.length} values`);
  return applyCoords(boxes, originalSize, longest);
}

/** A click in original-image pixels: label 1 = foreground (include), 0 = background (exclude). */
export interface SamPoint {
  x: number;
  y: number;
  label: 0 | 1;
}

/** `x1, y1, x2, y2` in original-image pixels. */
export type SamBox = readonly [number, number, number, number];

/** One prompt for the official decoder: any number of points, at most one box, optionally a previous mask. */
export interface SamPrompt {
  points?: readonly SamPoint[];
  box?: SamBox;
  /** A previous low-res logit plane, `[256 * 256]` float32 (one channel of `low_res_masks`, not thresholded). */
  maskInput?: Float32Array;
}

/** One named float32 tensor, as `OnnxSession.run` takes it (onnx/session.ts `Float32Input`, model.ts `SamTensor`). */
interface Tensor {
  data: Float32Array;
  dims: number[];
}

/**
 * The official decoder's inputs for one prompt, packed as `SamOnnxModel` expects them and as the reference notebook
 * does it: the points, then either a padding point `(0, 0)` with label -1 (no box) or the box as two corner points
 * with labels 2 and 3; coordinates through `applyCoords`, then float32. Tensors:
 * `point_coords [1, N, 2]`, `point_labels [1, N]`, `mask_input [1, 1, 256, 256]` (zeros without a mask),
 * `has_mask_input [1]` (1 or 0), `orig_im_size [2]` = `(H, W)`; all float32 (the export's dtypes).
 */
export function decoderInputs(
  prompt: SamPrompt,
  originalSize: SamSize,
  longest = SAM_IMAGE_SIZE,
): Record<"point_coords" | "point_labels" | "mask_input" | "has_mask_input" | "orig_im_size", Tensor> {
  checkSize(originalSize, "original image size");
  const coords: number[] = [];
  const labels: number[] = [];
  (prompt.points ?? []).forEach((p, i) => {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) {
      throw new SegkitError(`point ${i + 1}: coordinates must be finite numbers, got (${p.x}, ${p.y})`);
    }
    if (p.label !== 0 && p.label !== 1) {
      throw new SegkitError(`point ${i + 1}: label must be 1 (foreground) or 0 (background), got ${p.label}`);
    }
    coords.push(p.x, p.y);
    labels.push(p.label);
  });
  if (prompt.box) {
    const b = prompt.box;
    if (b.length !== 4 || !b.every(Number.isFinite)) {
      throw new SegkitError(`box must be 4 finite numbers x1,y1,x2,y2, got ${b.join(",")}`);
    }
    coords.push(b[0], b[1], b[2], b[3]);
    labels.push(2, 3);
  } else {
    coords.push(0, 0);
    labels.push(-1);
  }
  const n = labels.length;
  const size = SAM_LOW_RES_SIZE;
  let mask: Float32Array = new Float32Array(size * size);
  if (prompt.maskInput) {
    if (prompt.maskInput.length !== size * size) {
      throw new SegkitError(
        `mask input must be one ${size}x${size} low-res logit plane (${size * size} values), got ${prompt.maskInput.length}`,
      );
    }
    mask = prompt.maskInput;
  }
  return {
    point_coords: { data: Float32Array.from(applyCoords(coords, originalSize, longest)), dims: [1, n, 2] },
    point_labels: { data: Float32Array.from(labels), dims: [1, n] },
    mask_input: { data: mask, dims: [1, 1, size, size] },
    has_mask_input: { data: Float32Array.of(prompt.maskInput ? 1 : 0), dims: [1] },
    orig_im_size: { data: Float32Array.of(originalSize.height, originalSize.width), dims: [2] },
  };
}

/**
 * Channels of the official decoder's 4 outputs that `SamPredictor.predict` returns (the mask decoder's slice):
 * `multimask` -> `[1, 2, 3]` (three candidates, in decoder order), otherwise `[0]` (the single-mask answer).
 */
export function selectMaskChannels(multimask: boolean): number[] {
  return multimask ? [1, 2, 3] : [0];
}

/**
 * `SamOnnxModel.select_masks` (the `return_single_mask` export): the channel with the largest
 * `iou + (numPoints - 2.5) * [1000, 0, 0, 0]`, so channel 0 when the prompt has 3 or more points (padding point and
 * box corners count) and the best-scoring multimask candidate otherwise (first on ties, as `torch.argmax`).
 */
export function selectSingleMask(iouPredictions: ArrayLike<number>, numPoints: number): number {
  let best = 0;
  let bestScore = -Infinity;
  for (let i = 0; i < iouPredictions.length; i++) {
    const s = (iouPredictions[i] as number) + (i === 0 ? (numPoints - 2.5) * 1000 : 0);
    if (s > bestScore) {
      best = i;
      bestScore = s;
    }
  }
  return best;
}

/**
 * `calculate_stability_score` of one logit plane (any length): the count of logits > threshold + offset over the
 * count of logits > threshold - offset. NaN when no logit exceeds threshold - offset (0 / 0, as the reference).
 */
export function stabilityScore(logits: ArrayLike<number>, threshold = 0, offset = 1): number {
  let inter = 0;
  let union = 0;
  const hi = threshold + offset;
  const lo = threshold - offset;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i] as number;
    if (v > hi) inter++;
    if (v > lo) union++;
  }
  return inter / union;
}

/** Logits to a boolean mask as `masks > mask_threshold` (strictly greater; 0.0 in SAM): 1 inside, 0 outside. */
export function thresholdMasks(logits: ArrayLike<number>, threshold = 0): Uint8Array {
  const out = new Uint8Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = (logits[i] as number) > threshold ? 1 : 0;
  return out;
}
