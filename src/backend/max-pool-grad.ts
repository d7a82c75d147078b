/**
 * MaxPoolGrad for the wasm backend. The stock kernel (tfjs 4.22) starts its running max at FLT_MIN (+1e-38), so a
 * window whose values are all <= 0 sends its gradient to the window's first element instead of its max. This one follows the cpu backend: the gradient goes to the
 * first maximum of each window in row-major order; padding positions are never chosen.
 *   input [N,H,W,C] float32, dy [N,Ho,Wo,C] -> dx [N,H,W,C]
 * Speed: a JS loop over the wasm heap (about N*Ho*Wo*C*kh*kw reads, ~10 ns each); a C++ kernel would be ~10x faster.
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

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
  const out = b.makeOutput(input.shape, "float32");
  // views after makeOutput: an allocation may grow (and move) the wasm heap
  const x = b.typedArrayFromHeap(input);
  const g = b.typedArrayFromHeap(dy);
  const dx = b.typedArrayFromHeap(out);
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

export const maxPoolGradKernel: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: "wasm",
  kernelFunc: maxPoolGrad,
};
