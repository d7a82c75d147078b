import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type * as tf from "@tensorflow/tfjs";
import sharp from "sharp";
import { SegkitError } from "../core/errors.js";
import { createMask, type Mask, type RgbImage } from "../core/image.js";
import { type Palette, VOC_PALETTE } from "../core/palette.js";
import { type Dataset, subset } from "../data/dataset.js";
import { type Batch, batches } from "../data/loader.js";
import { predictBatch } from "../eval/model.js";
import { writeFileAtomic } from "../io/fs.js";
import { renderConfusionHeatmap } from "../io/heatmap.js";
import { escapeXml, FONT, type LinePanel, type LineSeries, linePlotSvg, niceTicks, svgToPng } from "../io/plot.js";
import { resizeImage, resizeMask } from "../io/resize.js";
import { colorizeMask, makeGrid } from "../io/write.js";
import { ConfusionMatrix } from "../metrics/confusion.js";
import { datasetScores } from "../metrics/reduce.js";
import type { ModelCard } from "./card.js";
import type { EpochMetrics } from "./metrics.js";
import type { StopReason } from "./schedule.js";

/**
 * Training reports, the files `fit` keeps in the run directory beside `metrics.jsonl` (see fit.ts):
 *   curves.png    train/val loss and val mIoU by epoch (two panels), the best epoch marked; rewritten every epoch
 *   samples.png   a fixed set of validation images (the same every epoch): image | truth | prediction, the masks
 *                 in the dataset's palette; rewritten every epoch with that epoch's model
 *   report.html   written when `fit` ends: one self-contained page (images inlined as base64 data URIs, inline
 *                 CSS, no scripts, nothing fetched) with the run summary, the curves, per-class scores and the
 *                 confusion matrix of the best epoch's validation, the epoch table and the samples
 * The charts are io/plot.ts's line plots (SVG rasterised by sharp), the predictions eval/model.ts's `predictBatch`.
 * Every string that reaches SVG or HTML is escaped (class names come from user files).
 */

export const REPORT_FILES = { curves: "curves.png", samples: "samples.png", html: "report.html" } as const;

export interface ReportOptions {
  /** Validation images shown in samples.png (evenly spaced over the set, the same every epoch); 0: none. */
  samples?: number;
}

export const DEFAULT_REPORT_OPTIONS: Required<ReportOptions> = { samples: 6 };

/** `options` with defaults filled in; a `SegkitError` for a bad value. */
export function validateReportOptions(options: ReportOptions = {}): Required<ReportOptions> {
  const o = { ...DEFAULT_REPORT_OPTIONS, ...options };
  if (!Number.isInteger(o.samples) || o.samples < 0) {
    throw new SegkitError(`report.samples must be an integer >= 0, got ${o.samples}`);
  }
  return o;
}

// ---------------------------------------------------------------------------------------------------------------
// curves.png

const COLORS = { train: "#1f77b4", val: "#ff7f0e", miou: "#2ca02c", best: "#d62728" } as const;

export interface CurvesOptions {
  /** The best epoch (from 1), marked by a dashed line; 0 or absent: none. */
  bestEpoch?: number;
  /** The monitored metric, named in the legend with the best epoch's value. */
  monitor?: string;
}

export const CURVES_SIZE = { width: 960, height: 380 } as const;

/**
 * The learning curves as SVG text (`CURVES_SIZE`): left, train and val loss; right, val mIoU; x = epoch. Each
 * finite value is a marker (`<circle class="point" data-series=...>`), joined by lines; NaN leaves a gap.
 */
