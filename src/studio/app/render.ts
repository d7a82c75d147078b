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
  /** The mask is being edited (a stroke): not measured, since it will still change. */
  readonly changing?: boolean;
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

const union = (a: Rect | null, b: Rect | null): Rect | null =>
  !a
    ? b
    : !b
      ? a
      : { x0: Math.min(a.x0, b.x0), y0: Math.min(a.y0, b.y0), x1: Math.max(a.x1, b.x1), y1: Math.max(a.y1, b.y1) };

const boundsCache = new WeakMap<Uint8Array, Rect | null>();

/** The bounding box of a mask's pixels (null when empty), cached: a mask given here must not change afterwards. */
export function maskBounds(mask: Uint8Array, width: number): Rect | null {
  if (boundsCache.has(mask)) return boundsCache.get(mask) ?? null;
  let r: Rect | null = null;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    const x = i % width;
    const y = (i - x) / width;
    if (!r) r = { x0: x, y0: y, x1: x + 1, y1: y + 1 };
    else {
      r.x0 = Math.min(r.x0, x);
      r.x1 = Math.max(r.x1, x + 1);
      r.y1 = y + 1;
    }
  }
  boundsCache.set(mask, r);
  return r;
}

/**
 * An image-resolution RGBA layer of masks, in order (the last on top), each filled and outlined (a mask pixel with
 * a 4-neighbour outside the mask, or on the frame, is outline). `paint` redraws the masks' boxes and what was
 * drawn before, or only `rect` (a brush stroke touches only its neighbourhood), so the cost follows the masks'
 * extent, not the image's.
 */
export class MaskLayer {
  readonly canvas: HTMLCanvasElement;
  readonly #ctx: CanvasRenderingContext2D;
  readonly #pixels: ImageData;
  /** Where the layer may hold pixels. */
  #painted: Rect | null = null;

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

  /** Repaints; a mask marked `changing` (a stroke in progress) is painted over the whole region, never measured. */
  paint(masks: readonly LayerMask[], rect?: Rect): void {
    const { width, height } = this;
    const full = { x0: 0, y0: 0, x1: width, y1: height };
    const boxes = masks.map((m) => (m.changing ? full : maskBounds(m.mask, width)));
    const wanted = rect ?? union(this.#painted, boxes.reduce<Rect | null>(union, null));
    if (!wanted) return;
    const x0 = Math.max(0, Math.floor(wanted.x0));
    const y0 = Math.max(0, Math.floor(wanted.y0));
    const x1 = Math.min(width, Math.ceil(wanted.x1));
    const y1 = Math.min(height, Math.ceil(wanted.y1));
    if (x1 <= x0 || y1 <= y0) return;
    const px = this.#pixels.data;
    for (let y = y0; y < y1; y++) px.fill(0, 4 * (y * width + x0), 4 * (y * width + x1));
    for (const [k, { mask, color, fill, outline, dotted }] of masks.entries()) {
      const box = boxes[k];
      if (!box) continue;
      const edge = outline ?? color;
      for (let y = Math.max(y0, box.y0); y < Math.min(y1, box.y1); y++) {
        for (let x = Math.max(x0, box.x0); x < Math.min(x1, box.x1); x++) {
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
    this.#painted = rect ? union(this.#painted, { x0, y0, x1, y1 }) : boxes.reduce<Rect | null>(union, null);
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
