/**
 * segkit studio latency in headless Chromium (Debian's, driven by playwright-core), on the standard-size SAM decoder
 * (a `split` export with random weights: speed does not depend on them): the real server, project store and encoder
 * queue in this process, the app bundled from src.
 * The app decodes in the browser (segkit/web on onnxruntime-web, `?decode=browser`) or on the server (onnxruntime-node,
 * `?decode=server`); by default a page from 127.0.0.1 (this bench's) decodes on the server. Both ways are measured on
 * the same clicks; the headline figures are those of the way the default page takes (`chosen`):
 * - clickToMaskMs: click-to-mask-drawn as the app records it (the proposal's `data-click-to-mask-ms`: from the
 *   pointerup event's timestamp to the frame that draws the mask), p50 and p95 over `--clicks` clicks at varied
 *   points of a 640 x 480 image; clicks come in pairs, a fresh click (after Escape: one point, SAM's 3 candidates)
 *   then a refining one (a second point with the previous best low-res mask as mask input, one mask).
 * - firstClickMs: from the key that opens an image whose embedding is precomputed (N) to the first click's mask
 *   drawn: the app fetches the embedding, parses it, waits for SAM ready, then the click (the harness clicks as soon
 *   as the page says SAM is ready; its reaction time is included).
 * Sides, on the same clicks, interleaved in `--passes` passes (the order rotating per pass):
 * - browser: the page with `?decode=browser`;
 * - server: the page with `?decode=server` (each click a POST /api/images/:id/decode, onnxruntime-node through the
 *   Node predictor, masks as RLE and low-res planes as base64 in JSON);
 * - node: `createSamPredictor(...).predict` on the same requests, directly (no HTTP, no drawing).
 * Each page side also reports where its clicks' time went (decodeMs, postprocessMs: the decoder graph, then upscaling
 * and thresholding, as segkit/web or the server measured them).
 * Writes bench/results/studio.json.
 *
 *   npm run bench:studio -- [--model /tmp/sam-model-copy] [--clicks 100] [--passes 5] [--threads 2] [--width 640]
 *                           [--height 480]
 * A model directory comes from `npm run bench:sam -- --keep` (it prints where it exported the graphs).
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Page } from "playwright-core";
import { bundleBrowser } from "../scripts/build-web.mjs";
import { createImage } from "../src/core/image.js";
import { encodePng } from "../src/io/write.js";
import { loadSamModel } from "../src/sam/model.js";
import { createSamPredictor, type SamPredictRequest } from "../src/sam/predictor.js";
import { createEncoderQueue } from "../src/studio/encoder-queue.js";
import { type StudioAppFile, startStudioServer } from "../src/studio/server.js";
import { openProjectStore } from "../src/studio/store.js";
import { launchBrowser, openPage } from "../src/test-utils/browser.js";
import { ready, viewOf } from "../src/test-utils/studio-page.js";
import { machine, writeResults } from "./common.js";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    model: { type: "string", default: "/tmp/sam-model-copy" },
    clicks: { type: "string", default: "100" },
    passes: { type: "string", default: "5" },
    threads: { type: "string", default: "2" },
    width: { type: "string", default: "640" },
    height: { type: "string", default: "480" },
    out: { type: "string", default: join(here, "results", "studio.json") },
  },
});
const CLICKS = Number(args.clicks);
const PASSES = Number(args.passes);
const WIDTH = Number(args.width);
const HEIGHT = Number(args.height);
const WARMUP_CLICKS = 4;
const TARGETS = { clickToMaskP95Ms: 50, clickToMaskAimMs: 20, firstClickMs: 300 };
if (CLICKS % (2 * PASSES) !== 0) throw new Error(`--clicks must be a multiple of 2 x --passes (${2 * PASSES})`);

const modelDir = args.model;
if (!(await stat(join(modelDir, "decoder.onnx")).catch(() => undefined))) {
  throw new Error(`no SAM split export in ${modelDir}: make one with npm run bench:sam -- --keep, then --model DIR`);
}

/** Deterministic points in [16, size - 16) (xorshift). */
function points(n: number, seed: number): { x: number; y: number }[] {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  return Array.from({ length: n }, () => ({
    x: Math.round(16 + next() * (WIDTH - 32)) + 0.5,
    y: Math.round(16 + next() * (HEIGHT - 32)) + 0.5,
  }));
}

