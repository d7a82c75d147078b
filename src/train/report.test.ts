// The report renderers: tick placement, the curves (one marker per finite value, the best epoch's dashed line,
// the PNG size), the samples grid (layout size and the palette colours in each cell), predictions without leaked
// tensors, and report.html (the per-class scores computed by hand from a confusion matrix, escaping, inlined images,
// nothing fetched).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import sharp from "sharp";
import { initBackend } from "../backend/init.js";
import { createImage, createMask } from "../core/image.js";
import { PET_PALETTE } from "../core/palette.js";
import type { Dataset } from "../data/dataset.js";
import { createSyntheticDataset } from "../data/synthetic.js";
import { createModel } from "../models/registry.js";
import { modelCard } from "./card.js";
import { validateTrainConfig } from "./config.js";
import type { EpochMetrics } from "./metrics.js";
import {
  CURVES_SIZE,
  curvesSvg,
  formatDuration,
  loadSampleBatch,
  type ReportInput,
  renderCurves,
  renderSamples,
  reportHtml,
  sampleRows,
  validateReportOptions,
  writeReport,
} from "./report.js";

let root: string;
before(async () => {
  await initBackend();
  root = mkdtempSync(join(tmpdir(), "segkit-report-"));
});
after(() => rmSync(root, { recursive: true, force: true }));

const epoch = (e: number, trainLoss: number, valLoss: number, miou: number): EpochMetrics => ({
  epoch: e,
  lr: 1e-3,
  "train/loss": trainLoss,
  "val/loss": valLoss,
  "val/miou": miou,
  "val/pixelAccuracy": 0.5,
  "val/iou": [miou, miou],
  "train/imagesPerSecond": 10,
  seconds: 1.5,
});
const HISTORY = [epoch(1, 1.2, 1.4, Number.NaN), epoch(2, 0.8, 0.9, 0.61), epoch(3, 0.5, 0.95, 0.58)];

/** RGB of pixel (x, y) of a decoded PNG. */
async function pixels(png: Uint8Array) {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const at = (x: number, y: number) => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)];
  return { info, at };
}

describe("curves", () => {
  it("draws a marker per finite value, a gap for NaN, and the best epoch with the monitored value", async () => {
    const svg = curvesSvg(HISTORY, { bestEpoch: 2, monitor: "val/miou" });
    const count = (series: string) => svg.split(`data-series="${series}"`).length - 1;
    assert.equal(count("train loss"), 3);
    assert.equal(count("val loss"), 3);
    assert.equal(count("val mIoU"), 2); // epoch 1's NaN is left out
    assert.equal(svg.split(`class="best"`).length - 1, 2); // one line per panel
    assert.match(svg, /best epoch 2 \(val\/miou 0\.6100\)/);
    assert.equal(curvesSvg(HISTORY).split(`class="best"`).length - 1, 0);

    const png = await renderCurves(HISTORY, { bestEpoch: 2, monitor: "val/miou" });
    const { info, at } = await pixels(png);
    assert.deepEqual([info.width, info.height], [CURVES_SIZE.width, CURVES_SIZE.height]);
    // the dashed best line: epoch 2 of ticks 1..3 sits halfway between x = 62 and x = 480 - 14 of the left panel
    let red = 0;
    for (let y = 34; y < 332; y++) {
      // the 1.5 px line straddles columns 263 and 264 (anti-aliased)
      const reddish = [263, 264].some((x) => {
        const [r, g, b] = at(x, y) as [number, number, number];
        return r > 180 && r - g > 80 && r - b > 80;
      });
      if (reddish) red++;
    }
    assert.ok(red > 100 && red < 298, `${red} red pixels on the best line (dashes: about 5 of every 9)`);
    // same history, same bytes (fit relies on it to refresh the file only with new content)
    assert.deepEqual(await renderCurves(HISTORY, { bestEpoch: 2, monitor: "val/miou" }), png);
  });
});

