/** Reading the studio app's page in browser tests (and bench/studio.ts): readiness, the canvas view, its pixels. */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";

/** Waits until the app has started, opened an image and has SAM ready for it. */
export const ready = (page: Page) =>
  page.waitForSelector('body[data-ready="true"] [data-testid="sam-status"][data-ready="true"]', { state: "attached" });

export type ViewState = { scale: number; ox: number; oy: number };
export const viewOf = async (page: Page): Promise<ViewState> =>
  JSON.parse((await page.getAttribute('[data-testid="canvas"]', "data-view")) ?? "null");

/** Page coordinates of image pixel position (x, y) under the canvas' current view. */
export async function screenOf(page: Page, x: number, y: number) {
  const v = await viewOf(page);
  const box = await page.locator('[data-testid="canvas"]').boundingBox();
  assert.ok(box);
  return { x: box.x + x * v.scale + v.ox, y: box.y + y * v.scale + v.oy };
}

/** RGBA of the canvas at page point (x, y), once the canvas shows its current view. */
export const pixelAt = async (page: Page, p: { x: number; y: number }) => {
  await page.waitForFunction(() => {
    const c = document.querySelector<HTMLCanvasElement>('[data-testid="canvas"]');
    return c?.dataset.view !== undefined && c.dataset.view === c.dataset.drawnView;
  });
  return page.evaluate(
    ([x, y]) => {
      const c = document.querySelector('[data-testid="canvas"]') as HTMLCanvasElement;
      const r = c.getBoundingClientRect();
      return Array.from(
        c.getContext("2d")?.getImageData(Math.floor(x - r.left), Math.floor(y - r.top), 1, 1).data ?? [],
      );
    },
    [p.x, p.y] as const,
  );
};
