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
  /** A dotted outline (suggestions not yet reviewed). */
  readonly dotted?: boolean;
}

export function hexColor(hex: string): [number, number, number] {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  return m
    ? [Number.parseInt(m[1] ?? "0", 16), Number.parseInt(m[2] ?? "0", 16), Number.parseInt(m[3] ?? "0", 16)]
    : [255, 0, 255];
}

/** A region of image pixels, `x0..x1` and `y0..y1` exclusive. */
export interface Rect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/**
 * An image-resolution RGBA layer of masks, in order (the last on top), each filled and outlined (a mask pixel with
 * a 4-neighbour outside the mask, or on the frame, is outline). `paint` redraws the whole layer or one region of it
 * (a brush stroke touches only its neighbourhood).
 */
export class MaskLayer {
  readonly canvas: HTMLCanvasElement;
  readonly #ctx: CanvasRenderingContext2D;
  readonly #pixels: ImageData;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.canvas = document.createElement("canvas");
    this.canvas.width = width;
    this.canvas.height = height;
    const ctx = this.canvas.getContext("2d");
    if (!ctx) throw new Error("no 2D canvas");
    this.#ctx = ctx;
    this.#pixels = new ImageData(width, height);
  }

  paint(masks: readonly LayerMask[], rect: Rect = { x0: 0, y0: 0, x1: this.width, y1: this.height }): void {
    const { width, height } = this;
    const x0 = Math.max(0, Math.floor(rect.x0));
    const y0 = Math.max(0, Math.floor(rect.y0));
    const x1 = Math.min(width, Math.ceil(rect.x1));
    const y1 = Math.min(height, Math.ceil(rect.y1));
    if (x1 <= x0 || y1 <= y0) return;
    const px = this.#pixels.data;
    for (let y = y0; y < y1; y++) px.fill(0, 4 * (y * width + x0), 4 * (y * width + x1));
    for (const { mask, color, fill, outline, dotted } of masks) {
      const edge = outline ?? color;
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
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
          if (border && dotted && (x + y) & 2) continue;
          const c = border ? edge : color;
          px[4 * i] = c[0];
          px[4 * i + 1] = c[1];
          px[4 * i + 2] = c[2];
          px[4 * i + 3] = border ? 255 : fill;
        }
      }
    }
    this.#ctx.putImageData(this.#pixels, 0, 0, x0, y0, x1 - x0, y1 - y0);
  }
}

/** Clears the canvas and draws the image and layers with `view` (CSS pixels; `dpr` device pixels per CSS pixel). */
export function drawScene(
  ctx: CanvasRenderingContext2D,
  view: View,
  dpr: number,
  image: CanvasImageSource | null,
  layers: readonly (CanvasImageSource | null)[],
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