export function curvesSvg(history: readonly EpochMetrics[], options: CurvesOptions = {}): string {
  const last = history.at(-1)?.epoch ?? 1;
  const series = (name: string, color: string, key: keyof EpochMetrics): LineSeries => ({
    name,
    color,
    points: history.map((m) => [m.epoch, m[key] as number]),
  });
  const bestEpoch = options.bestEpoch ?? 0;
  const best = history.find((m) => m.epoch === bestEpoch);
  const monitored = best && options.monitor ? best[options.monitor as keyof EpochMetrics] : undefined;
  const label = `best epoch ${bestEpoch}${typeof monitored === "number" ? ` (${options.monitor} ${fmt(monitored)})` : ""}`;
  const loss: LinePanel = {
    title: "Loss",
    xLabel: "epoch",
    yLabel: "loss",
    series: [series("train loss", COLORS.train, "train/loss"), series("val loss", COLORS.val, "val/loss")],
  };
  const miou: LinePanel = {
    title: "Validation mIoU",
    xLabel: "epoch",
    yLabel: "mIoU",
    unit: true,
    series: [series("val mIoU", COLORS.miou, "val/miou")],
  };
  return linePlotSvg([loss, miou], {
    ...CURVES_SIZE,
    xTicks: niceTicks(1, Math.max(2, last), 8, 1),
    marker: { x: bestEpoch, label, color: COLORS.best },
  });
}

/** `curvesSvg` as PNG bytes. */
export async function renderCurves(history: readonly EpochMetrics[], options: CurvesOptions = {}): Promise<Uint8Array> {
  return svgToPng(curvesSvg(history, options));
}

// ---------------------------------------------------------------------------------------------------------------
// samples.png

/** One row of samples.png: an image and its true and predicted masks, all the same size. */
export interface SampleRow {
  image: RgbImage;
  truth: Mask;
  prediction: Mask;
}

export interface SamplesOptions {
  /** The dataset's palette (index = class); classes beyond it, and the ignore index, take VOC colours. */
  palette?: Palette;
  /** Shown in the prediction column's title (`prediction, epoch 3`). */
  epoch?: number;
}

/** Column titles strip height, gap between tiles (pixels). */
export const SAMPLES_LAYOUT = { header: 24, gap: 4, minTile: 128, maxTile: 256 } as const;

/**
 * A grid of rows image | truth | prediction (masks painted in the palette) under a strip of column titles. Tiles
 * narrower than 128 px are enlarged by a whole factor (masks nearest), wider than 256 px reduced to 256, so a 32 x 32
 * input makes 128 x 128 tiles. Size: width = gap + 3 (tileW + gap), height = header + gap + rows (tileH + gap).
 */
export async function renderSamples(rows: readonly SampleRow[], options: SamplesOptions = {}): Promise<Uint8Array> {
  const { header, gap, minTile, maxTile } = SAMPLES_LAYOUT;
  const palette = Array.from({ length: 256 }, (_, k) => options.palette?.[k] ?? VOC_PALETTE[k] ?? [0, 0, 0]) as Palette;
  const tiles: RgbImage[][] = [];
  for (const r of rows) {
    const w = r.image.width;
    const scale = w < minTile ? Math.ceil(minTile / w) : w > maxTile ? maxTile / w : 1;
    const tw = Math.max(1, Math.round(w * scale));
    const th = Math.max(1, Math.round(r.image.height * scale));
    tiles.push([
      await resizeImage(r.image, tw, th),
      colorizeMask(resizeMask(r.truth, tw, th), palette),
      colorizeMask(resizeMask(r.prediction, tw, th), palette),
    ]);
  }
  const grid = makeGrid(tiles, { gap });
  const width = Math.max(grid.width, 3 * minTile);
  const colW = tiles[0]?.[0]?.width ?? minTile;
  const titles = ["image", "truth", options.epoch ? `prediction, epoch ${options.epoch}` : "prediction"];
  const text = titles
    .map(
      (t, c) =>
        `<text x="${gap + c * (colW + gap) + colW / 2}" y="${header - 7}" ${FONT} font-size="13" text-anchor="middle">${escapeXml(t)}</text>`,
    )
    .join("");
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${header}">${text}</svg>`;
  return sharp({ create: { width, height: header + grid.height, channels: 3, background: "white" } })
    .composite([
      { input: Buffer.from(svg), top: 0, left: 0 },
      {
        input: Buffer.from(grid.data.buffer, grid.data.byteOffset, grid.data.length),
        raw: { width: grid.width, height: grid.height, channels: 3 },
        top: header,
        left: 0,
      },
    ])
    .png()
    .toBuffer();
}

