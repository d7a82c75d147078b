/**
 * The canvas view: image pixel (x, y) is drawn at CSS pixel (x * scale + ox, y * scale + oy) of the canvas. The
 * same transform draws the image, the masks and the prompts, and maps the pointer back to image pixels.
 */
export interface View {
  readonly scale: number;
  readonly ox: number;
  readonly oy: number;
}

export const MIN_SCALE = 0.02;
export const MAX_SCALE = 32;

/** Largest zoom the fit itself chooses (a small image is enlarged to fill the view, up to this). */
export const MAX_FIT_SCALE = 4;

/** The whole image centred in a `viewW` x `viewH` canvas, as large as fits (at most `MAX_FIT_SCALE`). */
export function fitView(imageW: number, imageH: number, viewW: number, viewH: number): View {
  const scale = Math.min(MAX_FIT_SCALE, viewW / imageW, viewH / imageH);
  return { scale, ox: (viewW - imageW * scale) / 2, oy: (viewH - imageH * scale) / 2 };
}

/** Zoom by `factor` keeping the canvas point (sx, sy) over the same image point. */
export function zoomAt(view: View, factor: number, sx: number, sy: number): View {
  const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, view.scale * factor));
  const k = scale / view.scale;
  return { scale, ox: sx - (sx - view.ox) * k, oy: sy - (sy - view.oy) * k };
}

export function panBy(view: View, dx: number, dy: number): View {
  return { scale: view.scale, ox: view.ox + dx, oy: view.oy + dy };
}

export function toImage(view: View, sx: number, sy: number): { x: number; y: number } {
  return { x: (sx - view.ox) / view.scale, y: (sy - view.oy) / view.scale };
}

export function toScreen(view: View, x: number, y: number): { x: number; y: number } {
  return { x: x * view.scale + view.ox, y: y * view.scale + view.oy };
}
