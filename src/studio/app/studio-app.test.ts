// End-to-end tests of the studio app in headless Chromium, against a fake of the STUDIO.md HTTP API served from
// memory (node:http on 127.0.0.1:0) and a fake SAM decoder put into the page: a disc around the last positive
// point, or the box, so every mask the app saves can be recomputed here.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { encode as encodePng } from "fast-png";
import { type Browser, chromium, type Page } from "playwright-core";
import { type CompressedRle, rleDecode, rleFromString } from "../../masks/rle.js";
import { samInputShape } from "../../sam/transforms.js";
import { encodeEmbeddingWire, LOW_RES_WIRE_TYPE } from "../../sam/wire.js";
import { pixelAt, ready, screenOf, viewOf } from "../../test-utils/studio-page.js";
import type { Annotations, ImageEntry, InstanceRecord, ProjectInfo } from "./api.js";
import { SHORTCUTS } from "./keymap.js";
import { maskToRle } from "./mask-edit.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.SEGKIT_CHROMIUM ?? "/usr/bin/chromium";

interface ImageSpec {
  id: string;
  width: number;
  height: number;
}
const IMAGES: ImageSpec[] = [
  { id: "a.png", width: 64, height: 48 },
  { id: "sub/b.png", width: 40, height: 30 },
];
const PROJECT: ProjectInfo = {
  name: "fake",
  imagesDir: "/images",
  outDir: "/out",
  mode: "instance",
  classes: [
    { id: 1, name: "cat", color: "#ff0000" },
    { id: 2, name: "dog", color: "#0000ff" },
  ],
  model: { layout: "split", acceptsBox: true, acceptsMaskInput: true, decoderUrl: "/model/decoder.onnx" },
  prelabel: { amg: true, model: false },
};

/** Grey 128 with a red 8x8 block at x 40..47, y 8..15 (where it fits). */
function imagePng({ width, height }: ImageSpec): Uint8Array {
  const data = new Uint8Array(width * height * 3).fill(128);
  for (let y = 8; y < 16 && y < height; y++) {
    for (let x = 40; x < 48 && x < width; x++) data.set([255, 0, 0], (y * width + x) * 3);
  }
  return encodePng({ width, height, data, channels: 3, depth: 8 });
}

/** The page's fake SAM: candidate 0 a disc of radius 6 about the last positive point (plus the box), 1 half of it. */
const FAKE_DECODER = `(() => {
  const calls = (window.__segkitDecoderCalls = []);
  window.__segkitTestDecoder = {
    predict(embedding, image, req) {
      calls.push({
        points: req.points ?? null,
        box: req.box ? Array.from(req.box) : null,
        maskInput: req.maskInput ? req.maskInput[0] : null,
        embedding: new TextDecoder().decode(embedding),
      });
      const { width: w, height: h } = image;
      const m = new Uint8Array(w * h);
      const pos = (req.points ?? []).filter((p) => p.label === 1).at(-1);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const b = req.box;
          const inBox = b && x + 0.5 >= b[0] && x + 0.5 < b[2] && y + 0.5 >= b[1] && y + 0.5 < b[3];
          const inDisc = pos && (x + 0.5 - pos.x) ** 2 + (y + 0.5 - pos.y) ** 2 <= 36;
          if (inBox || inDisc) m[y * w + x] = 1;
        }
      calls.at(-1).mask = Array.from(m);
      const small = m.map((v, i) => (i % 2 ? 0 : v));
      const low = (k) => new Float32Array(256 * 256).fill(calls.length * 10 + k);
      return { masks: [m, small], scores: [0.9, 0.5], lowRes: [low(0), low(1)] };
    },
  };
})();`;

interface Fake {
  url: string;
  puts: { id: string; body: { baseRevision: number; state: string; instances: InstanceRecord[] } }[];
  store: Map<string, Annotations>;
  /** When set, every request must carry it (?token= or X-Segkit-Token), as the server requires beyond loopback. */
  token: string | null;
  requests: string[];
  /** While set, PUT answers wait for it. */
  gate: Promise<void> | undefined;
  decodes: { points?: { x: number; y: number; label: number }[]; box?: number[]; maskInput?: string }[];
  /** What `/api/project` answers (a test may change it before the page opens). */
  project: ProjectInfo;
  /** The images (a test may add some before the page opens; their annotations start empty). */
  images: ImageSpec[];
  /** Every pre-label request: the image and the body. */
  prelabels: { id: string; body: PrelabelBody }[];
  /** Called on each pre-label request before it is answered; an answer it returns replaces the fake's own. */
  onPrelabel?: (id: string, body: PrelabelBody) => Promise<{ status: number; error: string } | undefined> | undefined;
  close(): Promise<void>;
}
type PrelabelBody = { baseRevision: number; from: "amg" | "model"; classId?: number };

/**
 * The fake's pre-labels: `amg` two suggestions of `classId`, columns 0..3 and 8..11; `model` one of class 2,
 * rows 0..1. Ids as the server makes them (`prelabel-<revision>-<k>`).
 */
function fakePrelabels(image: ImageSpec, body: PrelabelBody, revision: number): InstanceRecord[] {
  const { width: w, height: h } = image;
  const mask = (inside: (x: number, y: number) => boolean) =>
    maskToRle(
      new Uint8Array(w * h).map((_, i) => (inside(i % w, Math.floor(i / w)) ? 1 : 0)),
      w,
      h,
    );
  const rles = body.from === "amg" ? [mask((x) => x < 4), mask((x) => x >= 8 && x < 12)] : [mask((_, y) => y < 2)];
  return rles.map((rle, k) => ({
    id: `prelabel-${revision}-${k}`,
    classId: body.from === "amg" ? (body.classId ?? -1) : 2,
    rle,
    source: "prelabel",
    score: 0.5,
  }));
}

let bundle: string;