/** A gradient with discs of several colours, so the picture has objects (the weights are random anyway). */
function benchImage(seed: number): Promise<Uint8Array> {
  const img = createImage(WIDTH, HEIGHT);
  const discs = points(8, seed).map((p, k) => ({
    ...p,
    r: 20 + ((k * 13) % 50),
    c: [(k * 97) % 256, 200 - k * 20, 40],
  }));
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) {
      const d = discs.find((q) => (x - q.x) ** 2 + (y - q.y) ** 2 <= q.r * q.r);
      img.data.set(d ? d.c : [(x * 255) / WIDTH, (y * 255) / HEIGHT, 128], (y * WIDTH + x) * 3);
    }
  }
  return encodePng(img);
}

const quantile = (values: readonly number[], q: number) => {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? Number.NaN;
};
const summary = (v: readonly number[]) => ({
  p50: round(quantile(v, 0.5)),
  p95: round(quantile(v, 0.95)),
  n: v.length,
});
const round = (x: number) => Math.round(x * 10) / 10;
const load = () => loadavg().map((l) => Math.round(l * 100) / 100);

const loadAtStart = load();
console.log(`load average at start: ${loadAtStart.join(", ")}`);
const root = await mkdtemp(join(tmpdir(), "segkit-bench-studio-"));
const imagesDir = join(root, "images");
await mkdir(imagesDir);
const IMAGE_A = "a.png"; // the clicks
const IMAGE_B = "b.png"; // opened and left, for firstClickMs
await writeFile(join(imagesDir, IMAGE_A), await benchImage(7));
await writeFile(join(imagesDir, IMAGE_B), await benchImage(11));

