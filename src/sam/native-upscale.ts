/**
 * `upscaleAndThreshold` of a click by the native addon (native/segkit.cc `upscaleThreshold`, OpenMP threads): the same
 * taps, products and sums in doubles, rounded once to float32, so the same masks and stability counts; like the
 * JavaScript path it computes only the outputs in doubt (those whose low-res taps are not all beyond the threshold
 * and the stability band).
 */
import { nativeKernels } from "../backend/addon.js";
import { type SamMaskFrame, type ThresholdedMasks, upscaleTaps } from "./postprocess.js";
import type { SamSize } from "./transforms.js";

export type ClickUpscaler = (lowRes: Float32Array, inputSize: SamMaskFrame, originalSize: SamSize) => ThresholdedMasks;

/**
 * `upscaleAndThreshold(lowRes, inputSize, originalSize)` (threshold 0, offset 1) natively on `threads` threads
 * (default: OpenMP's, one per core); undefined without the addon.
 */
export function nativeUpscaler(threads = 0): ClickUpscaler | undefined {
  const k = nativeKernels();
  if (!k) return undefined;
  const levels = Float64Array.of(0, -1, 1); // threshold, threshold - offset, threshold + offset
  return (lowRes, inputSize, originalSize) => {
    const { planes, tx, ty } = upscaleTaps(lowRes, inputSize, originalSize);
    const size = originalSize.height * originalSize.width;
    // one array per plane (as upscaleAndThreshold): one of all planes' size, past glibc's largest reused heap block
    // (32 MB) in a large image, took fresh, slow-to-fault pages on every click
    const masks = Array.from({ length: planes }, () => new Uint8Array(size));
    const counts = new Float64Array(2 * planes);
    k.upscaleThreshold(lowRes, tx.idx, tx.w, ty.idx, ty.w, levels, masks, counts, threads);
    const intersections = [...counts.subarray(0, planes)];
    const unions = [...counts.subarray(planes)];
    return {
      masks,
      stability: Float32Array.from(intersections, (n, c) => n / (unions[c] as number)),
      intersections,
      unions,
    };
  };
}
