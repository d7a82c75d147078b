/**
 * Convolution gradient kernels for the wasm backend, built from its fast kernels (XNNPACK conv2d and depthwise
 * conv2d, C++ transpose / pad / reverse), except the depthwise filter gradient (a JS loop). Layout NHWC only,
 * dilation 1 (tfjs's conv gradients assert it).
 *   x  [N,H,W,Ci] float32    filter [kh,kw,Ci,Co] (depthwise: [kh,kw,C,m])    dy [N,Ho,Wo,Co] (depthwise: C*m)
 */
import * as tf from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import type { NativeKernels } from "./addon.js";
import { activeNativeKernels, nativeOutputs } from "./native.js";
import { type Info, scoped, type WasmOps } from "./wasm-ops.js";

type Conv2DInfo = tf.backend_util.Conv2DInfo;

export interface ConvAttrs {
  strides: number | [number, number];
  pad: "same" | "valid" | number | tf.backend_util.ExplicitPadding;
  dataFormat?: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
  dilations?: number | [number, number];
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** The geometry of a convolution; throws for what these kernels do not take (NCHW, dilation other than 1). */
export function convInfo(xShape: number[], filterShape: number[], attrs: ConvAttrs, depthwise: boolean): Conv2DInfo {
  if (attrs.dataFormat === "NCHW") throw new Error("segkit wasm conv gradients support NHWC only");
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    depthwise,
  );
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) {
    throw new Error("segkit wasm conv gradients support dilation 1 only");
  }
  return info;
}

/**
 * dW [kh,kw,Ci,Co] as one XNNPACK convolution, with the batch as the channels and dy as the filter:
 *   x [Ci,H,W,N] (*) dy [Ho,Wo,N,Co], dilation = stride, the forward pads  ->  [Ci, kh(+r), kw(+r'), Co]
 * (r: rows a `valid` stride leaves unread, cropped), since dW[i,j,ci,co] = sum_{n,oy,ox} xpad[n, oy*s+i, ox*s+j, ci]
 * * dy[n,oy,ox,co]. No im2col buffer; about 20 GFLOP/s at batch 8 (the micro-kernel's reduction runs over N).
 */
function conv2DBackpropFilter({ inputs, backend, attrs }: KernelArgs): Info {
  const { x, dy } = inputs as { x: Info; dy: Info };
  const a = attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] };
  const info = convInfo(x.shape, a.filterShape, a, false);
  const native = activeNativeKernels();
  if (native) return nativeBackpropFilter(native, x, dy, info, backend as BackendWasm);
  const [kh, kw, ci, co] = a.filterShape;
  const { top, bottom, left, right } = info.padInfo;
  return scoped(backend as BackendWasm, (ops) => {
    const xT = ops.transpose(x, [3, 1, 2, 0]);
    const dyT = ops.transpose(dy, [1, 2, 0, 3]);
    const pads: [number, number][] = [
      [top, bottom],
      [left, right],
    ];
    let dW = ops.conv2d(xT, dyT, pads, [info.strideHeight, info.strideWidth]);
    if (dW.shape[1] !== kh || dW.shape[2] !== kw) dW = ops.slice(dW, [0, 0, 0, 0], [ci, kh, kw, co]);
    return ops.transpose(dW, [1, 2, 0, 3]);
  });
}

/**
 * dW by segkit's native kernel (native/segkit.cc), straight on the wasm heap: register tiles of 8 (or 4) input x 32
 * output channels summed over each output row's pixels, tap by tap: 34 ms for the U-Net's 15 filter gradients (batch
 * 8 at 128x128, 2 threads, 250-320 GFLOP/s on the large layers) against 171 for the best of the kernel above and
 * onnxruntime per layer (scratch measurement, 2026-12-07).
 */
function nativeBackpropFilter(k: NativeKernels, x: Info, dy: Info, info: Conv2DInfo, b: BackendWasm): Info {
  const shape = [info.filterHeight, info.filterWidth, info.inChannels, info.outChannels];
  return nativeOutputs(b, [x, dy], [shape], ([xv, g, dW]) =>
    k.conv2dBackpropFilter(xv as Float32Array, g as Float32Array, dW as Float32Array, convGeometry(info)),
  )[0] as Info;
}

/** A convolution's geometry as the native kernels take it (see `NativeKernels.conv2dBackpropFilter`). */
export function convGeometry(info: Conv2DInfo): number[] {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  return [
    ...[batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels],
    ...[info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left],
  ];
}

/**
 * The "full" correlation geometry of an input gradient: dy with stride-1 zeros inserted ([N, Ho*sh, Wo*sw, C]) and
 * the explicit pads that make a stride-1 convolution with the flipped filter produce [N,H,W,.]; negative pads
 * (possible on the bottom/right after zero insertion) are cropped instead.
 */