const model = await loadSamModel(modelDir, { threads: Number(args.threads) });
const store = await openProjectStore({ imagesDir, outDir: join(root, "labels"), classes: ["object"] });
const cacheDir = join(store.outDir, "embeddings");
const encoder = await createEncoderQueue({ model, cacheDir, images: store.images });
const t0 = performance.now();
await encoder.idle();
console.log(`encoded ${store.images.length} images in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
const predictor = await createSamPredictor(model, { cacheDir });
await predictor.setImage(join(imagesDir, IMAGE_A)); // from the disk cache the encoder wrote

const app = bundleBrowser("src/studio/app/main.ts");
const appFile = async (name: StudioAppFile) =>
  name === "app.js" ? app : readFile(join(here, "../src/studio/app", name));
const server = await startStudioServer({ store, encoder, appFile });

/** The clicks of pass k (pairs: a fresh click, then a refining one). */
const ALL = points(CLICKS, 2026);
const passClicks = (k: number) => ALL.slice((k * CLICKS) / PASSES, ((k + 1) * CLICKS) / PASSES);

type Side = "browser" | "server" | "node";
const clickMs: Record<Side, number[]> = { browser: [], server: [], node: [] };
const firstMs: Record<"browser" | "server", number[]> = { browser: [], server: [] };
const passMedians: Record<Side, number[]> = { browser: [], server: [], node: [] };
/** The decoding side's own timings of the timed clicks (the rest of a click: events, HTTP, the app, drawing). */
const parts = {
  browser: { decodeMs: [] as number[], postprocessMs: [] as number[] },
  server: { decodeMs: [] as number[], postprocessMs: [] as number[] },
};

/** Installs the page's recorders: the time of the last keydown and of the last pointerup (event timestamps). */
const instrument = (page: Page) =>
  page.evaluate(() => {
    const w = window as unknown as { __keyAt: number; __upAt: number };
    window.addEventListener("keydown", (e) => (w.__keyAt = e.timeStamp), { capture: true });
    window.addEventListener("pointerup", (e) => (w.__upAt = e.timeStamp), { capture: true });
  });

/** Clicks image pixel `p`: the app's click-to-mask-drawn ms and the decoding side's split of it. */
async function click(
  page: Page,
  p: { x: number; y: number },
  fresh: boolean,
): Promise<{ ms: number; decode: number; post: number }> {
  if (fresh) await page.keyboard.press("Escape");
  await page.evaluate(() => {
    const el = document.querySelector<HTMLElement>('[data-testid="proposal"]');
    if (el) delete el.dataset.clickToMaskMs;
  });
  const v = await viewOf(page);
  const box = await page.locator('[data-testid="canvas"]').boundingBox();
  if (!box) throw new Error("no canvas");
  await page.mouse.click(box.x + p.x * v.scale + v.ox, box.y + p.y * v.scale + v.oy);
  const el = await page.waitForSelector('[data-testid="proposal"][data-click-to-mask-ms]', { state: "attached" });
  const [ms = Number.NaN, decode = Number.NaN, post = Number.NaN] = await el.evaluate((e) => {
    const d = (e as HTMLElement).dataset;
    return [d.clickToMaskMs, d.decodeMs, d.postprocessMs].map(Number);
  });
  return { ms, decode, post };
}

/** Presses N to open image `id` and clicks it as soon as SAM is ready: key to mask drawn, ms. */
async function openAndClick(page: Page, id: string): Promise<number> {
  await page.keyboard.press("n");
  await page.waitForFunction((want) => {
    const canvas = document.querySelector<HTMLElement>('[data-testid="canvas"]');
    const sam = document.querySelector<HTMLElement>('[data-testid="sam-status"]');
    return canvas?.dataset.imageId === want && sam?.dataset.ready === "true";
  }, id);
  const { ms } = await click(page, { x: WIDTH / 2 + 0.5, y: HEIGHT / 2 + 0.5 }, true);
  const { keyAt, upAt } = await page.evaluate(() => {
    const w = window as unknown as { __keyAt: number; __upAt: number };
    return { keyAt: w.__keyAt, upAt: w.__upAt };
  });
  return upAt + ms - keyAt;
}

/** One pass on a page: B and back to A (two first clicks), then the pass's clicks on A. */
async function pagePass(page: Page, side: "browser" | "server", k: number, record: boolean) {
  const first = [await openAndClick(page, IMAGE_B), await openAndClick(page, IMAGE_A)];
  const list = k < 0 ? ALL.slice(0, WARMUP_CLICKS) : passClicks(k);
  const clicks: { ms: number; decode: number; post: number }[] = [];
  for (const [i, p] of list.entries()) clicks.push(await click(page, p, i % 2 === 0));
  if (!record) return;
  const ms = clicks.map((c) => c.ms);
  firstMs[side].push(...first);
  clickMs[side].push(...ms);
  passMedians[side].push(round(quantile(ms, 0.5)));
  // the split of the timed clicks only (not the first clicks, not the warm-up)
  parts[side].decodeMs.push(...clicks.map((c) => c.decode));
  parts[side].postprocessMs.push(...clicks.map((c) => c.post));
}

/** The same clicks through the Node predictor: fresh = one point (3 masks), refine = two points + the best mask. */
async function nodePass(k: number, record: boolean) {
  const list = k < 0 ? ALL.slice(0, WARMUP_CLICKS) : passClicks(k);
  const ms: number[] = [];
  let prev: { p: { x: number; y: number }; low: Float32Array } | undefined;
  for (const [i, p] of list.entries()) {
    const fresh = i % 2 === 0;
    const request: SamPredictRequest =
      fresh || !prev
        ? { points: [{ ...p, label: 1 }], multimask: true }
        : {
            points: [
              { ...prev.p, label: 1 },
              { ...p, label: 1 },
            ],
            maskInput: prev.low,
            multimask: false,
          };
    const t = performance.now();
    const r = await predictor.predict(request);
    ms.push(performance.now() - t);
    const best = [...r.scores.keys()].reduce((a, b) => ((r.scores[b] ?? 0) > (r.scores[a] ?? 0) ? b : a), 0);
    prev = { p, low: r.lowResLogits.data.slice(best * 65536, (best + 1) * 65536) };
  }
  if (!record) return;
  clickMs.node.push(...ms);
  passMedians.node.push(round(quantile(ms, 0.5)));
}

const browser = await launchBrowser();
let decoders: string[] = [];
let chosen = "?";
let page: Record<string, unknown> = {};
try {
  await openPage(browser, `${server.url}#image=${IMAGE_A}`, async (page) => {
    await ready(page);
    chosen = (await page.getAttribute('[data-testid="sam-status"]', "data-decoder")) ?? "?";
  });
  if (chosen !== "browser" && chosen !== "server") throw new Error(`the default page decodes with ${chosen}`);
  await openPage(browser, `${server.url}?decode=browser#image=${IMAGE_A}`, async (web) => {
    await openPage(browser, `${server.url}?decode=server#image=${IMAGE_A}`, async (srv) => {
      for (const page of [web, srv]) {
        await ready(page);
        await instrument(page);
      }
      decoders = await Promise.all(
        [web, srv].map(async (p) => (await p.getAttribute('[data-testid="sam-status"]', "data-decoder")) ?? "?"),
      );
      if (decoders.join() !== "browser,server") throw new Error(`decoders ${decoders}: expected browser, server`);
      page = await web.evaluate(() => ({
        crossOriginIsolated: globalThis.crossOriginIsolated,
        hardwareConcurrency: navigator.hardwareConcurrency,
        userAgent: navigator.userAgent,
      }));
      const run = (side: Side, k: number, record: boolean) =>
        side === "node" ? nodePass(k, record) : pagePass(side === "browser" ? web : srv, side, k, record);
      const sides: Side[] = ["browser", "server", "node"];
      for (const side of sides) await run(side, -1, false); // warm-up
      for (let k = 0; k < PASSES; k++) {
        const order = sides.map((_, i) => sides[(i + k) % sides.length] as Side);
        for (const side of order) await run(side, k, true);
        console.log(
          `pass ${k + 1}/${PASSES}: click p50 ${order.map((s) => `${s} ${passMedians[s].at(-1)} ms`).join(", ")}; load ${load()[0]}`,
        );
      }
    });
  });
} finally {
  await browser.close();
  await server.close();
  await predictor.dispose();
  await encoder.close();
  await model.dispose();
  await rm(root, { recursive: true, force: true });
}