async function startFake(): Promise<Fake> {
  const store = new Map<string, Annotations>();
  const puts: Fake["puts"] = [];
  const decodes: Fake["decodes"] = [];
  const fake = {
    token: null,
    requests: [],
    project: structuredClone(PROJECT),
    images: [...IMAGES],
    prelabels: [],
  } as unknown as Fake;
  const annotationsOf = (id: string) => store.get(id) ?? { revision: 0, state: "new" as const, instances: [] };
  const asked = new Set<string>();
  const html = await readFile(join(HERE, "index.html"));
  const css = await readFile(join(HERE, "style.css"));
  const send = (res: ServerResponse, status: number, body: string | Uint8Array, type: string) => {
    res.writeHead(status, {
      "Content-Type": type,
      "Cross-Origin-Opener-Policy": "same-origin",
      "Cross-Origin-Embedder-Policy": "require-corp",
      "Cross-Origin-Resource-Policy": "same-origin",
    });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, body: unknown) =>
    send(res, status, JSON.stringify(body), "application/json");
  const readBody = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  };
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname;
    const given = url.searchParams.get("token") ?? req.headers["x-segkit-token"];
    if (fake.token !== null && given !== fake.token) return json(res, 401, { error: "token required" });
    fake.requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (path === "/") return send(res, 200, html, "text/html");
    if (path === "/app.js") return send(res, 200, bundle, "text/javascript");
    if (path === "/style.css") return send(res, 200, css, "text/css");
    if (path === "/api/project") return json(res, 200, fake.project);
    if (path === "/api/status") {
      const revision = [...store.values()].reduce((n, a) => n + a.revision, 0);
      return json(res, 200, { encoder: { done: 1, total: 2, current: "sub/b.png", failed: 0 }, revision });
    }
    if (path === "/api/export") {
      const { format } = await readBody(req);
      return json(res, 200, { dir: `/out/export/${format}`, files: [`${format}-1`, `${format}-2`] });
    }
    if (path === "/api/images") {
      const images: ImageEntry[] = fake.images.map((i) => ({
        ...i,
        file: i.id,
        state: annotationsOf(i.id).state,
        instances: annotationsOf(i.id).instances.length,
        embedding: "ready",
      }));
      return json(res, 200, { images });
    }
    const m = /^\/api\/images\/([^/]+)\/(file|annotations|embedding|decode|prelabel)$/.exec(path);
    const image = m && fake.images.find((i) => i.id === decodeURIComponent(m[1] ?? ""));
    if (!m || !image) return json(res, 404, { error: `no route ${path}` });
    if (m[2] === "file") return send(res, 200, imagePng(image), "image/png");
    if (m[2] === "embedding") {
      // first ask: queued (the app polls), then the bytes
      if (!asked.has(image.id)) {
        asked.add(image.id);
        return json(res, 202, { status: "queued", position: 0 });
      }
      return send(res, 200, `embedding of ${image.id}`, "application/x-segkit-embedding");
    }
    if (m[2] === "decode") {
      // the server-side decode as the app asks for it (the low-res answer), best first as the server answers:
      // logits equal to the call number everywhere (0.7: the whole image once upscaled), then -1 everywhere (0.3)
      assert.equal(req.headers.accept, LOW_RES_WIRE_TYPE);
      const body = await readBody(req);
      decodes.push(body);
      const low = new Float32Array(2 * 256 * 256).fill(decodes.length).fill(-1, 256 * 256);
      const size = { height: image.height, width: image.width };
      const wire = encodeEmbeddingWire({
        layout: "split",
        originalSize: size,
        inputSize: samInputShape(size, 1024),
        embeddings: {
          scores: { data: Float32Array.of(0.7, 0.3), dims: [2] },
          low_res_masks: { data: low, dims: [2, 256, 256] },
        },
      });
      return send(res, 200, wire, LOW_RES_WIRE_TYPE);
    }
    if (m[2] === "prelabel") {
      const body = (await readBody(req)) as PrelabelBody;
      fake.prelabels.push({ id: image.id, body });
      const answer = await fake.onPrelabel?.(image.id, body);
      if (answer) return json(res, answer.status, { error: answer.error });
      const now = annotationsOf(image.id);
      if (body.baseRevision !== now.revision)
        return json(res, 409, { error: "stale revision", revision: now.revision });
      const added = fakePrelabels(image, body, now.revision + 1);
      const state = now.state === "new" ? "in-progress" : now.state;
      store.set(image.id, { revision: now.revision + 1, state, instances: [...now.instances, ...added] });
      return json(res, 200, { revision: now.revision + 1, added: added.length });
    }
    const current = annotationsOf(image.id);
    if (req.method === "GET") return json(res, 200, current);
    const body = await readBody(req);
    puts.push({ id: image.id, body });
    await fake.gate; // a test may hold the answers back
    if (body.baseRevision !== current.revision)
      return json(res, 409, { error: "stale revision", revision: current.revision });
    store.set(image.id, { revision: current.revision + 1, state: body.state, instances: body.instances });
    return json(res, 200, { revision: current.revision + 1 });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  Object.assign(fake, {
    url: `http://127.0.0.1:${port}/`,
    puts,
    store,
    decodes,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
  return fake;
}

const decodeRle = (rle: CompressedRle) => rleDecode(rleFromString(rle)).data;
const area = (m: Uint8Array) => m.reduce((s, v) => s + v, 0);

/** Opens the app on a fresh fake server; the page's errors fail the test. */
async function openApp(
  browser: Browser,
  fn: (page: Page, fake: Fake) => Promise<void>,
  expectedErrors?: RegExp,
  setup?: (fake: Fake) => void,
  testDecoder = true,
): Promise<void> {
  const fake = await startFake();
  setup?.(fake);
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  if (testDecoder) await page.addInitScript(FAKE_DECODER);
  try {
    const query = [fake.token ? `token=${fake.token}` : "", testDecoder ? "" : "decode=server"].filter(Boolean);
    await page.goto(query.length ? `${fake.url}?${query.join("&")}` : fake.url);
    await ready(page);
    await fn(page, fake);
    assert.deepEqual(
      errors.filter((e) => !expectedErrors?.test(e)),
      [],
    );
  } finally {
    await context.close();
    await fake.close();
  }
}

async function clickImage(
  page: Page,
  x: number,
  y: number,
  options: { button?: "left" | "right"; modifiers?: ("Shift" | "Alt")[] } = {},
) {
  const s = await screenOf(page, x, y);
  for (const k of options.modifiers ?? []) await page.keyboard.down(k);
  await page.mouse.click(s.x, s.y, { button: options.button ?? "left" });
  for (const k of options.modifiers ?? []) await page.keyboard.up(k);
}

const decoderCalls = (page: Page) =>
  page.evaluate(
    () =>
      (
        window as unknown as {
          __segkitDecoderCalls: {
            points: { x: number; y: number; label: number }[] | null;
            box: number[] | null;
            maskInput: number | null;
            embedding: string;
            mask: number[];
          }[];
        }
      ).__segkitDecoderCalls,
  );
const waitCalls = (page: Page, n: number) =>
  page.waitForFunction(
    (k) => (window as unknown as { __segkitDecoderCalls: unknown[] }).__segkitDecoderCalls.length >= k,
    n,
  );
/** Waits until the app has finished `n` saves (each one PUT, answered or failed). */
const waitPuts = async (page: Page, fake: Fake, n: number) => {
  await page.waitForFunction((k) => Number(document.body.dataset.saves ?? 0) >= k, n);
  assert.equal(fake.puts.length, n);
};

/** Waits until the canvas pixel at page point `p` has each RGB channel within its [min, max]. */
const waitForPixel = (page: Page, p: { x: number; y: number }, ranges: [number, number][]) =>
  page.waitForFunction(
    ([x, y, want]) => {
      const c = document.querySelector<HTMLCanvasElement>('[data-testid="canvas"]');
      const r = c?.getBoundingClientRect();
      const d = r && c?.getContext("2d")?.getImageData(Math.floor(x - r.left), Math.floor(y - r.top), 1, 1).data;
      return !!d && want.every(([lo, hi], k) => (d[k] ?? -1) >= lo && (d[k] ?? -1) <= hi);
    },
    [p.x, p.y, ranges] as const,
  );

describe("studio app in Chromium", { timeout: 120_000 }, () => {
  let browser: Browser;
  before(async () => {
    const out = await build({
      entryPoints: [join(HERE, "main.ts")],
      bundle: true,
      format: "esm",
      platform: "browser",
      write: false,
      external: ["onnxruntime-web"],
      logLevel: "silent",
    });
    bundle = out.outputFiles[0]?.text ?? "";
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  });
  after(async () => {
    await browser?.close();
  });

  it("click -> proposal -> Enter saves an RLE instance of the chosen class; after a reload it is still drawn", async () => {
    await openApp(browser, async (page, fake) => {
      assert.equal(await page.getAttribute('[data-testid="canvas"]', "data-image-id"), "a.png");
      await page.keyboard.press("2");
      await clickImage(page, 20.5, 30.5);
      await page.waitForSelector('[data-testid="proposal"]:not([hidden])');
      const calls = await decoderCalls(page);
      assert.equal(calls.length, 1);
      assert.equal(calls[0]?.embedding, "embedding of a.png");
      const point = calls[0]?.points?.[0];
      assert.ok(point && Math.abs(point.x - 20.5) < 0.5 && Math.abs(point.y - 30.5) < 0.5, JSON.stringify(point));
      const expected = Uint8Array.from(calls[0]?.mask ?? []);
      assert.equal(expected[30 * 64 + 20], 1);
      assert.equal(expected[30 * 64 + 27], 0);
      assert.equal(await page.getAttribute('[data-testid="proposal"]', "data-area"), String(area(expected)));
      await page.keyboard.press("Tab"); // the second candidate, then back to the first
      await page.waitForSelector('[data-testid="proposal"][data-candidate="1"]');
      await page.keyboard.press("Tab");
      await page.waitForSelector('[data-testid="proposal"][data-candidate="0"]');
      await page.keyboard.press("Enter");
      await waitPuts(page, fake, 1);
      const put = fake.puts[0];
      assert.equal(put?.id, "a.png");
      assert.equal(put?.body.baseRevision, 0);
      assert.equal(put?.body.state, "in-progress");
      assert.equal(put?.body.instances.length, 1);
      const inst = put?.body.instances[0] as InstanceRecord;
      assert.equal(inst.classId, 2);
      assert.equal(inst.source, "sam");
      assert.deepEqual(inst.rle.size, [48, 64]);
      assert.deepEqual(decodeRle(inst.rle), expected);
      assert.equal(await page.isHidden('[data-testid="proposal"]'), true);

      await page.reload();
      await ready(page);
      await page.waitForSelector('[data-testid="instance-row"][data-class-id="2"]');
      assert.equal(await page.getAttribute('[data-testid="image-row"][data-id="a.png"]', "data-state"), "in-progress");
      // drawn: the pixel under the click is the image's grey tinted with the class colour (blue)
      const at = await screenOf(page, 20.5, 30.5);
      const [r, g, b] = await pixelAt(page, at);
      assert.ok(
        b !== undefined && r !== undefined && g !== undefined && b > 160 && r < 100 && g < 100,
        `pixel ${[r, g, b]}`,
      );
    });
  });

  it("negative clicks, right-clicks and boxes reach the decoder in image pixels under zoom and pan, with the last mask", async () => {
    await openApp(browser, async (page) => {
      const v0 = await viewOf(page);
      await page.keyboard.press("+");
      const v1 = await viewOf(page);
      assert.equal(v1.scale, v0.scale * 2);
      assert.equal(v1.scale, 8); // the 64x48 image fits at 4x (the fit's limit), + doubles it
      // sharp when enlarged: the red block's edge x = 48 falls between two screen pixels, no blend across it
      const inside = await pixelAt(page, await screenOf(page, 47.8, 12));
      const outside = await pixelAt(page, await screenOf(page, 48.2, 12));
      assert.deepEqual(inside.slice(0, 3), [255, 0, 0]);
      assert.deepEqual(outside.slice(0, 3), [128, 128, 128]);
      // pan with space-drag
      const from = await screenOf(page, 30, 20);
      await page.keyboard.down("Space");
      await page.mouse.move(from.x, from.y);
      await page.mouse.down();
      await page.mouse.move(from.x - 40, from.y + 10, { steps: 4 });
      await page.mouse.up();
      await page.keyboard.up("Space");
      const v2 = await viewOf(page);
      assert.deepEqual([v2.ox - v1.ox, v2.oy - v1.oy], [-40, 10]);
      assert.equal((await decoderCalls(page)).length, 0);

      const near = (a: number | undefined, b: number) => a !== undefined && Math.abs(a - b) <= 1 / v2.scale;
      await clickImage(page, 21.25, 14.75);
      await waitCalls(page, 1);
      await clickImage(page, 25.5, 16.25, { modifiers: ["Shift"] });
      await waitCalls(page, 2);
      await clickImage(page, 18.75, 12.5, { button: "right" });
      await waitCalls(page, 3);
      const calls = await decoderCalls(page);
      const c3 = calls[2];
      assert.deepEqual(
        c3?.points?.map((p) => p.label),
        [1, 0, 0],
      );
      const want = [
        [21.25, 14.75],
        [25.5, 16.25],
        [18.75, 12.5],
      ];
      for (const [i, [x, y]] of want.entries()) {
        const p = c3?.points?.[i];
        assert.ok(near(p?.x, x as number) && near(p?.y, y as number), `point ${i}: ${JSON.stringify(p)}`);
      }
      // each prompt refines with the previous best low-res mask (the fake fills lowRes[0] with 10 * call number)
      assert.deepEqual(
        calls.map((c) => c.maskInput),
        [null, 10, 20],
      );
      // a drag is a box, sent with the points so far
      const a = await screenOf(page, 10, 8);
      const b = await screenOf(page, 30, 20);
      await page.mouse.move(a.x, a.y);
      await page.mouse.down();
      await page.mouse.move(b.x, b.y, { steps: 5 });
      await page.mouse.up();
      await waitCalls(page, 4);
      const c4 = (await decoderCalls(page))[3];
      assert.equal(c4?.points?.length, 3);
      const box = c4?.box ?? [];
      assert.ok(near(box[0], 10) && near(box[1], 8) && near(box[2], 30) && near(box[3], 20), JSON.stringify(box));
      assert.equal(c4?.maskInput, 30);
      // Escape drops the proposal and the prompts: the next click starts afresh
      await page.keyboard.press("Escape");
      await page.waitForSelector('[data-testid="proposal"]', { state: "hidden" });
      await clickImage(page, 21.25, 14.75);
      await waitCalls(page, 5);
      const c5 = (await decoderCalls(page))[4];
      assert.equal(c5?.points?.length, 1);
      assert.equal(c5?.maskInput, null);
      assert.equal(c5?.box, null);
    });
  });

  it("brush and eraser change the saved RLE pixel by pixel; undo and redo restore the exact RLEs", async () => {
    await openApp(browser, async (page, fake) => {
      await page.keyboard.press("+"); // 8x: twice the fit
      await page.keyboard.press("b");
      await page.keyboard.press("[");
      await page.waitForSelector('[data-testid="brush-size"]:text("5px")');
      await clickImage(page, 20.5, 20.5);
      await waitPuts(page, fake, 1);
      const painted = fake.puts[0]?.body.instances ?? [];
      assert.equal(painted.length, 1);
      assert.equal(painted[0]?.source, "manual");
      assert.equal(painted[0]?.classId, 1);
      const m1 = decodeRle((painted[0] as InstanceRecord).rle);
      assert.equal(area(m1), 21); // a 5 px disc by pixel centres
      assert.equal(m1[20 * 64 + 22], 1);
      assert.equal(m1[20 * 64 + 23], 0);
      const centre = await screenOf(page, 20.5, 20.5);
      await waitForPixel(page, centre, [
        [150, 255],
        [0, 100],
        [0, 100],
      ]); // red class over grey

      await page.keyboard.press("e");
      await page.keyboard.press("[");
      await page.waitForSelector('[data-testid="brush-size"]:text("3px")');
      await clickImage(page, 20.5, 20.5);
      await waitPuts(page, fake, 2);
      const erased = fake.puts[1]?.body.instances ?? [];
      const m2 = decodeRle((erased[0] as InstanceRecord).rle);
      assert.equal(area(m2), 12);
      assert.equal(m2[20 * 64 + 20], 0);
      assert.equal(m2[20 * 64 + 22], 1);
      await waitForPixel(page, centre, [
        [128, 128],
        [128, 128],
        [128, 128],
      ]); // the erased centre shows the image again

      // a dragged eraser stroke along row 20 removes what is left of the row
      const from = await screenOf(page, 17.5, 20.5);
      const to = await screenOf(page, 24.5, 20.5);
      await page.mouse.move(from.x, from.y);
      await page.mouse.down();
      await page.mouse.move(to.x, to.y, { steps: 6 });
      await page.mouse.up();
      await waitPuts(page, fake, 3);
      const m3 = decodeRle((fake.puts[2]?.body.instances ?? [])[0]?.rle ?? { size: [0, 0], counts: "" });
      assert.equal(m3[20 * 64 + 22], 0);
      assert.ok(area(m3) < 12);

      await page.keyboard.press("Control+z");
      await waitPuts(page, fake, 4);
      assert.deepEqual(fake.puts[3]?.body.instances, erased);
      await page.keyboard.press("Control+z");
      await waitPuts(page, fake, 5);
      assert.deepEqual(fake.puts[4]?.body.instances, painted);
      await page.keyboard.press("Control+z");
      await waitPuts(page, fake, 6);
      assert.deepEqual(fake.puts[5]?.body.instances, []);
      await page.keyboard.press("Control+Shift+Z");
      await waitPuts(page, fake, 7);
      assert.deepEqual(fake.puts[6]?.body.instances, painted);
      await page.keyboard.press("Control+Shift+Z");
      await waitPuts(page, fake, 8);
      assert.deepEqual(fake.puts[7]?.body.instances, erased);
      assert.deepEqual(
        fake.puts.map((p) => p.body.baseRevision),
        [0, 1, 2, 3, 4, 5, 6, 7],
      );
    });
  });

  it("polygon, relabel, reorder, Alt+click select, delete and done each save the image at once", async () => {
    await openApp(browser, async (page, fake) => {
      await page.keyboard.press("+");
      await page.keyboard.press("p");
      for (const [x, y] of [
        [10, 10],
        [20, 10],
        [20, 20],
        [10, 20],
      ] as const) {
        await clickImage(page, x, y);
      }
      await page.keyboard.press("Enter");
      await waitPuts(page, fake, 1);
      const [poly] = fake.puts[0]?.body.instances ?? [];
      assert.equal(poly?.source, "manual");
      assert.equal(poly?.classId, 1);
      const m = decodeRle(poly?.rle ?? { size: [0, 0], counts: "" });
      assert.equal(area(m), 100); // pixels 10..19 x 10..19
      assert.equal(m[10 * 64 + 10], 1);
      assert.equal(m[20 * 64 + 20], 0);

      await page.keyboard.press("2"); // relabels the selected (new) instance
      await waitPuts(page, fake, 2);
      assert.deepEqual(
        fake.puts[1]?.body.instances.map((i) => [i.id, i.classId]),
        [[poly?.id, 2]],
      );

      await page.keyboard.press("s");
      await clickImage(page, 40.5, 30.5);
      await page.waitForSelector('[data-testid="proposal"]:not([hidden])');
      await page.keyboard.press("Enter");
      await waitPuts(page, fake, 3);
      const sam = fake.puts[2]?.body.instances[1];
      assert.equal(sam?.source, "sam");
      assert.equal(sam?.classId, 2);
      assert.equal(sam?.score, 0.9);

      await page.keyboard.press("PageDown"); // the new instance goes under the polygon
      await waitPuts(page, fake, 4);
      assert.deepEqual(
        fake.puts[3]?.body.instances.map((i) => i.id),
        [sam?.id, poly?.id],
      );

      await clickImage(page, 15, 15, { modifiers: ["Alt"] });
      await page.waitForSelector(`[data-testid="instance-row"][data-id="${poly?.id}"][aria-selected="true"]`);
      await page.keyboard.press("Delete");
      await waitPuts(page, fake, 5);
      assert.deepEqual(
        fake.puts[4]?.body.instances.map((i) => i.id),
        [sam?.id],
      );

      await page.keyboard.press("d");
      await waitPuts(page, fake, 6);
      assert.equal(fake.puts[5]?.body.state, "done");
      await page.waitForSelector('[data-testid="image-row"][data-id="a.png"][data-state="done"]');
    });
  });

  it("pre-label suggestions: drawn and listed as such, accepted with A, rejected with the list button; D waits for them", async () => {
    const suggestion = (id: string, x0: number, x1: number): InstanceRecord => ({
      id,
      classId: 1,
      rle: maskToRle(
        new Uint8Array(48 * 64).map((_, i) => (i % 64 >= x0 && i % 64 < x1 ? 1 : 0)),
        64,
        48,
      ),
      source: "prelabel",
      score: 0.8,
    });
    await openApp(
      browser,
      async (page, fake) => {
        await page.waitForSelector('[data-testid="instance-row"][data-source="prelabel"] >> nth=1');
        await page.keyboard.press("d");
        await page.waitForSelector('[data-testid="toast"][data-kind="error"]:not([hidden])');
        assert.match(
          (await page.textContent('[data-testid="toast"]')) ?? "",
          /2 pre-label suggestions are not reviewed/,
        );
        assert.equal(fake.puts.length, 0);
        await page.keyboard.press("Tab"); // selects the first instance
        await page.keyboard.press("a");
        await waitPuts(page, fake, 1);
        assert.deepEqual(
          fake.puts[0]?.body.instances.map((i) => [i.id, i.source]),
          [
            ["p1", "manual"],
            ["p2", "prelabel"],
          ],
        );
        await page.click('[data-testid="instance-row"][data-id="p2"] [data-testid="suggestion-reject"]');
        await waitPuts(page, fake, 2);
        assert.deepEqual(
          fake.puts[1]?.body.instances.map((i) => [i.id, i.source]),
          [["p1", "manual"]],
        );
        await page.keyboard.press("d");
        await waitPuts(page, fake, 3);
        assert.equal(fake.puts[2]?.body.state, "done");
      },
      undefined,
      (fake) =>
        fake.store.set("a.png", {
          revision: 3,
          state: "in-progress",
          instances: [suggestion("p1", 0, 4), suggestion("p2", 10, 12)],
        }),
    );
  });

  it("pre-label the open image with SAM (button, L): suggestions of the current class appear on the saved revision; skipped while some are unreviewed", async () => {
    await openApp(browser, async (page, fake) => {
      const options = () =>
        page.$$eval('[data-testid="prelabel-from"] option', (els) => els.map((e) => (e as HTMLOptionElement).value));
      assert.deepEqual(await options(), ["amg"]); // no pre-label model on this server: SAM only
      await page.keyboard.press("2");
      await page.click('[data-testid="prelabel-current"]');
      await page.waitForSelector('[data-testid="instance-row"][data-source="prelabel"] >> nth=1');
      assert.deepEqual(fake.prelabels, [{ id: "a.png", body: { from: "amg", classId: 2, baseRevision: 0 } }]);
      const rows = () =>
        page.$$eval('[data-testid="instance-row"]', (els) =>
          els.map((e) => [e.getAttribute("data-id"), e.getAttribute("data-class-id"), e.getAttribute("data-source")]),
        );
      assert.deepEqual(await rows(), [
        ["prelabel-1-0", "2", "prelabel"],
        ["prelabel-1-1", "2", "prelabel"],
      ]);
      assert.equal(await page.getAttribute('[data-testid="instance-row"] >> nth=0', "data-area"), String(4 * 48));
      assert.equal(await page.getAttribute('[data-testid="canvas"]', "data-revision"), "1");
      assert.match((await page.textContent('[data-testid="prelabel-status"]')) ?? "", /2 suggestions on a\.png/);

      // accepting one saves on the pre-label's revision; L again skips the image while a suggestion is unreviewed
      await page.keyboard.press("Tab");
      await page.keyboard.press("a");
      await waitPuts(page, fake, 1);
      assert.equal(fake.puts[0]?.body.baseRevision, 1);
      assert.deepEqual(
        fake.puts[0]?.body.instances.map((i) => [i.id, i.source]),
        [
          ["prelabel-1-0", "manual"],
          ["prelabel-1-1", "prelabel"],
        ],
      );
      await page.keyboard.press("l");
      await page.waitForSelector('[data-testid="prelabel-status"]:has-text("it has suggestions to review")');
      assert.equal(fake.prelabels.length, 1);

      // reject the rest, then L at once: the pre-label waits for that save and goes out on its revision
      await page.keyboard.press("Shift+X");
      await page.keyboard.press("l");
      await page.waitForSelector('[data-testid="instance-row"][data-id="prelabel-4-1"]');
      assert.deepEqual(
        fake.puts.map((p) => p.body.baseRevision),
        [1, 2],
      );
      assert.deepEqual(
        fake.prelabels.map((p) => p.body.baseRevision),
        [0, 3],
      );
      assert.deepEqual(await rows(), [
        ["prelabel-1-0", "2", "manual"],
        ["prelabel-4-0", "2", "prelabel"],
        ["prelabel-4-1", "2", "prelabel"],
      ]);
      assert.deepEqual(
        fake.store.get("a.png")?.instances.map((i) => i.id),
        ["prelabel-1-0", "prelabel-4-0", "prelabel-4-1"],
      );
    });
  });

  it("pre-label controls follow the server: the model option only with a pre-label model; without any, disabled and saying how", async () => {
    await openApp(
      browser,
      async (page, fake) => {
        assert.deepEqual(
          await page.$$eval('[data-testid="prelabel-from"] option', (els) => els.map((e) => e.textContent)),
          ["Model (--prelabel-model)"],
        );
        await page.keyboard.press("l");
        await page.waitForSelector('[data-testid="instance-row"][data-source="prelabel"]');
        assert.deepEqual(fake.prelabels, [{ id: "a.png", body: { from: "model", baseRevision: 0 } }]);
        assert.equal(await page.getAttribute('[data-testid="instance-row"]', "data-class-id"), "2");
        assert.equal(await page.getAttribute('[data-testid="instance-row"]', "data-area"), String(2 * 64));
      },
      undefined,
      (fake) => {
        fake.project = { ...fake.project, prelabel: { amg: false, model: true } };
      },
    );
    await openApp(
      browser,
      async (page, fake) => {
        for (const id of ["prelabel-from", "prelabel-current", "prelabel-all"]) {
          assert.equal(await page.isDisabled(`[data-testid="${id}"]`), true, id);
          assert.match(
            (await page.getAttribute(`[data-testid="${id}"]`, "title")) ?? "",
            /start the studio with --model DIR .* or --prelabel-model DIR/,
          );
        }
        await page.keyboard.press("l");
        await page.keyboard.press("Shift+L");
        await page.keyboard.press("d"); // a request after the keys: they sent none
        await waitPuts(page, fake, 1);
        assert.deepEqual(fake.prelabels, []);
      },
      undefined,
      (fake) => {
        fake.project = { ...fake.project, prelabel: { amg: false, model: false } };
      },
    );
  });

  it("pre-label all images: progress to the total, done images and ones with suggestions skipped, a conflict re-read and retried, a failure reported at the end", async () => {
    const column = (id: string, source: InstanceRecord["source"]): InstanceRecord => ({
      id,
      classId: 1,
      rle: maskToRle(
        new Uint8Array(24 * 32).map((_, i) => (i % 32 === 5 ? 1 : 0)),
        32,
        24,
      ),
      source,
    });
    let eRequests = 0;
    await openApp(
      browser,
      async (page, fake) => {
        await page.keyboard.press("Shift+L");
        await page.waitForSelector('[data-testid="prelabel-status"][data-state="finished"]');
        const status = await page.$eval('[data-testid="prelabel-status"]', (e) => ({ ...(e as HTMLElement).dataset }));
        assert.deepEqual(status, {
          testid: "prelabel-status",
          state: "finished",
          done: "5",
          total: "5",
          added: "4",
          skipped: "2",
          failed: "1",
        });
        assert.equal(await page.$eval('[data-testid="prelabel-progress"]', (e) => (e as HTMLProgressElement).value), 5);
        assert.equal(await page.isHidden('[data-testid="prelabel-run"]'), true);
        // b (done) and c (a suggestion) got no request; e was re-read after its 409 and retried on revision 1
        assert.deepEqual(
          fake.prelabels.map((p) => [p.id, p.body.baseRevision, p.body.classId]),
          [
            ["a.png", 0, 1],
            ["d.png", 0, 1],
            ["e.png", 0, 1],
            ["e.png", 1, 1],
          ],
        );
        assert.deepEqual(
          fake.store.get("e.png")?.instances.map((i) => [i.id, i.source]),
          [
            ["other-tab", "manual"],
            ["prelabel-2-0", "prelabel"],
            ["prelabel-2-1", "prelabel"],
          ],
        );
        assert.equal(fake.store.get("d.png"), undefined);
        // the open image shows its suggestions
        assert.deepEqual(
          await page.$$eval('[data-testid="instance-row"]', (els) => els.map((e) => e.getAttribute("data-id"))),
          ["prelabel-1-0", "prelabel-1-1"],
        );
        assert.equal(await page.textContent('[data-testid="image-row"][data-id="e.png"] .count'), "3");
        assert.equal(await page.getAttribute('[data-testid="toast"]', "data-kind"), "error");
        assert.match((await page.textContent('[data-testid="toast"]')) ?? "", /1 failed \(d\.png: the model failed\)/);
      },
      /status of (500|409)/,
      (fake) => {
        fake.images.push(
          { id: "c.png", width: 32, height: 24 },
          { id: "d.png", width: 32, height: 24 },
          { id: "e.png", width: 32, height: 24 },
        );
        fake.store.set("sub/b.png", { revision: 2, state: "done", instances: [] });
        fake.store.set("c.png", { revision: 1, state: "in-progress", instances: [column("c-1", "prelabel")] });
        fake.onPrelabel = (id) => {
          if (id === "d.png") return Promise.resolve({ status: 500, error: "the model failed" });
          if (id === "e.png" && eRequests++ === 0) {
            // another tab saved e.png after the app read it
            fake.store.set("e.png", { revision: 1, state: "in-progress", instances: [column("other-tab", "manual")] });
          }
          return undefined;
        };
      },
    );
  });

  it("pre-label all images stops after the image under way on Escape", async () => {
    let arrive = () => {};
    const arrived = new Promise<void>((resolve) => {
      arrive = resolve;
    });
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    await openApp(
      browser,
      async (page, fake) => {
        await page.click('[data-testid="prelabel-all"]');
        await arrived;
        assert.equal(await page.isVisible('[data-testid="prelabel-cancel"]'), true);
        await page.waitForSelector('[data-testid="prelabel-status"]:has-text("Pre-labels 0/2")');
        await page.keyboard.press("Escape");
        release();
        await page.waitForSelector('[data-testid="prelabel-status"][data-state="cancelled"]');
        assert.equal(await page.getAttribute('[data-testid="prelabel-status"]', "data-done"), "1");
        assert.match(
          (await page.textContent('[data-testid="prelabel-status"]')) ?? "",
          /^Pre-labels 1\/2 \(cancelled\)/,
        );
        assert.deepEqual(
          fake.prelabels.map((p) => p.id),
          ["a.png"],
        );
        await page.waitForSelector('[data-testid="instance-row"][data-source="prelabel"] >> nth=1');
      },
      undefined,
      (fake) => {
        fake.onPrelabel = async () => {
          arrive();
          await released;
          return undefined;
        };
      },
    );
  });

  it("semantic mode: each class one mask, a pixel in one class; SAM and the brush take pixels from the other classes", async () => {
    await openApp(browser, async (page, fake) => {
      await page.keyboard.press("m");
      await page.waitForSelector('[data-testid="mode"][data-mode="semantic"]');
      await page.keyboard.press("Escape"); // drops nothing: no proposal, no selection
      await page.keyboard.press("+");
      await clickImage(page, 20.5, 20.5);
      await page.waitForSelector('[data-testid="proposal"]:not([hidden])');
      await page.keyboard.press("Enter");
      await waitPuts(page, fake, 1);
      const disc1 = decodeRle(fake.puts[0]?.body.instances[0]?.rle ?? { size: [0, 0], counts: "" });
      await page.keyboard.press("2");
      await clickImage(page, 26.5, 20.5);
      await page.waitForSelector('[data-testid="proposal"]:not([hidden])');
      await page.keyboard.press("Enter");
      await waitPuts(page, fake, 2);
      const disc2 = Uint8Array.from((await decoderCalls(page))[1]?.mask ?? []);
      const byClass = (k: number) =>
        new Map((fake.puts[k]?.body.instances ?? []).map((i) => [i.classId, decodeRle(i.rle)] as const));
      const after2 = byClass(1);
      assert.deepEqual([...after2.keys()], [1, 2]);
      const c1 = after2.get(1) as Uint8Array;
      const c2 = after2.get(2) as Uint8Array;
      assert.deepEqual(c2, disc2);
      assert.deepEqual(
        c1,
        disc1.map((v, i) => (v && !disc2[i] ? 1 : 0)),
      );
      assert.ok(area(c1) < area(disc1));

      await page.keyboard.press("1");
      await page.keyboard.press("b");
      await page.keyboard.press("[");
      await clickImage(page, 26.5, 20.5);
      await waitPuts(page, fake, 3);
      const after3 = byClass(2);
      const d1 = after3.get(1) as Uint8Array;
      const d2 = after3.get(2) as Uint8Array;
      const gained = area(d1) - area(c1);
      assert.ok(gained >= 20 && gained <= 22, String(gained));
      assert.equal(area(c2) - area(d2), gained);
      assert.ok(d1.every((v, i) => !(v && d2[i])));
    });
  });

  it("with ?decode=server (and whenever the browser cannot) the app decodes on the server: prompts and the previous low-res mask go out, the mask comes back", async () => {
    await openApp(
      browser,
      async (page, fake) => {
        assert.equal(await page.textContent('[data-testid="sam-status"]'), "SAM ready (server)");
        await clickImage(page, 20.5, 20.5);
        await page.waitForSelector('[data-testid="proposal"][data-area="3072"]'); // 64 x 48
        await clickImage(page, 30.5, 10.5, { modifiers: ["Shift"] });
        await page.waitForSelector('[data-testid="proposal"][data-predictions="2"]');
        assert.equal(fake.decodes.length, 2);
        const second = fake.decodes[1];
        assert.deepEqual(
          second?.points?.map((p) => p.label),
          [1, 0],
        );
        const low = new Float32Array(Buffer.from(second?.maskInput ?? "", "base64").buffer.slice(0));
        assert.equal(low.length, 256 * 256);
        assert.equal(low[0], 1); // the first answer's low-res mask, fed back
        await page.keyboard.press("Enter");
        await waitPuts(page, fake, 1);
        assert.equal(area(decodeRle(fake.puts[0]?.body.instances[0]?.rle ?? { size: [0, 0], counts: "" })), 3072);
      },
      undefined,
      undefined,
      false,
    );
  });

  it("with a token every request carries it: the page's ?token= to the app, the stylesheet, the API and the image", async () => {
    await openApp(
      browser,
      async (page, fake) => {
        await clickImage(page, 20.5, 20.5);
        await page.waitForSelector('[data-testid="proposal"]:not([hidden])');
        await page.keyboard.press("Enter");
        await waitPuts(page, fake, 1);
        const seen = new Set(fake.requests.map((r) => r.replace(/\?.*/, "")));
        for (const r of [
          "GET /app.js",
          "GET /style.css",
          "GET /api/project",
          "GET /api/images/a.png/file",
          "PUT /api/images/a.png/annotations",
        ]) {
          assert.ok(seen.has(r), `${r} not seen (or refused): ${[...seen].join(", ")}`);
        }
        assert.ok(fake.requests.includes("GET /app.js?token=s3cret"));
        assert.ok(fake.requests.includes("GET /api/images/a.png/file?token=s3cret"));
      },
      undefined,
      (fake) => {
        fake.token = "s3cret";
      },
    );
  });

  it("the image list follows changes made elsewhere (the project revision in /api/status)", async () => {
    await openApp(browser, async (page, fake) => {
      await page.waitForSelector('[data-testid="encoder-status"][data-done="1"]');
      fake.store.set("sub/b.png", { revision: 1, state: "done", instances: [] });
      await page.waitForSelector('[data-testid="image-row"][data-id="sub/b.png"][data-state="done"]');
      assert.equal(await page.textContent('[data-testid="image-count"]'), "1/2 done");
    });
  });

  it("a save against a stale revision (another tab) gets 409: the app says so, reloads, and saves on the new revision", async () => {
    await openApp(
      browser,
      async (page, fake) => {
        // another tab saved revision 5 with one instance: the first two columns
        const otherInst: InstanceRecord = {
          id: "other-tab",
          classId: 1,
          rle: maskToRle(
            new Uint8Array(48 * 64).map((_, i) => (i % 64 < 2 ? 1 : 0)),
            64,
            48,
          ),
          source: "manual",
        };
        fake.store.set("a.png", { revision: 5, state: "in-progress", instances: [otherInst] });
        await clickImage(page, 30.5, 30.5);
        await page.waitForSelector('[data-testid="proposal"]:not([hidden])');
        let release = () => {};
        fake.gate = new Promise((resolve) => {
          release = resolve;
        });
        await page.keyboard.press("Enter");
        await page.keyboard.press("Delete"); // a second change on the version about to be replaced: never sent
        await page.waitForSelector('body[data-saving="2"]');
        fake.gate = undefined;
        release();
        await page.waitForSelector('[data-testid="toast"][data-kind="error"]:not([hidden])');
        assert.match((await page.textContent('[data-testid="toast"]')) ?? "", /changed elsewhere/);
        assert.equal(fake.puts[0]?.body.baseRevision, 0);
        await page.waitForSelector('[data-testid="canvas"][data-revision="5"]');
        await page.waitForSelector('body[data-saving="0"]');
        assert.equal(fake.puts.length, 1);
        const rows = await page.$$eval('[data-testid="instance-row"]', (els) =>
          els.map((e) => e.getAttribute("data-id")),
        );
        assert.deepEqual(rows, ["other-tab"]);
        await clickImage(page, 30.5, 30.5);
        await page.waitForSelector('[data-testid="proposal"]:not([hidden])');
        await page.keyboard.press("Enter");
        await page.waitForSelector('[data-testid="save-status"][data-revision="6"]');
        assert.equal(fake.puts[1]?.body.baseRevision, 5);
        assert.deepEqual(fake.puts[1]?.body.instances.map((i) => i.id)[0], "other-tab");
        assert.equal(fake.store.get("a.png")?.instances.length, 2);
      },
      /status of 409/,
    );
  });

  it("the help overlay lists every shortcut of the table; N and the list move between images; export", async () => {
    await openApp(browser, async (page, fake) => {
      await page.keyboard.press("?");
      await page.waitForSelector('[data-testid="help"]:not([hidden])');
      const rows = await page.$$eval('[data-testid="help-row"] td:first-child', (els) => els.map((e) => e.textContent));
      assert.deepEqual(
        rows,
        SHORTCUTS.map((s) => s.label),
      );
      await page.keyboard.press("Escape");
      await page.waitForSelector('[data-testid="help"]', { state: "hidden" });
      await page.keyboard.press("n");
      await page.waitForSelector('[data-testid="canvas"][data-image-id="sub/b.png"]');
      await page.keyboard.press("Shift+N");
      await page.waitForSelector('[data-testid="canvas"][data-image-id="a.png"]');
      // moving on right after accepting still saves the image left behind
      await clickImage(page, 20.5, 20.5);
      await page.waitForSelector('[data-testid="proposal"]:not([hidden])');
      await page.keyboard.press("Enter");
      await page.keyboard.press("n");
      await page.waitForSelector('[data-testid="canvas"][data-image-id="sub/b.png"]');
      await page.waitForSelector('body[data-saving="0"]');
      assert.deepEqual(
        fake.puts.map((p) => [p.id, p.body.instances.length]),
        [["a.png", 1]],
      );
      await page.waitForSelector('[data-testid="image-row"][data-id="a.png"][data-state="in-progress"]');
      await page.selectOption('[data-testid="export-format"]', "yolo");
      await page.click('[data-testid="export"]');
      await page.waitForSelector('[data-testid="toast"]:has-text("Exported yolo: 2 files in /out/export/yolo")');
      await page.fill('[data-testid="image-filter"]', "sub/");
      assert.deepEqual(
        await page.$$eval('[data-testid="image-row"]', (els) => els.map((e) => e.getAttribute("data-id"))),
        ["sub/b.png"],
      );
    });
  });
});