describe("samples", () => {
  it("lays out image | truth | prediction under column titles, masks in the palette", async () => {
    const image = createImage(32, 32, new Uint8Array(32 * 32 * 3).fill(90));
    const truth = createMask(32, 32, new Uint8Array(32 * 32).fill(0));
    truth.data.fill(255, 0, 32 * 16); // top half ignored
    const prediction = createMask(32, 32, new Uint8Array(32 * 32).fill(2));
    const png = await renderSamples(
      [
        { image, truth, prediction },
        { image, truth: prediction, prediction: truth },
      ],
      { palette: PET_PALETTE, epoch: 4 },
    );
    const { info, at } = await pixels(png);
    // 32 px tiles enlarged 4x to 128; gap 4; header 24: width 4 + 3 (128 + 4), height 24 + 4 + 2 (128 + 4)
    assert.deepEqual([info.width, info.height], [400, 292]);
    const cell = (col: number, row: number, dx = 64, dy = 96) => at(4 + col * 132 + dx, 28 + row * 132 + dy);
    assert.deepEqual(cell(0, 0), [90, 90, 90]);
    assert.deepEqual(cell(1, 0), [255, 64, 64]); // class 0 in the pet palette
    assert.deepEqual(cell(1, 0, 64, 10), [224, 224, 192]); // the ignore index in VOC's colour
    assert.deepEqual(cell(2, 0), [255, 220, 0]); // class 2
    assert.deepEqual(cell(1, 1), [255, 220, 0]);
    assert.deepEqual(cell(2, 1), [255, 64, 64]);
    assert.deepEqual(at(2, 100), [255, 255, 255]); // the gap
    // the header holds the titles' dark pixels
    let dark = 0;
    for (let y = 0; y < 24; y++) for (let x = 0; x < 400; x++) if ((at(x, y)[0] as number) < 100) dark++;
    assert.ok(dark > 50, `${dark} dark pixels in the titles`);

    // large tiles: kept up to 256 px wide, reduced beyond
    const big = (w: number, h: number) => ({
      image: createImage(w, h),
      truth: createMask(w, h),
      prediction: createMask(w, h),
    });
    const m1 = await sharp(await renderSamples([big(200, 100)])).metadata();
    assert.deepEqual([m1.width, m1.height], [4 + 3 * 204, 24 + 4 + 104]);
    const m2 = await sharp(await renderSamples([big(600, 300), big(600, 300)])).metadata();
    assert.deepEqual([m2.width, m2.height], [4 + 3 * 260, 24 + 4 + 2 * 132]);
  });

  it("takes a fixed, evenly spaced set of validation samples and pairs them with predictions", async () => {
    const ds = createSyntheticDataset({ length: 10, size: 32, seed: 5 });
    const batch = await loadSampleBatch(ds, [32, 32], 4);
    assert.ok(batch);
    assert.deepEqual(batch.ids, [0, 2, 5, 7].map(ds.id)); // floor(k * 10 / 4)
    assert.equal((await loadSampleBatch(ds, [32, 32], 50))?.size, 10);
    assert.equal(await loadSampleBatch(ds, [32, 32], 0), null);

    const labels = Uint8Array.from({ length: 4 * 32 * 32 }, (_, k) => k % 3);
    const rows = sampleRows(batch, labels);
    assert.equal(rows.length, 4);
    assert.deepEqual(rows[1]?.truth.data, batch.masks.subarray(1024, 2048));
    assert.deepEqual(rows[3]?.prediction.data, labels.subarray(3072));
    assert.equal(rows[2]?.image.data.length, 32 * 32 * 3);
  });
});