function fullCorrelationInput(ops: WasmOps, dy: Info, info: Conv2DInfo): { dyd: Info; pads: [number, number][] } {
  const { batchSize: n, outHeight: ho, outWidth: wo, strideHeight: sh, strideWidth: sw } = info;
  const c = dy.shape[3] as number;
  let dyd = dy;
  if (sh > 1 || sw > 1) {
    const spread = ops.reshape(dy, [n, ho, 1, wo, 1, c]);
    const padded = ops.pad(spread, [
      [0, 0],
      [0, 0],
      [0, sh - 1],
      [0, 0],
      [0, sw - 1],
      [0, 0],
    ]);
    dyd = ops.reshape(padded, [n, ho * sh, wo * sw, c]);
  }
  const top = info.filterHeight - 1 - info.padInfo.top;
  const left = info.filterWidth - 1 - info.padInfo.left;
  const bottom = info.inHeight - ho * sh - top + info.filterHeight - 1;
  const right = info.inWidth - wo * sw - left + info.filterWidth - 1;
  if (bottom < 0 || right < 0) {
    dyd = ops.slice(dyd, [0, 0, 0, 0], [n, ho * sh + Math.min(0, bottom), wo * sw + Math.min(0, right), c]);
  }
  return {
    dyd,
    pads: [
      [top, Math.max(0, bottom)],
      [left, Math.max(0, right)],
    ],
  };
}

/** dx [N,H,W,Ci] = conv2d(zero-inserted dy, filter flipped in space with Ci/Co swapped), stride 1: XNNPACK conv. */
function conv2DBackpropInput({ inputs, backend, attrs }: KernelArgs): Info {
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const a = attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] };
  const info = convInfo(a.inputShape, filter.shape, a, false);
  const native = activeNativeKernels();
  const stride1 = info.strideHeight === 1 && info.strideWidth === 1;
  if (native && stride1 && info.padInfo.top < info.filterHeight && info.padInfo.left < info.filterWidth) {
    return nativeOutputs(backend as BackendWasm, [dy, filter], [a.inputShape], ([g, w, dx]) =>
      native.conv2dBackpropInput(g as Float32Array, w as Float32Array, dx as Float32Array, convGeometry(info)),
    )[0] as Info;
  }
  return scoped(backend as BackendWasm, (ops) => {
    const flipped = ops.transpose(ops.reverse(filter, [0, 1]), [0, 1, 3, 2]);
    const { dyd, pads } = fullCorrelationInput(ops, dy, info);
    return ops.conv2d(dyd, flipped, pads);
  });
}

/**
 * dW [kh,kw,C,m] = sum over n, oy, ox of xpad[n, oy*s+i, ox*s+j, c] * dy[n, oy, ox, c*m+k]: a JS loop over the wasm
 * heap (about 1 ns per multiply-add; composing wasm kernels is slower here, as their strided slice costs ~100 ns per
 * element at stride 2).
 */
function depthwiseBackpropFilter({ inputs, backend, attrs }: KernelArgs): Info {
  const { x, dy } = inputs as { x: Info; dy: Info };
  const a = attrs as unknown as ConvAttrs & { filterShape: [number, number, number, number] };
  const info = convInfo(x.shape, a.filterShape, a, true);
  const { batchSize, inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth } = info;
  const [kh, kw, c, m] = a.filterShape;
  const b = backend as BackendWasm;
  const out = b.makeOutput(a.filterShape, "float32");
  // views after makeOutput: an allocation may grow (and move) the wasm heap
  const xv = b.typedArrayFromHeap(x);
  const g = b.typedArrayFromHeap(dy);
  const dW = new Float64Array(kh * kw * c * m);
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        const gBase = ((n * outHeight + oy) * outWidth + ox) * c * m;
        for (let i = 0; i < kh; i++) {
          const y = oy * strideHeight + i - info.padInfo.top;
          if (y < 0 || y >= inHeight) continue;
          for (let j = 0; j < kw; j++) {
            const xx = ox * strideWidth + j - info.padInfo.left;
            if (xx < 0 || xx >= inWidth) continue;
            const xBase = ((n * inHeight + y) * inWidth + xx) * c;
            const wBase = (i * kw + j) * c * m;
            for (let ch = 0; ch < c; ch++) {
              const v = xv[xBase + ch] as number;
              for (let k = 0; k < m; k++) {
                const at = wBase + ch * m + k;
                dW[at] = (dW[at] as number) + v * (g[gBase + ch * m + k] as number);
              }
            }
          }
        }
      }
    }
  }
  b.typedArrayFromHeap(out).set(dW);
  return out;
}

/** dx [N,H,W,C] = depthwise conv of the zero-inserted dy with the flipped filter, summed over the multiplier. */
function depthwiseBackpropInput({ inputs, backend, attrs }: KernelArgs): Info {
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const a = attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] };
  const info = convInfo(a.inputShape, filter.shape, a, true);
  const [kh, kw, c, m] = filter.shape as [number, number, number, number];
  return scoped(backend as BackendWasm, (ops) => {
    const flipped = ops.reshape(ops.reverse(filter, [0, 1]), [kh, kw, c * m, 1]);
    const { dyd, pads } = fullCorrelationInput(ops, dy, info);
    const dx = ops.depthwiseConv2d(dyd, flipped, pads);
    if (m === 1) return ops.reshape(dx, a.inputShape);
    const [n, h, w] = a.inputShape;
    return ops.reshape(ops.sum(ops.reshape(dx, [n * h * w * c, m]), [1]), a.inputShape);
  });
}

export const convGradKernels: tf.KernelConfig[] = [
  { kernelName: tf.Conv2DBackpropFilter, backendName: "wasm", kernelFunc: conv2DBackpropFilter },
  { kernelName: tf.Conv2DBackpropInput, backendName: "wasm", kernelFunc: conv2DBackpropInput },
  { kernelName: tf.DepthwiseConv2dNativeBackpropFilter, backendName: "wasm", kernelFunc: depthwiseBackpropFilter },
  { kernelName: tf.DepthwiseConv2dNativeBackpropInput, backendName: "wasm", kernelFunc: depthwiseBackpropInput },
];