/**
 * The fixed validation images of samples.png: `count` samples evenly spaced over `ds` (indices floor(k n / count)),
 * at the model's input size [height, width], not augmented, as one batch; null when none loads (a bad sample is
 * left out here and reported by validation).
 */
export async function loadSampleBatch(
  ds: Dataset,
  inputSize: readonly [number, number],
  count: number,
): Promise<Batch | null> {
  const k = Math.min(count, ds.length);
  if (k === 0) return null;
  const indices = Array.from({ length: k }, (_, j) => Math.floor((j * ds.length) / k));
  for await (const batch of batches(subset(ds, indices), { size: inputSize, batchSize: k })) return batch;
  return null;
}

/** A batch and its predictions as `SampleRow`s. */
export function sampleRows(batch: Batch, predictions: Uint8Array): SampleRow[] {
  const { height: h, width: w } = batch;
  const px = h * w;
  return Array.from({ length: batch.size }, (_, b) => ({
    image: { width: w, height: h, data: batch.images.subarray(b * px * 3, (b + 1) * px * 3) },
    truth: createMask(w, h, batch.masks.subarray(b * px, (b + 1) * px)),
    prediction: createMask(w, h, predictions.subarray(b * px, (b + 1) * px)),
  }));
}

/** What `writeEpochReport` draws: the history so far, and the model with the fixed samples (null: none). */
export interface EpochReportInput {
  history: readonly EpochMetrics[];
  bestEpoch: number;
  monitor: string;
  model: tf.LayersModel;
  samples: Batch | null;
  palette?: Palette | undefined;
}

/** curves.png and (with samples) samples.png of the epoch just finished into `outDir`, each written atomically. */
export async function writeEpochReport(outDir: string, r: EpochReportInput): Promise<void> {
  const curves = await renderCurves(r.history, { bestEpoch: r.bestEpoch, monitor: r.monitor });
  await writeFileAtomic(join(outDir, REPORT_FILES.curves), curves);
  if (!r.samples) return;
  const rows = sampleRows(r.samples, await predictBatch(r.model, r.samples));
  const epoch = r.history.at(-1)?.epoch ?? 0;
  const png = await renderSamples(rows, { epoch, ...(r.palette ? { palette: r.palette } : {}) });
  await writeFileAtomic(join(outDir, REPORT_FILES.samples), png);
}

// ---------------------------------------------------------------------------------------------------------------
// report.html

/** What report.html shows: the run's last model card (architecture, data, config, best) and the run's outcome. */
export interface ReportInput {
  card: ModelCard;
  history: readonly EpochMetrics[];
  stopReason: StopReason;
  /** The epoch the run was resumed after (0: a fresh run). */
  resumedFrom: number;
  /** Wall time of the run, all sessions, seconds. */
  wallSeconds: number;
  /** The best epoch's validation confusion counts, [truth][prediction]; null when unknown. */
  confusion: readonly (readonly number[])[] | null;
  /** PNG bytes: curves.png, the confusion heatmap and samples.png (each left out when null). */
  images: { curves: Uint8Array | null; confusion: Uint8Array | null; samples: Uint8Array | null };
}

const fmt = (x: number, digits = 4) => (Number.isFinite(x) ? x.toFixed(digits) : "n/a");
const dataUri = (png: Uint8Array) => `data:image/png;base64,${Buffer.from(png).toString("base64")}`;

/** Seconds as `1 h 02 min`, `3 min 05 s` or `12.3 s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "n/a";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  const [h, m, r] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  const two = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h} h ${two(m)} min` : `${m} min ${two(r)} s`;
}

/** A config value in words: `adam (lr 0.01, beta1 0.9)` for an object with a name, `depth 2, baseFilters 8` for others. */
function describe(v: unknown): string {
  if (v === null || typeof v !== "object") return String(v);
  if (Array.isArray(v)) return `[${v.map(describe).join(", ")}]`;
  const { name, ...rest } = v as Record<string, unknown>;
  const fields = Object.entries(rest)
    .map(([k, x]) => `${k} ${describe(x)}`)
    .join(", ");
  if (typeof name !== "string") return fields;
  return fields ? `${name} (${fields})` : name;
}

