/**
 * MaxPoolGrad for the wasm backend. The stock kernel (tfjs 4.22) starts its running max at FLT_MIN (+1e-38), so a
 * window whose values are all <= 0 sends its gradient to the window's first element instead of its max. This one follows the cpu backend: the gradient goes to the
 * first maximum of each window in row-major order; padding positions are never chosen.
 *   input [N,H,W,C] float32, dy [N,Ho,Wo,C] -> dx [N,H,W,C]
 * Speed: segkit's native kernel (native.ts) where it is enabled, ~3 ms for the U-Net's three pools (batch 8 at
 * 128x128) instead of ~26; else a JS loop over the wasm heap (about N*Ho*Wo*C*kh*kw reads, ~10 ns each); 2x2 windows
 * at stride 2 without padding before (the U-Net's pooling) take a loop of their own (`tiledGrad2x2`) at ~1-2 ns per
 * input element.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { activeNativeKernels, nativeOutputs } from "./native.js";

type KernelArgs = Parameters<tf.KernelFunc>[0];

function maxPoolGrad({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { dy, input } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolGradAttrs;
  const b = backend as BackendWasm;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { effectiveFilterHeight: fh, effectiveFilterWidth: fw, dilationHeight: dh, dilationWidth: dw } = info;
  const native = activeNativeKernels();
  if (native) {
    const { padInfo } = info;
    const geometry = [batchSize, inHeight, inWidth, c, outHeight, outWidth, c, fh, fw];
    geometry.push(strideHeight, strideWidth, padInfo.top, padInfo.left);
    return nativeOutputs(b, [input, dy], [input.shape], ([x, g, dx]) =>
      native.maxPoolGrad(x as Float32Array, g as Float32Array, dx as Float32Array, geometry),
    )[0] as tf.TensorInfo;
  }
  const out = b.makeOutput(input.shape, "float32");
  // views after makeOutput: an allocation may grow (and move) the wasm heap
  const x = b.typedArrayFromHeap(input);
  const g = b.typedArrayFromHeap(dy);
  const dx = b.typedArrayFromHeap(out);
  const tiled2x2 =
    fh === 2 &&
    fw === 2 &&
    strideHeight === 2 &&
    strideWidth === 2 &&
    info.padInfo.top === 0 &&
    info.padInfo.left === 0;
  if (tiled2x2 && 2 * outHeight <= inHeight && 2 * outWidth <= inWidth) {
    tiledGrad2x2(x, g, dx, info);
    return out;
  }
  dx.fill(0);
  const best = new Float32Array(c);
  const bestAt = new Int32Array(c);
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = oy * strideHeight - info.padInfo.top;
      for (let ox = 0; ox < outWidth; ox++) {
        const x0 = ox * strideWidth - info.padInfo.left;
        best.fill(Number.NEGATIVE_INFINITY);
        bestAt.fill(-1);
        for (let wy = 0; wy < fh; wy += dh) {
          const y = y0 + wy;
          if (y < 0 || y >= inHeight) continue;
          for (let wx = 0; wx < fw; wx += dw) {
            const xx = x0 + wx;
            if (xx < 0 || xx >= inWidth) continue;
            const base = ((n * inHeight + y) * inWidth + xx) * c;
            for (let ch = 0; ch < c; ch++) {
              const v = x[base + ch] as number;
              if (v > (best[ch] as number)) {
                best[ch] = v;
                bestAt[ch] = base + ch;
              }
            }
          }
        }
        const gBase = ((n * outHeight + oy) * outWidth + ox) * c;
        for (let ch = 0; ch < c; ch++) {
          const at = bestAt[ch] as number;
          if (at >= 0) dx[at] = (dx[at] as number) + (g[gBase + ch] as number);
        }
      }
    }
  }
  return out;
}

type Floats = ReturnType<BackendWasm["typedArrayFromHeap"]>;

/**
 * MaxPoolGrad of 2x2 windows at stride 2 that start at (0, 0) and lie inside the input: each input element is in at
 * most one window, so each window writes its four gradients (dy at its first maximum in row-major order, 0 at the
 * others: the general loop's rule) and only rows or columns no window covers need zeros.
 */
function tiledGrad2x2(x: Floats, g: Floats, dx: Floats, info: tf.backend_util.Conv2DInfo): void {
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth } = info;
  if (2 * outHeight < inHeight || 2 * outWidth < inWidth) dx.fill(0);
  const rowStride = inWidth * c;
  let gi = 0;
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        const p0 = ((n * inHeight + 2 * oy) * inWidth + 2 * ox) * c;
        for (let ch = 0; ch < c; ch++, gi++) {
          const a = p0 + ch;
          const bb = a + c;
          const cc = a + rowStride;
          const d = cc + c;
          let m = Number.NEGATIVE_INFINITY;
          let k = -1;
          const va = x[a] as number;
          const vb = x[bb] as number;
          const vc = x[cc] as number;
          const vd = x[d] as number;
          if (va > m) {
            m = va;
            k = 0;
          }
          if (vb > m) {
            m = vb;
            k = 1;
          }
          if (vc > m) {
            m = vc;
            k = 2;
          }
          if (vd > m) k = 3;
          const v = g[gi] as number;
          dx[a] = k === 0 ? v : 0;
          dx[bb] = k === 1 ? v : 0;
          dx[cc] = k === 2 ? v : 0;
          dx[d] = k === 3 ? v : 0;
        }
      }
    }
  }
}

export const maxPoolGradKernel: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: "wasm",
  kernelFunc: maxPoolGrad,
};