describe("report.html", () => {
  /** A card for a two-class dataset whose second class name needs escaping. */
  function card(): ReportInput["card"] {
    const ds = createSyntheticDataset({ length: 4, size: 32 });
    const data: Dataset = { ...ds, classNames: ["road", `<b>&"`], palette: [...PET_PALETTE], backgroundClass: 0 };
    const config = validateTrainConfig({ epochs: 5, earlyStopping: { patience: 2 }, inputSize: [32, 32] });
    const model = createModel("unet", { numClasses: 2, inputSize: [32, 32], baseFilters: 4, depth: 2 });
    try {
      const [last, best] = [HISTORY[2] as EpochMetrics, HISTORY[1] as EpochMetrics];
      return modelCard({
        model,
        train: data,
        val: data,
        config,
        classWeights: null,
        mode: "max",
        epoch: 3,
        metrics: last,
        best,
      });
    } finally {
      model.dispose();
    }
  }

  it("holds the summary, per-class scores from the confusion matrix, escaped names and inlined images", async () => {
    const tiny = await sharp({ create: { width: 2, height: 2, channels: 3, background: "red" } })
      .png()
      .toBuffer();
    const input: ReportInput = {
      card: card(),
      history: HISTORY,
      stopReason: "early-stopping",
      resumedFrom: 1,
      wallSeconds: 65.4,
      confusion: [
        [8, 2],
        [1, 9],
      ],
      images: { curves: tiny, confusion: tiny, samples: tiny },
    };
    const html = reportHtml(input);
    // road: tp 8, fp 1, fn 2 -> IoU 8/11, Dice 16/19, precision 8/9, recall 8/10, 10 pixels
    assert.ok(html.includes("<td>0.7273</td><td>0.8421</td><td>0.8889</td><td>0.8000</td><td>10</td>"), "road row");
    // <b>&": tp 9, fp 2, fn 1 -> IoU 9/12, Dice 18/21, precision 9/11, recall 9/10
    assert.ok(html.includes("&lt;b&gt;&amp;&quot;</td><td>0.7500</td><td>0.8571</td><td>0.8182</td><td>0.9000</td>"));
    assert.ok(html.includes("<td>0.7386</td>"), "mean IoU (0.7273 + 0.75) / 2");
    assert.match(html, /Pixel accuracy 0\.8500/); // 17 / 20
    assert.ok(!html.includes(`<b>&"`), "a class name went into the page unescaped");
    // the summary
    assert.match(html, /Epochs run<\/th><td class="l">3 of 5 \(resumed after epoch 1\)/);
    assert.match(html, /early stopping \(patience 2\)/);
    assert.match(html, /Wall time<\/th><td class="l">1 min 05 s/);
    assert.match(html, /Best epoch<\/th><td class="l">2: val\/miou 0\.6100 \(max\)/);
    assert.match(html, /<tr class="best"><td>2<\/td>/);
    assert.match(html, /Parameters<\/th><td class="l">[\d,]+ \([\d,]+ trainable\)/);
    // self-contained: three inlined PNGs that decode to what went in, no scripts, no other URL
    const uris = [...html.matchAll(/src="data:image\/png;base64,([A-Za-z0-9+/=]+)"/g)];
    assert.equal(uris.length, 3);
    assert.deepEqual(Buffer.from(uris[0]?.[1] ?? "", "base64"), tiny);
    assert.ok(!/<script|<link|@import|url\(/i.test(html));
    assert.ok(!/(src|href)="(?!data:)/.test(html));

    const none = reportHtml({ ...input, confusion: null, images: { curves: null, confusion: null, samples: null } });
    assert.match(none, /No confusion matrix was kept/);
    assert.ok(!none.includes("<img"));
  });

  it("writeReport renders the confusion heatmap and inlines the curves and samples found in the run directory", async () => {
    const dir = join(root, "run");
    const input = {
      card: card(),
      history: HISTORY,
      stopReason: "completed" as const,
      resumedFrom: 0,
      wallSeconds: 3725,
      confusion: [
        [5, 0],
        [0, 5],
      ],
    };
    const file = await writeReport(dir, input); // no curves.png or samples.png yet
    const html = readFileSync(file, "utf8");
    assert.equal([...html.matchAll(/src="data:image\/png;base64,/g)].length, 1);
    assert.match(html, /1 h 02 min/);
    const heatmap = html.match(/alt="confusion matrix" src="data:image\/png;base64,([^"]+)"/)?.[1] ?? "";
    const meta = await sharp(Buffer.from(heatmap, "base64")).metadata();
    assert.equal(meta.format, "png");
    assert.ok((meta.width ?? 0) > 100 && (meta.height ?? 0) > 100);
  });

  it("formats durations and checks options", () => {
    assert.equal(formatDuration(12.34), "12.3 s");
    assert.equal(formatDuration(65.4), "1 min 05 s");
    assert.equal(formatDuration(3725), "1 h 02 min");
    assert.deepEqual(validateReportOptions(), { samples: 6 });
    assert.deepEqual(validateReportOptions({ samples: 0 }), { samples: 0 });
    assert.throws(() => validateReportOptions({ samples: 2.5 }), /report\.samples must be an integer >= 0, got 2\.5/);
  });
});
