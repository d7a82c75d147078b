// The studio end to end with nothing faked: the real server, project store and encoder queue on the tiny SAM fixture
// (onnxruntime-node encodes), the app bundled from src and decoding in Chromium with segkit/web (onnxruntime-web).
// A click on a disc, Enter, a reload, annotations.json on disk, the exports; the saved mask is exactly what the Node
// predictor gives for the same model, image and point. Then SAM pre-labels of a second image, accepted, and
// `segkit train --format coco` on the project.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse as parseYaml } from "yaml";
import { bundleBrowser } from "../../scripts/build-web.mjs";
import { createImage, type Mask } from "../core/image.js";
import { openDataset } from "../data/formats.js";
import type { CocoInstances } from "../export/coco.js";
import { readMask } from "../io/mask.js";
import { encodePng } from "../io/write.js";
import { polygonsToMask } from "../masks/polygon.js";
import { rleEncode, rleToString } from "../masks/rle.js";
import { CHECKPOINT_FILES } from "../models/checkpoint.js";
import { createSamPredictor } from "../sam/predictor.js";
import type { SamPoint } from "../sam/transforms.js";
import { launchBrowser, openPage } from "../test-utils/browser.js";
import { runCli } from "../test-utils/cli.js";
import { pixelAt, ready, screenOf } from "../test-utils/studio-page.js";
import type { ModelCard } from "../train/card.js";
import { createEncoderQueue, type EncoderQueue } from "./encoder-queue.js";
import { type StudioAppFile, type StudioServer, startStudioServer } from "./server.js";
import { openProjectStore, type ProjectStore } from "./store.js";

const FIXTURE_MODEL = join(import.meta.dirname, "..", "sam", "fixtures", "models", "split");
const APP_DIR = join(import.meta.dirname, "app");

const BACKGROUND = [200, 200, 200] as const;
const DISC = [220, 40, 40] as const;
/** The image clicked on: 160 x 120, a red disc of radius 24 about (64, 56) on grey; in a subdirectory. */
const TARGET = { id: "shapes/disc.png", width: 160, height: 120, cx: 64, cy: 56, r: 24 };

/** A `w` x `h` PNG: `color` inside the disc about (cx, cy) of radius r, the background elsewhere. */
function discPng(w: number, h: number, cx: number, cy: number, r: number, color: readonly number[]) {
  const img = createImage(w, h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const inside = (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r;
      img.data.set(inside ? color : BACKGROUND, (y * w + x) * 3);
    }
  }
  return encodePng(img);
}

const area = (m: Uint8Array) => m.reduce((s, v) => s + v, 0);
function iou(a: Uint8Array, b: Uint8Array): number {
  let both = 0;
  let either = 0;
  for (let i = 0; i < a.length; i++) {
    both += a[i] && b[i] ? 1 : 0;
    either += a[i] || b[i] ? 1 : 0;
  }
  return both / either;
}

