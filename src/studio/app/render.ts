/**
 * Drawing: instance masks are painted into an image-resolution RGBA layer (fill plus a one-pixel outline, later
 * instances over earlier ones), and the layer, the image and the proposal are drawn with the view transform. Image
 * smoothing is on only when the image is shrunk, so pixels and mask edges stay sharp when zoomed in (400% and up).
 */
import type { View } from "./view.js";

export interface LayerMask {
  readonly mask: Uint8Array;
  readonly color: readonly [number, number, number];
  /** Fill alpha 0-255; the outline is opaque. */
  readonly fill: number;
  /** Outline colour, when not the fill colour (the selected instance, the proposal). */
  readonly outline?: readonly [number, number, number];
}

export function hexColor(hex: string): [number, number, number] {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  return m
    ? [Number.parseInt(m[1] ?? "0", 16), Number.parseInt(m[2] ?? "0", 16), Number.parseInt(m[3] ?? "0", 16)]
    : [255, 0, 255];
}

/** The RGBA pixels of `masks` over a transparent `width` x `height` frame, in order (the last on top). */
export function paintLayer(masks: readonly LayerMask[], width: number, height: number): ImageData {
  const out = new ImageData(width, height);
  const px = out.data;
  for (const { mask, color, fill, outline } of masks) {
    const edge = outline ?? color;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = y * width + x;
        if (!mask[i]) continue;
        const border =
          x === 0 ||
          y === 0 ||
          x === width - 1 ||
          y === height - 1 ||
          !mask[i - 1] ||
          !mask[i + 1] ||
          !mask[i - width] ||
          !mask[i + width];
        const c = border ? edge : color;
        px[4 * i] = c[0];
        px[4 * i + 1] = c[1];
        px[4 * i + 2] = c[2];
        px[4 * i + 3] = border ? 255 : fill;
      }
    }
  }
  return out;
}

/** A canvas holding `data`, to be drawn with the view transform. */
export function layerCanvas(data: ImageData): HTMLCanvasElement {
  const c = document.createElement("canvas");
  c.width = data.width;
  c.height = data.height;
  c.getContext("2d")?.putImageData(data, 0, 0);
  return c;
}

/** Clears the canvas and draws the image and layers with `view` (CSS pixels; `dpr` device pixels per CSS pixel). */
export function drawScene(
  ctx: CanvasRenderingContext2D,
  view: View,
  dpr: number,
  image: CanvasImageSource | null,
  layers: readonly (HTMLCanvasElement | null)[],
): void {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
  ctx.setTransform(view.scale * dpr, 0, 0, view.scale * dpr, view.ox * dpr, view.oy * dpr);
  ctx.imageSmoothingEnabled = view.scale * dpr < 1;
  if (image) ctx.drawImage(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  for (const layer of layers) if (layer) ctx.drawImage(layer, 0, 0);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
}
