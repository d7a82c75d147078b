// segkit/web in a real browser (chromium, onnxruntime-web wasm, threaded under COOP/COEP) against the Node
// SamPredictor on the same embeddings: the same masks (exactly) and scores for points, a box and a mask input.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser } from "playwright-core";
import { bundleBrowser } from "../../scripts/build-web.mjs";
import { createImage, type RgbImage } from "../core/image.js";
import { createRng } from "../core/random.js";
import { loadSamModel, type SamModel } from "../sam/model.js";
import { createSamPredictor, type SamPredictRequest } from "../sam/predictor.js";
import { preprocessImage } from "../sam/transforms.js";
import { encodeEmbeddingWire } from "../sam/wire.js";
import { launchBrowser, ORT_WEB_DIST, openPage, type StaticServer, serveStatic } from "../test-utils/browser.js";

const FIXTURES = join(import.meta.dirname, "..", "sam", "fixtures", "models");

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="importmap">{ "imports": { "onnxruntime-web": "/vendor/ort/ort.wasm.min.mjs" } }</script>
<script type="module">
import * as ort from "onnxruntime-web";
import * as web from "/segkit-web.js";
globalThis.segkit = { ort, web };
</script></head><body></body></html>`;

/** A request as the page takes it: plain JSON (the mask input as an array). */
interface PageRequest {
  points?: { x: number; y: number; label: 0 | 1 }[];
  box?: [number, number, number, number];
  maskInput?: number[];
  multimask?: boolean;
  masks?: "all" | "best";
}

interface PageResult {
  layout: string;
  acceptsBox: boolean;
  acceptsMaskInput: boolean;
  isolated: boolean;
  threads: { set: number; cores: number };
  predictions: { masks: number[][]; scores: number[]; lowRes: number[][] }[];
  errors: { emptyPrompt: string; afterDispose: string };
}

/** Runs the requests in the page on the fixture `name`'s decoder and embedding (served under `/<name>/`). */
function predictInPage(browser: Browser, server: StaticServer, name: string, requests: PageRequest[]) {
  return openPage(browser, `${server.url}/`, async (page) => {
    await page.waitForFunction(() => "segkit" in globalThis);
    return page.evaluate(
      async ({ name, requests }): Promise<PageResult> => {
        // biome-ignore lint/suspicious/noExplicitAny: the page's globals
        const { ort, web } = (globalThis as any).segkit;
        const d = await web.createWebSamDecoder({ decoder: `/${name}/decoder.onnx`, ort });
        const e = web.decodeEmbeddingWire(new Uint8Array(await (await fetch(`/${name}/embedding`)).arrayBuffer()));
        // (no named functions in here: tsx's __name helper does not exist in the page)
        const asText = [() => "no error", (err: Error) => `${err.name}: ${err.message}`] as const;
        const emptyPrompt = await d.predict(e.embeddings, e.originalSize, {}).then(...asText);
        const predictions = [];
        for (const r of requests) {
          const request = { ...r, ...(r.maskInput ? { maskInput: Float32Array.from(r.maskInput) } : {}) };
          const p = await d.predict(e.embeddings, e.originalSize, request);
          predictions.push({
            masks: p.masks.map((m: Uint8Array) => Array.from(m)),
            scores: p.scores,
            lowRes: p.lowRes.map((l: Float32Array) => Array.from(l)),
          });
        }
        await d.dispose();
        const errors = {
          emptyPrompt,
          afterDispose: await d
            .predict(e.embeddings, e.originalSize, { points: [{ x: 1, y: 1, label: 1 }] })
            .then(...asText),
        };
        const { layout, acceptsBox, acceptsMaskInput } = d;
        const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
        const threads = ort.env.wasm.numThreads;
        return { layout, acceptsBox, acceptsMaskInput, isolated, threads, predictions, errors };
      },
      { name, requests },
    );
  });
}

/** `createWebSamDecoder` on each of `decoders` in one page: the errors thrown, as plain data (null: none). */
function decoderErrorsInPage(browser: Browser, server: StaticServer, decoders: string[]) {
  return openPage(
    browser,
    `${server.url}/`,
    async (page) => {
      await page.waitForFunction(() => "segkit" in globalThis);
      return page.evaluate(async (decoders) => {
        // biome-ignore lint/suspicious/noExplicitAny: the page's globals
        const { ort, web } = (globalThis as any).segkit;
        const errors = [];
        for (const decoder of decoders) {
          try {
            await (await web.createWebSamDecoder({ decoder, ort })).dispose();
            errors.push(null);
          } catch (err) {
            const { name, message, file } = err as Error & { file?: string };
            errors.push({ name, message, file });
          }
        }
        return errors;
      }, decoders);
    },
    { allowErrors: [/404 \(Not Found\)/] },
  );
}

/** A seeded noise image with a brighter rectangle (the fixtures' random weights make any image give masks). */
function testImage(width: number, height: number): RgbImage {
  const rng = createRng(13);
  const img = createImage(width, height);
  for (let i = 0; i < img.data.length; i++) img.data[i] = Math.floor(rng.next() * 256);
  return img;
}

const WIDTH = 48;
const HEIGHT = 32;
const POS = { x: 20, y: 12, label: 1 as const };
const NEG = { x: 5, y: 25, label: 0 as const };
const BOX: [number, number, number, number] = [8, 4, 40, 28];

/** Node's embeddings of `img` for `model` (the predictor's own encoder input: SAM's normalised padded square). */
async function embeddingWire(model: SamModel, img: RgbImage): Promise<Uint8Array> {
  assert.equal(model.encoderInput, "nchw");
  const pre = preprocessImage(img);
  const embeddings = await model.encode({ data: pre.data, dims: pre.dims });
  return encodeEmbeddingWire({
    layout: model.layout,
    originalSize: pre.originalSize,
    inputSize: pre.inputSize,
    embeddings,
  });
}

describe("segkit/web in chromium", () => {
  let browser: Browser;
  let server: StaticServer;
  const models: Record<string, SamModel> = {};
  const img = testImage(WIDTH, HEIGHT);

  before(async () => {
    for (const dir of ["split", "transformers"]) models[dir] = await loadSamModel(join(FIXTURES, dir), { threads: 1 });
    const split = models.split as SamModel;
    const transformers = models.transformers as SamModel;
    server = await serveStatic({
      "/": { body: PAGE, type: "text/html; charset=utf-8" },
      "/segkit-web.js": { body: await bundleBrowser("src/web/index.ts") },
      "/vendor/ort/": { dir: ORT_WEB_DIST },
      "/split/decoder.onnx": { file: split.files.decoder },
      "/split/embedding": { body: await embeddingWire(split, img) },
      "/transformers/decoder.onnx": { file: transformers.files.decoder },
      "/transformers/embedding": { body: await embeddingWire(transformers, img) },
      "/encoder.onnx": { file: split.files.encoder },
      "/broken.onnx": { file: join(FIXTURES, "broken", "decoder_without_point_labels.onnx") },
      "/garbage.onnx": { body: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) },
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    for (const m of Object.values(models)) await m.dispose();
  });

  /** Node's predictions for the same requests: masks and low-res planes ordered by score, best first (stable). */
  async function nodePredictions(model: SamModel, requests: PageRequest[]) {
    const predictor = await createSamPredictor(model);
    try {
      await predictor.setImage(img);
      const out = [];
      for (const r of requests) {
        const { maskInput, masks: _, ...rest } = r;
        const request: SamPredictRequest = {
          ...rest,
          ...(maskInput ? { maskInput: Float32Array.from(maskInput) } : {}),
          // segkit/web's default: multimask for one point alone
          multimask: r.multimask ?? ((r.points?.length ?? 0) === 1 && !r.box && !r.maskInput),
        };
        const p = await predictor.predict(request);
        const order = [...p.scores.keys()].sort((a, b) => (p.scores[b] as number) - (p.scores[a] as number));
        const area = 256 * 256;
        out.push({
          masks: order.map((i) => Array.from((p.masks[i] as { data: Uint8Array }).data)),
          scores: order.map((i) => p.scores[i] as number),
          lowRes: order.map((i) => p.lowResLogits.data.subarray(i * area, (i + 1) * area)),
        });
      }
      return out;
    } finally {
      await predictor.dispose();
    }
  }

  /**
   * The page's predictions equal Node's: masks exactly, low-res logits within 1e-5, scores within 1e-4. (The
   * fixtures' IoU is sigmoid(mean of 65536 float32 logits near -2): onnxruntime's native and wasm reductions sum in
   * different orders, measured up to 8.6e-5 apart on the split fixture, while every logit agrees within 2e-6.)
   */
  function assertSame(web: PageResult["predictions"], node: Awaited<ReturnType<typeof nodePredictions>>) {
    assert.equal(web.length, node.length);
    web.forEach((w, r) => {
      const n = node[r] as (typeof node)[number];
      assert.equal(w.scores.length, n.masks.length, `request ${r}: candidate count`);
      w.scores.forEach((s, k) => {
        assert.ok(Math.abs(s - (n.scores[k] as number)) <= 1e-4, `request ${r} score ${k}: ${s} vs ${n.scores[k]}`);
      });
      w.masks.forEach((m, k) => {
        assert.equal(m.length, WIDTH * HEIGHT);
        assert.deepEqual(m, n.masks[k], `request ${r} mask ${k}`);
      });
      w.lowRes.forEach((l, k) => {
        const ref = n.lowRes[k] as Float32Array;
        let worst = 0;
        for (let i = 0; i < l.length; i++) worst = Math.max(worst, Math.abs((l[i] as number) - (ref[i] as number)));
        assert.ok(l.length === 256 * 256 && worst <= 1e-5, `request ${r} low-res ${k}: max |diff| ${worst}`);
      });
    });
  }

  it("split (official) decoder: points, negative point, box, points + box, mask input; threaded and isolated", async () => {
    const model = models.split as SamModel;
    const first: PageRequest[] = [
      { points: [POS] },
      { points: [POS, NEG], multimask: false },
      { box: BOX },
      { points: [POS], box: BOX, multimask: true },
    ];
    const node = await nodePredictions(model, first);
    // the next click refines with the previous best low-res mask, as the studio does
    const maskInput = Array.from(node[1]?.lowRes[0] ?? []);
    const requests = [
      ...first,
      { points: [POS, NEG, { x: 30, y: 20, label: 1 as const }], maskInput },
      { points: [POS], box: BOX, multimask: true, masks: "best" as const }, // the best mask alone, all 3 scores
    ];
    const web = await predictInPage(browser, server, "split", requests);
    assert.equal(web.layout, "split");
    assert.equal(web.acceptsMaskInput, true);
    assert.equal(web.isolated, true);
    assert.equal(web.threads.set, web.threads.cores); // the default when cross-origin isolated
    assert.deepEqual(
      web.predictions.map((p) => p.masks.length),
      [3, 1, 1, 3, 1, 1],
    );
    assert.equal(web.predictions[5]?.scores.length, 3);
    const all = await nodePredictions(model, requests);
    assertSame(web.predictions, all);
    // the prompts differ: not every request gives the same first mask (the comparison is not vacuous)
    const firsts = new Set(web.predictions.map((p) => p.masks[0]?.join("")));
    assert.ok(firsts.size > 1);
    assert.ok(web.predictions.some((p) => p.masks.some((m) => m.includes(1) && m.includes(0))));
    assert.deepEqual(web.errors, {
      emptyPrompt: "SegkitError: an empty prompt: give points, a box or a mask input",
      afterDispose: "SegkitError: this WebSamDecoder was disposed",
    });
  });

  it("transformers.js decoder: points, multimask off picks the best candidate, box when it takes one", async () => {
    const model = models.transformers as SamModel;
    const requests: PageRequest[] = [{ points: [POS] }, { points: [POS, NEG], multimask: false }];
    if (model.acceptsBox) requests.push({ box: BOX });
    const web = await predictInPage(browser, server, "transformers", requests);
    assert.equal(web.layout, "transformers");
    assert.equal(web.acceptsMaskInput, false);
    assert.equal(web.acceptsBox, model.acceptsBox);
    assertSame(web.predictions, await nodePredictions(model, requests));
    assert.deepEqual(
      web.predictions.map((p) => p.scores.every((s, i, a) => i === 0 || (a[i - 1] as number) >= s)),
      requests.map(() => true),
    );
  });

  it("a missing decoder URL, a non-SAM graph, a decoder without point_labels and non-ONNX bytes: clear errors", async () => {
    const [missing, encoder, broken, garbage, good] = await decoderErrorsInPage(browser, server, [
      "/missing.onnx",
      "/encoder.onnx",
      "/broken.onnx",
      "/garbage.onnx",
      "/split/decoder.onnx",
    ]);
    assert.deepEqual(missing, {
      name: "SegkitError",
      message: "could not fetch the SAM decoder /missing.onnx: HTTP 404 Not Found",
      file: "/missing.onnx",
    });
    assert.equal(encoder?.name, "SegkitError");
    assert.equal(encoder?.file, "/encoder.onnx");
    assert.match(
      encoder?.message ?? "",
      /^input `point_coords` \(or transformers.js `input_points`\) missing; expected the official SAM decoder inputs/,
    );
    assert.match(broken?.message ?? "", /^input `point_labels` missing; expected the official SAM decoder inputs/);
    assert.equal(garbage?.file, "/garbage.onnx");
    assert.match(garbage?.message ?? "", /^\/garbage.onnx is not a loadable ONNX model \(/);
    assert.equal(good, null);
  });
});