describe("studio end to end (real server, encoder, segkit/web in Chromium)", { timeout: 180_000 }, () => {
  let root: string;
  let images: string;
  let store: ProjectStore;
  let encoder: EncoderQueue;
  let server: StudioServer;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "segkit-studio-e2e-"));
    images = join(root, "photos");
    const files: [string, Promise<Uint8Array>][] = [
      [TARGET.id, discPng(TARGET.width, TARGET.height, TARGET.cx, TARGET.cy, TARGET.r, DISC)],
      ["shapes/blue.png", discPng(120, 90, 70, 40, 15, [30, 30, 220])],
      ["z.png", discPng(96, 64, 20, 20, 10, [30, 200, 30])],
    ];
    for (const [name, png] of files) {
      await mkdir(dirname(join(images, name)), { recursive: true });
      await writeFile(join(images, name), await png);
    }
    store = await openProjectStore({ imagesDir: images, outDir: join(root, "labels"), classes: ["cat", "ball"] });
    encoder = await createEncoderQueue({
      model: FIXTURE_MODEL,
      cacheDir: join(store.outDir, "embeddings"),
      images: store.images,
    });
    const app = bundleBrowser("src/studio/app/main.ts");
    const appFile = async (name: StudioAppFile) => (name === "app.js" ? app : readFile(join(APP_DIR, name)));
    // segment-everything pre-labels on a 2 x 2 grid, every mask kept (the tiny model's scores are low)
    const prelabelAmg = { pointsPerSide: 2, predIouThresh: 0, stabilityScoreThresh: 0 };
    server = await startStudioServer({ store, encoder, appFile, prelabelAmg });
  });

  after(async () => {
    await server?.close();
    await encoder?.close();
    await rm(root, { recursive: true, force: true });
  });

  it("by default a page from 127.0.0.1 decodes on the server (Node's onnxruntime, faster than wasm on the same CPU)", async () => {
    const browser = await launchBrowser();
    const requests: string[] = [];
    try {
      await openPage(browser, `${server.url}#image=${encodeURIComponent(TARGET.id)}`, async (page) => {
        page.on("request", (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
        await ready(page);
        assert.equal(await page.getAttribute('[data-testid="sam-status"]', "data-decoder"), "server");
        const at = await screenOf(page, TARGET.cx + 0.5, TARGET.cy + 0.5);
        await page.mouse.click(at.x, at.y);
        await page.waitForSelector('[data-testid="proposal"][data-predictions="1"]:not([hidden])');
        const disc = await pixelAt(page, at);
        assert.notDeepEqual(disc.slice(0, 3), [...DISC]); // the proposal's colour over the disc
      });
    } finally {
      await browser.close();
    }
    assert.deepEqual(
      requests.filter((r) => r.endsWith("/decode") || r.includes("/vendor/ort/") || r.endsWith(".onnx")),
      [`POST /api/images/${encodeURIComponent(TARGET.id)}/decode`], // and no wasm or graph loaded
    );
  });

  it("click on the disc, Enter: saved as COCO RLE of class 2 equal to the Node predictor's mask; still there after a reload; PNG and YOLO exports; SAM pre-labels of another image; segkit train on the project", async () => {
    const requests: string[] = [];
    let suggested: { id: string; classId: number; source: string }[] = [];
    const browser = await launchBrowser();
    let point: SamPoint | undefined;
    let classColor: [number, number, number] | undefined;
    try {
      await openPage(browser, `${server.url}?decode=browser#image=${encodeURIComponent(TARGET.id)}`, async (page) => {
        page.on("request", (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
        await ready(page);
        // the browser decoder (segkit/web on onnxruntime-web), as asked
        assert.equal(await page.getAttribute('[data-testid="sam-status"]', "data-decoder"), "browser");
        assert.match((await page.textContent('[data-testid="sam-status"]')) ?? "", /SAM ready \(browser\)/);
        assert.equal(await page.getAttribute('[data-testid="canvas"]', "data-image-id"), TARGET.id);

        await page.keyboard.press("2");
        await page.waitForSelector('[data-testid="class-item"][data-class-id="2"].current');
        const at = await screenOf(page, TARGET.cx + 0.5, TARGET.cy + 0.5);
        await page.mouse.click(at.x, at.y);
        const proposal = await page.waitForSelector('[data-testid="proposal"][data-predictions="1"]:not([hidden])');
        const points = JSON.parse((await proposal.getAttribute("data-points")) ?? "[]") as SamPoint[];
        assert.equal(points.length, 1);
        point = points[0];
        assert.ok(
          point && point.label === 1 && Math.abs(point.x - 64.5) <= 0.5 && Math.abs(point.y - 56.5) <= 0.5,
          `the click reached the decoder at ${JSON.stringify(point)}`,
        );
        assert.equal(await proposal.getAttribute("data-count"), "3"); // one point: SAM's 3 candidates
        assert.equal(await proposal.getAttribute("data-candidate"), "0");
        assert.ok(Number(await proposal.getAttribute("data-click-to-mask-ms")) > 0);

        await page.keyboard.press("Enter");
        await page.waitForSelector('[data-testid="save-status"][data-revision="1"]', { state: "attached" });
        await page.waitForSelector('body[data-saves="1"][data-saving="0"]', { state: "attached" });
        assert.equal(await page.isHidden('[data-testid="proposal"]'), true);

        await page.reload();
        await ready(page);
        await page.waitForSelector('[data-testid="instance-row"][data-class-id="2"]');
        assert.equal(await page.locator('[data-testid="instance-row"]').count(), 1);
        assert.equal(
          await page.getAttribute(`[data-testid="image-row"][data-id="${TARGET.id}"]`, "data-state"),
          "in-progress",
        );
        const project = JSON.parse(
          await page.evaluate(async () => (await fetch("/api/project")).text()),
        ) as import("./app/api.js").ProjectInfo;
        const hex = project.classes.find((c) => c.id === 2)?.color ?? "";
        classColor = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
        // drawn: the clicked pixel (inside the mask, away from its outline) is the disc's red under the class colour
        // at the instances' fill alpha (90 / 255)
        const [r, g, b] = await pixelAt(page, await screenOf(page, TARGET.cx + 0.5, TARGET.cy + 0.5));
        const want = DISC.map((d, k) => d + ((classColor?.[k] ?? 0) - d) * (90 / 255));
        assert.ok(
          [r, g, b].every((v, k) => Math.abs((v ?? -99) - (want[k] ?? 0)) <= 3),
          `pixel ${[r, g, b]}, want about ${want.map(Math.round)}`,
        );

        for (const format of ["png", "yolo"]) {
          await page.selectOption('[data-testid="export-format"]', format);
          await page.click('[data-testid="export"]');
          await page.waitForSelector(`[data-testid="toast"]:has-text("Exported ${format}")`);
        }

        // z.png pre-labelled by SAM (segment everything) as suggestions of the current class, then all accepted
        assert.deepEqual(
          await page.$$eval('[data-testid="prelabel-from"] option', (els) => els.map((e) => e.textContent)),
          ["SAM (segment everything, current class)"], // no --prelabel-model
        );
        await page.click('[data-testid="image-row"][data-id="z.png"]');
        await page.waitForSelector('[data-testid="canvas"][data-image-id="z.png"]');
        await page.keyboard.press("1");
        await page.click('[data-testid="prelabel-current"]');
        await page.waitForSelector('[data-testid="prelabel-status"][data-state="finished"]', { state: "attached" });
        const annotations = (id: string) =>
          page.evaluate(async (u) => (await fetch(u)).json(), `/api/images/${encodeURIComponent(id)}/annotations`);
        const saved = (await annotations("z.png")) as { revision: number; instances: typeof suggested };
        suggested = saved.instances;
        assert.equal(saved.revision, 1);
        assert.equal(suggested.length, 12); // 4 points x 3 candidates: none dropped at thresholds 0
        assert.ok(suggested.every((i) => i.classId === 1 && i.source === "prelabel"));
        const rows = await page.$$eval('[data-testid="instance-row"]', (els) =>
          els.map((e) => [e.getAttribute("data-id"), e.getAttribute("data-class-id"), e.getAttribute("data-source")]),
        );
        assert.deepEqual(
          rows,
          suggested.map((i) => [i.id, "1", "prelabel"]),
        );
        await page.keyboard.press("Shift+A");
        await page.waitForSelector('[data-testid="save-status"][data-revision="2"]', { state: "attached" });
        assert.deepEqual(
          ((await annotations("z.png")) as typeof saved).instances.map((i) => [i.id, i.source]),
          suggested.map((i) => [i.id, "manual"]),
        );
      });
    } finally {
      await browser.close();
    }
    // no prompt went to the server: every decode ran in the page, on the decoder graph it fetched
    assert.deepEqual(
      requests.filter((r) => r.endsWith("/decode")),
      [],
    );
    assert.ok(requests.includes("GET /model/decoder.onnx"));
    assert.ok(requests.includes("POST /api/export"));

    // the Node predictor on the same model, image and point: its best candidate is the saved mask, pixel for pixel
    assert.ok(point);
    const predictor = await createSamPredictor(FIXTURE_MODEL);
    let best: Mask;
    try {
      await predictor.setImage(join(images, TARGET.id));
      const p = await predictor.predict({ points: [point] });
      const k = [...p.scores.keys()].reduce((a, b) => ((p.scores[b] ?? 0) > (p.scores[a] ?? 0) ? b : a), 0);
      best = p.masks[k] as Mask;
    } finally {
      await predictor.dispose();
    }
    const { width, height } = TARGET;
    assert.equal(best.data[TARGET.cy * width + TARGET.cx], 1); // a real mask: the clicked pixel, not everything
    assert.ok(area(best.data) > 100 && area(best.data) < width * height, `area ${area(best.data)}`);

    const coco = JSON.parse(await readFile(join(store.outDir, "annotations.json"), "utf8")) as CocoInstances;
    const image = coco.images.find((i) => i.file_name === TARGET.id);
    assert.deepEqual(
      coco.images.map((i) => i.file_name),
      [TARGET.id, "z.png"], // only images with instances or a state (untouched ones are no background to train on)
    );
    assert.ok(image);
    assert.deepEqual([image.width, image.height], [width, height]);
    const target = coco.annotations.filter((a) => a.image_id === image.id);
    assert.equal(target.length, 1);
    const ann = target[0];
    assert.ok(ann);
    assert.equal(ann.image_id, image.id);
    assert.equal(ann.category_id, 2);
    assert.equal(coco.categories.find((c) => c.id === 2)?.name, "ball");
    assert.equal(ann.iscrowd, 0);
    assert.deepEqual(ann.segmentation, rleToString(rleEncode(best)));
    assert.equal(ann.area, area(best.data));

    // PNG: the class-index mask of the image holds class 2 exactly on the mask, 0 elsewhere
    const png = join(store.outDir, "export", "png");
    const classes = JSON.parse(await readFile(join(png, "classes.json"), "utf8")) as { classes: string[] };
    assert.deepEqual(classes.classes, ["background", "cat", "ball"]);
    const indices = await readMask(join(png, "masks", "shapes__disc.png"));
    assert.deepEqual([indices.width, indices.height], [width, height]);
    assert.deepEqual(
      indices.data,
      best.data.map((v) => v * 2),
    );
    // YOLO: one polygon of YOLO class 1 (ball: the classes without the background), tracing the mask
    const yolo = join(store.outDir, "export", "yolo");
    const lines = (await readFile(join(yolo, "labels", "shapes__disc.txt"), "utf8")).trim().split("\n");
    assert.equal(lines.length, 1);
    const [cls, ...xy] = (lines[0] ?? "").split(" ").map(Number);
    assert.equal(cls, 1);
    assert.ok(xy.length >= 6 && xy.length % 2 === 0 && xy.every((v) => v >= 0 && v <= 1));
    const traced = polygonsToMask([xy.map((v, j) => v * (j % 2 === 0 ? width : height))], height, width);
    assert.ok(iou(traced.data, best.data) > 0.9, `YOLO polygon IoU ${iou(traced.data, best.data)}`);
    const data = parseYaml(await readFile(join(yolo, "data.yaml"), "utf8")) as { names: Record<string, string> };
    assert.deepEqual(data.names, { 0: "cat", 1: "ball" });
    const z = coco.images.find((i) => i.file_name === "z.png");
    assert.deepEqual(
      coco.annotations.filter((a) => a.image_id === z?.id).map((a) => a.category_id),
      suggested.map(() => 1),
    );

    // segkit train --format coco on the project, as README says (file_names relative to the images directory):
    // one epoch of a tiny U-Net at 32 x 32, one image to train and one to validate
    const run = join(root, "run");
    const config = join(root, "tiny.json");
    await writeFile(config, JSON.stringify({ model: { arch: "unet", options: { baseFilters: 4, depth: 2 } } }));
    const trained = await runCli([
      "train",
      store.outDir,
      "--format",
      "coco",
      "--images",
      "../photos",
      "--config",
      config,
      "--size",
      "32",
      "--epochs",
      "1",
      "--batch-size",
      "1",
      "--val-fraction",
      "0.5",
      "--out",
      run,
    ]);
    assert.equal(trained.code, 0, trained.err);
    assert.match(trained.err, /on 1 coco samples, validating on 1/);
    for (const file of CHECKPOINT_FILES) assert.ok(existsSync(join(run, "last", file)), file);
    const card = JSON.parse(await readFile(join(run, "last", "card.json"), "utf8")) as ModelCard;
    assert.deepEqual(card.classes, ["background", "cat", "ball"]);
    assert.deepEqual(card.data, { format: "coco", trainSamples: 1, valSamples: 1 });
    assert.deepEqual(card.classCategories, [null, { id: 1 }, { id: 2 }]); // the project's category ids
    // what it trained on: the two labelled images, the disc as class 2 (ball) pixel for pixel
    const dataset = await openDataset(store.outDir, { format: "coco", images: "../photos" });
    assert.deepEqual(dataset.classNames, ["background", "cat", "ball"]);
    assert.equal(dataset.length, 2);
    const disc = await dataset.get([0, 1].find((i) => dataset.id(i).includes("disc")) ?? -1);
    assert.deepEqual(
      disc.mask.data,
      best.data.map((v) => v * 2),
    );
  });
});