const STOP_TEXT: Record<StopReason, string> = {
  completed: "completed",
  "early-stopping": "early stopping",
  aborted: "aborted",
};

const CSS = `
body { font-family: "DejaVu Sans", system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f4f4f4; } td.l, th.l { text-align: left; }
table.summary th { text-align: left; background: none; font-weight: 600; }
tr.best td { background: #fff3cd; } tr.mean td { font-weight: 600; border-top: 2px solid #ccc; }
.sw { display: inline-block; width: 0.9em; height: 0.9em; border: 1px solid #888; vertical-align: -0.1em; margin-right: 0.4em; }
img { max-width: 100%; } img.px { image-rendering: pixelated; }
.note { color: #666; font-size: 0.9em; }
`;

/** report.html as a string: self-contained (see the module comment). */
export function reportHtml(r: ReportInput): string {
  const e = escapeXml;
  const { card, history } = r;
  const cfg = card.training;
  const C = card.classes.length;
  const last = history.at(-1);
  const best = card.best;
  const rowsOf = (pairs: [string, string][]) =>
    pairs.map(([k, v]) => `<tr><th>${e(k)}</th><td class="l">${e(v)}</td></tr>`).join("");

  const summary = rowsOf([
    ["Architecture", `${card.architecture} (${describe(card.options)})`],
    [
      "Parameters",
      `${card.params.total.toLocaleString("en")} (${card.params.trainable.toLocaleString("en")} trainable)`,
    ],
    [
      "Data",
      `${card.data.format}: ${card.data.trainSamples} training, ${card.data.valSamples} validation samples; ` +
        `${C} classes; input ${card.inputSize[0]} x ${card.inputSize[1]} (H x W)`,
    ],
    [
      "Training",
      `optimizer ${describe(cfg.optimizer)}; schedule ${describe(cfg.schedule)}; loss ${describe(cfg.loss)}; ` +
        `batch size ${cfg.batchSize}, augment ${cfg.augment}, seed ${cfg.seed}` +
        (cfg.classWeights ? `, class weights ${cfg.classWeights.map((w) => fmt(w, 3)).join(", ")}` : ""),
    ],
    [
      "Epochs run",
      `${last?.epoch ?? 0} of ${cfg.epochs}${r.resumedFrom > 0 ? ` (resumed after epoch ${r.resumedFrom})` : ""}`,
    ],
    [
      "Stopped",
      STOP_TEXT[r.stopReason] +
        (r.stopReason === "early-stopping" && cfg.earlyStopping ? ` (patience ${cfg.earlyStopping.patience})` : ""),
    ],
    ["Wall time", formatDuration(r.wallSeconds)],
    [
      "Best epoch",
      best.epoch > 0 && best.value !== null
        ? `${best.epoch}: ${best.monitor} ${fmt(best.value)} (${best.mode})`
        : "none",
    ],
    ["Backend", `${card.backend}, segkit ${card.segkitVersion}`],
  ]);

  const img = (png: Uint8Array | null, alt: string, cls = "") =>
    png ? `<img${cls ? ` class="${cls}"` : ""} alt="${e(alt)}" src="${dataUri(png)}">` : `<p class="note">none</p>`;

  // per-class scores of the best epoch's validation, from its confusion matrix
  let perClass = `<p class="note">No confusion matrix was kept for the best epoch.</p>`;
  if (r.confusion) {
    const s = datasetScores(ConfusionMatrix.fromArray(r.confusion, { ignoreIndex: Math.max(card.ignoreIndex, C) }));
    const pc = s.perClass;
    const swatch = (c: number) => {
      const [R, G, B] = card.palette[c] ?? [0, 0, 0];
      return `<span class="sw" style="background: rgb(${R},${G},${B})"></span>`;
    };
    const rows = card.classes.map(
      (name, c) =>
        `<tr><td class="l">${swatch(c)}${e(name)}</td><td>${fmt(pc.iou[c] as number)}</td><td>${fmt(pc.dice[c] as number)}</td>` +
        `<td>${fmt(pc.precision[c] as number)}</td><td>${fmt(pc.recall[c] as number)}</td><td>${(pc.support[c] as number).toLocaleString("en")}</td></tr>`,
    );
    rows.push(
      `<tr class="mean"><td class="l">mean</td><td>${fmt(s.meanIoU)}</td><td>${fmt(s.meanDice)}</td>` +
        `<td>${fmt(s.meanPrecision)}</td><td>${fmt(s.meanRecall)}</td><td>${s.pixels.toLocaleString("en")}</td></tr>`,
    );
    perClass =
      `<table><tr><th class="l">class</th><th>IoU</th><th>Dice</th><th>precision</th><th>recall</th><th>pixels</th></tr>` +
      `${rows.join("")}</table>` +
      `<p>Pixel accuracy ${fmt(s.pixelAccuracy)}; frequency-weighted IoU ${fmt(s.frequencyWeightedIoU)}.</p>` +
      `<p class="note">Validation of epoch ${best.epoch}, over all its pixels at the model's input size (ignore index ` +
      `not scored). n/a: the class is absent from truth and prediction (IoU, Dice), never predicted (precision) or ` +
      `not in the truth (recall); means leave n/a out.</p>`;
  }

  const epochRows = history.map(
    (m) =>
      `<tr${m.epoch === best.epoch ? ` class="best"` : ""}><td>${m.epoch}</td><td>${m.lr.toExponential(2)}</td>` +
      `<td>${fmt(m["train/loss"])}</td><td>${fmt(m["val/loss"])}</td><td>${fmt(m["val/miou"])}</td>` +
      `<td>${fmt(m["val/pixelAccuracy"])}</td><td>${fmt(m["train/imagesPerSecond"], 1)}</td><td>${fmt(m.seconds, 1)}</td></tr>`,
  );

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>segkit training report: ${e(card.architecture)}, ${e(card.data.format)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>Training report: ${e(card.architecture)} on ${e(card.data.format)}</h1>
<h2>Run</h2>
<table class="summary">${summary}</table>
<h2>Learning curves</h2>
${img(r.images.curves, "learning curves")}
<h2>Validation of the best epoch (${best.epoch})</h2>
${perClass}
${r.images.confusion ? `<p>Confusion matrix: rows the true class (each row normalised to sum 1), columns the predicted class.</p>\n${img(r.images.confusion, "confusion matrix")}` : ""}
<h2>Epochs</h2>
<table><tr><th>epoch</th><th>lr</th><th>train loss</th><th>val loss</th><th>val mIoU</th><th>val pixel acc.</th><th>img/s</th><th>seconds</th></tr>
${epochRows.join("\n")}</table>
<h2>Samples</h2>
<p class="note">Fixed validation images with the truth and the prediction of the last epoch's model (epoch ${last?.epoch ?? 0}).</p>
${img(r.images.samples, "validation samples: image, truth, prediction", "px")}
</body>
</html>
`;
}

/** Renders the confusion heatmap and writes report.html into `outDir` (atomically); curves and samples from disk. */
export async function writeReport(outDir: string, input: Omit<ReportInput, "images">): Promise<string> {
  const read = (name: string) => readFile(join(outDir, name)).catch(() => null);
  const confusion = input.confusion
    ? await renderConfusionHeatmap(input.confusion, input.card.classes, {
        title: `Confusion, epoch ${input.card.best.epoch}`,
      })
    : null;
  const images = { curves: await read(REPORT_FILES.curves), confusion, samples: await read(REPORT_FILES.samples) };
  const file = join(outDir, REPORT_FILES.html);
  await writeFileAtomic(file, reportHtml({ ...input, images }));
  return file;
}
