/**
 * `segkit predict` over a folder, end to end (read and decode each file, resize, model, resize back, argmax, write
 * the palette PNG), beside what the model alone does on the same images: is a folder job limited by the model or by
 * decoding and writing? Three figures, images/s, each pass of each in turn (rounds interleaved, one warm-up round):
 * - model: the onnxruntime session alone on batches already at the input size (`createOnnxPredictor`);
 * - in memory: `predictor.predictBatch` on decoded images (resize, model, resize back, argmax; no files);
 * - end to end: `predictFiles` (what `segkit predict` runs) from the folder into a fresh directory.
 * Reported: medians with min and max over the rounds, and end to end / model as a ratio (median of the per-round
 * ratios). The model is the default `segkit train` U-Net, untrained (its speed does not depend on its weights).
 * Writes bench/results/predict.json.
 *
 *   npm run bench:predict -- [--input ../shared/datasets/camvid/val] [--size 128x128] [--repeats 5] [--batch-size 8]
 */
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { initBackend } from "../src/backend/init.js";
import { minMedianMax } from "../src/data/inspect.js";
import { predictFiles } from "../src/infer/files.js";
import { createOnnxPredictor, loadPredictor } from "../src/infer/predict.js";
import { readImage } from "../src/io/image.js";
import { saveModel } from "../src/models/io.js";
import { createModel } from "../src/models/registry.js";
import { VERSION } from "../src/version.js";
import { machine, writeResults } from "./common.js";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    input: { type: "string", default: resolve(here, "../../shared/datasets/camvid/val") },
    size: { type: "string", default: "128x128" },
    repeats: { type: "string", default: "5" },
    "batch-size": { type: "string", default: "8" },
    out: { type: "string", default: join(here, "results", "predict.json") },
  },
});
const [W, H] = args.size.split("x").map(Number) as [number, number];
const repeats = Number(args.repeats);
const batchSize = Number(args["batch-size"]);
const CLASSES = 12;

await initBackend();
const work = await mkdtemp(join(tmpdir(), "segkit-bench-predict-"));
try {
  // 1. the default U-Net, saved as a checkpoint with a card, as `segkit train` writes it
  const model = createModel("unet", { inputSize: [H, W], numClasses: CLASSES });
  const checkpoint = join(work, "model");
  await saveModel(model, checkpoint);
  const classes = Array.from({ length: CLASSES }, (_, k) => `class${k}`);
  await writeFile(
    join(checkpoint, "card.json"),
    JSON.stringify({ format: "segkit-model-card", classes, inputSize: [H, W] }),
  );
  const session = await createOnnxPredictor(model);
  model.dispose();
  const predictor = await loadPredictor(checkpoint, { batchSize });
  const files = (await readdir(args.input)).filter((f) => /\.(png|jpe?g|tiff?|webp|gif)$/i.test(f)).sort();
  const images = await Promise.all(files.map((f) => readImage(join(args.input, f))));
  const n = images.length;
  console.log(`${n} images from ${args.input}, unet at ${W}x${H}, batch ${batchSize}, engine ${predictor.engine}`);
  const input = new Float32Array(batchSize * H * W * 3).map((_, i) => (i * 7919) % 256);

  const passes = {
    model: async () => {
      for (let start = 0; start < n; start += batchSize) {
        const b = Math.min(batchSize, n - start);
        await session.predict(input.subarray(0, b * H * W * 3), b, H, W);
      }
    },
    inMemory: async () => {
      for (let start = 0; start < n; start += batchSize)
        await predictor.predictBatch(images.slice(start, start + batchSize));
    },
    endToEnd: async () => {
      const out = await mkdtemp(join(work, "pred-"));
      const summary = await predictFiles(predictor, args.input, out);
      if (summary.predicted !== n) throw new Error(`predicted ${summary.predicted} of ${n}`);
      await rm(out, { recursive: true });
    },
  };
  type Name = keyof typeof passes;
  const names = Object.keys(passes) as Name[];
  const rates: Record<Name, number[]> = { model: [], inMemory: [], endToEnd: [] };
  const loads: number[] = [];
  for (let round = 0; round <= repeats; round++) {
    for (const name of names) {
      const started = performance.now();
      await passes[name]();
      const rate = n / ((performance.now() - started) / 1000);
      if (round > 0) rates[name].push(rate);
    }
    loads.push(loadavg()[0] as number);
    if (round > 0) {
      console.log(`round ${round}: ${names.map((k) => `${k} ${rates[k].at(-1)?.toFixed(1)}`).join(", ")} images/s`);
    }
  }
  const spread = (xs: number[]) => ({ ...minMedianMax(xs), passes: xs });
  const ratio = spread(rates.endToEnd.map((r, k) => r / (rates.model[k] as number)));
  const figures = Object.fromEntries(names.map((k) => [k, spread(rates[k])])) as Record<
    Name,
    ReturnType<typeof spread>
  >;
  for (const k of names) {
    const f = figures[k];
    console.log(`${k.padEnd(9)} ${f.median.toFixed(1)} images/s (${f.min.toFixed(1)}-${f.max.toFixed(1)})`);
  }
  console.log(`end to end / model: ${ratio.median.toFixed(2)} (${ratio.min.toFixed(2)}-${ratio.max.toFixed(2)})`);
  await writeResults(args.out, {
    benchmark: "predict",
    segkit: VERSION,
    machine: machine(),
    loadAverage: minMedianMax(loads),
    input: args.input,
    images: n,
    model: { arch: "unet", inputSize: [H, W], classes: CLASSES, engine: predictor.engine },
    batchSize,
    rounds: repeats,
    imagesPerSecond: figures,
    ratios: { endToEndVsModel: ratio },
  });
  await predictor.dispose();
  await session.dispose();
} finally {
  await rm(work, { recursive: true, force: true });
}