const median = (v: readonly number[]) => round(quantile(v, 0.5));
/** a / b to 2 decimals (> 1: the browser is faster). */
const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
const browserClick = summary(clickMs.browser);
const serverClick = summary(clickMs.server);
const nodeClick = summary(clickMs.node);
const chosenClick = chosen === "server" ? serverClick : browserClick;
const chosenFirst = median(chosen === "server" ? firstMs.server : firstMs.browser);
const report = {
  clickToMaskMs: { p50: chosenClick.p50, p95: chosenClick.p95 },
  firstClickMs: chosenFirst,
  chosen,
  clicks: CLICKS,
  passes: PASSES,
  image: { width: WIDTH, height: HEIGHT },
  model: modelDir,
  decoderBytes: (await stat(join(modelDir, "decoder.onnx"))).size,
  decoders,
  browser: {
    page,
    clickToMaskMs: browserClick,
    decodeMs: summary(parts.browser.decodeMs),
    postprocessMs: summary(parts.browser.postprocessMs),
    firstClickRuns: firstMs.browser.map(round),
    passMedians: passMedians.browser,
  },
  peers: {
    server: {
      what: "the page with ?decode=server: POST /api/images/:id/decode on onnxruntime-node",
      clickToMaskMs: serverClick,
      decodeMs: summary(parts.server.decodeMs),
      postprocessMs: summary(parts.server.postprocessMs),
      firstClickMs: median(firstMs.server),
      firstClickRuns: firstMs.server.map(round),
      passMedians: passMedians.server,
    },
    node: {
      what: "createSamPredictor(...).predict on the same requests, no HTTP or drawing",
      predictMs: nodeClick,
      passMedians: passMedians.node,
    },
  },
  ratios: {
    serverOverBrowserP50: ratio(serverClick.p50, browserClick.p50),
    serverOverBrowserP95: ratio(serverClick.p95, browserClick.p95),
    nodePredictOverBrowserP50: ratio(nodeClick.p50, browserClick.p50),
  },
  targets: {
    ...TARGETS,
    clickToMaskP95Met: chosenClick.p95 < TARGETS.clickToMaskP95Ms,
    firstClickMet: chosenFirst < TARGETS.firstClickMs,
  },
  loadAverage: { start: loadAtStart, end: load() },
  machine: machine(),
  date: new Date().toISOString(),
};
console.log(
  `click to mask drawn, the default page (${chosen}): p50 ${chosenClick.p50} / p95 ${chosenClick.p95} ms, first click ${chosenFirst} ms.\n` +
    `  browser: p50 ${browserClick.p50} / p95 ${browserClick.p95} ms (decode ${report.browser.decodeMs.p50}, upscale + threshold ` +
    `${report.browser.postprocessMs.p50}), first click ${median(firstMs.browser)} ms\n` +
    `  server:  p50 ${serverClick.p50} / p95 ${serverClick.p95} ms (decode ${report.peers.server.decodeMs.p50}, upscale + ` +
    `threshold ${report.peers.server.postprocessMs.p50}), first click ${report.peers.server.firstClickMs} ms\n` +
    `  Node predict: p50 ${nodeClick.p50} / p95 ${nodeClick.p95} ms`,
);
await writeResults(args.out, report);
