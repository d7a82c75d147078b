/**
 * Segmentation quality on real data: segkit's `unet` (16-32-64-128, batch norm) trained from scratch with `fit`
 * (Adam 1e-3, cosine schedule to 0, batch 8, cross-entropy, seed 0) and scored on held-out images with segkit's
 * metrics (one confusion matrix over the held-out set; ignored pixels not scored). The reported model is always
 * the LAST epoch's (nothing is selected on the scored images; `fit`'s per-epoch validation is shown as it goes).
 *
 * - pet: Oxford-IIIT Pet (../shared/datasets/oxford-iiit-pet, 2 breeds), 3-class trimaps, 128x128. Trained on
 *   90% of the official trainval split (the other 10%, seeded, is `fit`'s validation set), scored on the official
 *   test split, with `segkit train`'s defaults (see `pet` below). Both sides see exactly the same pixels: segkit's
 *   epochs draw their augmented samples, and the same arrays go to the peer, bench/peers/torch_quality.py (same
 *   U-Net, init, batch norm, loss, optimizer, schedule, batch and epochs in PyTorch); the peer's predicted labels are
 *   scored here too. Each side trains --seeds times (default 3: seeds 0, 1, 2 for initialisation, batch order and
 *   augmentation, the split fixed), the two alternating seed by seed; reported: mean mIoU over the seeds, its sample
 *   sd and range, per side. Then breeds never seen: the defaults trained on one breed, scored on both.
 * - isbi: ISBI 2012 membranes, 30 images 512x512: trained on images 0-21, scored on 22-29 (membrane F1 and pixel
 *   accuracy) with the README's recipe and commands (recipes/isbi2012.yaml: random patches at full resolution,
 *   tiled prediction; see `recipeBinary` below); its epochs are the recipe's unless --epochs.
 * - camvid: 11 classes (void ignored), trained on `train` (367) with the README's recipe and commands
 *   (recipes/camvid.yaml), scored on `test` or, without one, `val` (101) at 480x360; reported next to SegNet's
 *   published figures, with snapshots for the curve; its epochs are the recipe's unless --epochs.
 * - drive: DRIVE training half (images 21-40): trained on 21-35, scored on 36-40, vessel F1 and accuracy inside
 *   the field of view, with the README's recipe and commands (recipes/drive.yaml: random patches at full
 *   resolution, tiled prediction; see `recipeBinary` below); its epochs are the recipe's unless --epochs.
 *
 * Instance segmentation, the CPU-sized route (`segkit train --task instance`: a U-Net learns background / boundary /
 * one interior class per category, `targetsToInstances` splits its maps into instances), scored on held-out images
 * with COCOeval (segm and bbox AP, AP50, AP75; bench/quality-instances.ts). Sized for a few minutes each on an
 * idle 2-core machine (`--epochs N` for longer runs):
 * - synthetic-instances: the built-in set at 128x128, trained on seed 0's images, scored on seed 2's.
 * - isbi-cells: ISBI 2012's cells (the regions between membranes, `openDataset(..., { task: "instance" })`) on 4x4
 *   tiles of 128x128 of images 0-21, scored on the full 512x512 images 22-29 predicted with sliding windows.
 *
 * Writes bench/results/quality.json (entries of the datasets run replace those of earlier runs) and the table
 * bench/results/quality.md made from it. `--quick`: 1 epoch on a few images, written to quality-quick.*.
 *
 *   npm run bench:quality -- --dataset pet|isbi|camvid|drive|synthetic-instances|isbi-cells|all [--epochs N]
 *     [--seeds 3] [--quick]
 *     [--root ../shared/datasets] [--runs <tmp>/segkit-quality] [--threads 2]
 */
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type * as tf from "@tensorflow/tfjs";
import { initBackend, wasmThreads } from "../src/backend/init.js";
import { main } from "../src/cli/main.js";
import type { SkippedSample } from "../src/core/skipped.js";
import { type Dataset, subset } from "../src/data/dataset.js";
import { defaultEvalSplit, openDataset } from "../src/data/formats.js";
import { instanceTargetDataset } from "../src/data/instance-targets.js";
import { splitDataset } from "../src/data/loader.js";
import type { EvaluationReport } from "../src/eval/evaluate.js";
import { evaluateModel } from "../src/eval/model.js";
import { writeFileAtomic } from "../src/io/fs.js";
import { linePlotSvg, niceTicks, svgToPng } from "../src/io/plot.js";
import { ConfusionMatrix } from "../src/metrics/confusion.js";
import { datasetScores } from "../src/metrics/reduce.js";
import { modelInfo } from "../src/models/info.js";
import { loadModel } from "../src/models/io.js";
import type { ModelCard } from "../src/train/card.js";
import { DEFAULT_TRAIN_CONFIG, type TrainConfig } from "../src/train/config.js";
import { fit } from "../src/train/fit.js";
import { type EpochMetrics, formatEpochLine } from "../src/train/metrics.js";
import { VERSION } from "../src/version.js";
import { machine, runPythonPeer, writeResults } from "./common.js";
import { arraysDataset, cached, loadArrays, tiled, writeArrays } from "./quality-data.js";
import { type CocoStats, scoreInstanceModel } from "./quality-instances.js";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    dataset: { type: "string", default: "all" },
    epochs: { type: "string" },
    quick: { type: "boolean", default: false },
    root: { type: "string", default: join(here, "..", "..", "shared", "datasets") },
    runs: { type: "string", default: join(tmpdir(), "segkit-quality") },
    threads: { type: "string", default: "2" },
    seeds: { type: "string", default: "3" },
  },
});
const DATASETS = ["pet", "isbi", "camvid", "drive", "synthetic-instances", "isbi-cells"] as const;
type DatasetName = (typeof DATASETS)[number];
const chosen = args.dataset === "all" ? [...DATASETS] : (args.dataset.split(",") as DatasetName[]);
const unknown = chosen.filter((d) => !DATASETS.includes(d));
if (unknown.length > 0) throw new Error(`unknown dataset ${unknown.join(", ")}; valid: ${DATASETS.join(", ")}, all`);
const QUICK = args.quick;
const SEED = 0;
const THREADS = Number(args.threads);
/** Pet only: seeds SEED..SEED+SEEDS-1 per side (weight initialisation and batch order; the split stays seed 0's). */
const SEEDS = Number(args.seeds);

/** The recipe every dataset shares; each adds input size, epochs, augmentation and class weights. */
const COMMON = {
  model: { arch: "unet", options: { baseFilters: 16, depth: 4 } },
  loss: "ce",
  optimizer: { name: "adam", lr: 1e-3 },
  schedule: "cosine",
  batchSize: 8,
  seed: SEED,
} satisfies TrainConfig;
const RECIPE_TEXT = "unet 16-32-64-128 (batch norm), from scratch; Adam(1e-3), cosine to 0; batch 8; cross-entropy";
/**
 * The instance runs' changes to the recipe, for their few minutes of training: no batch norm (with its moving
 * statistics still far from the data after about 200 steps, the inference-mode model predicted background only),
 * batch 4 (twice the steps for the same images) and median-frequency class weights (without them the model stayed at
 * the class priors, background everywhere, for 3 epochs).
 */
const INSTANCE_RECIPE = {
  model: { arch: "unet", options: { baseFilters: 16, depth: 4, batchNorm: false } },
  batchSize: 4,
  classWeights: "auto",
} satisfies TrainConfig;
const INSTANCE_RECIPE_TEXT =
  "unet 16-32-64-128 without batch norm, from scratch; Adam(1e-3), cosine to 0; batch 4; cross-entropy with median-frequency class weights";

/** Default epochs, budgeted for about 80 minutes for all four at ~8.5 images/s at 128x128 (see bench/README.md). */
const EPOCHS: Record<DatasetName, number> = {
  pet: 15, // the issue's `segkit train <pet dir> --epochs 15`
  isbi: 0, // the recipe's (recipes/isbi2012.yaml)
  camvid: 0, // the recipe's (recipes/camvid.yaml)
  drive: 0, // the recipe's (recipes/drive.yaml)
  // instance runs: a few minutes each on an idle 2-core machine (5 synthetic epochs are too few: AP 0.008, see
  // bench/README.md); --epochs N for longer runs
  "synthetic-instances": 15,
  "isbi-cells": 5,
};
const epochsOf = (d: DatasetName) => (args.epochs ? Number(args.epochs) : QUICK ? 1 : EPOCHS[d]);

/**
 * SegNet on CamVid as published: Badrinarayanan, Kendall, Cipolla, "SegNet: A Deep Convolutional Encoder-Decoder
 * Architecture for Image Segmentation", IEEE TPAMI 39(12), 2017, Table 2, SegNet row (11 classes, test set of 233
 * images at 360x480, percent). Class average = mean over classes of per-class accuracy (recall). The class average
 * and mIoU are the SegNet figures ENet's CamVid table also quotes (Paszke et al. 2016); global accuracy is as
 * remembered from Table 2 and not printed.
 */
const SEGNET_CAMVID = { classAverageAccuracy: 65.2, globalAccuracy: 88.5, meanIoU: 55.6 };

const skips: SkippedSample[] = [];
const onSkip = (s: SkippedSample) => {
  skips.push(s);
  console.log(`  skipped ${s.path}: ${s.reason}`);
};
/** The first n samples (quick mode) or all. */
const few = (ds: Dataset, n: number) => (QUICK ? subset(ds, [...Array(Math.min(n, ds.length)).keys()]) : ds);
/** Sample indices in the numeric order of their ids (ISBI `0`..`29`, DRIVE `21`..`40`). */
const byNumber = (ds: Dataset) => [...Array(ds.length).keys()].sort((a, b) => Number(ds.id(a)) - Number(ds.id(b)));
/** Ids for the report: `a-b` for a run of consecutive numbers, else listed. */
const idRange = (ids: number[]) =>
  ids.length > 2 && ids.every((v, k) => k === 0 || v === (ids[k - 1] as number) + 1)
    ? `${ids[0]}-${ids.at(-1)}`
    : ids.join(",");
const seconds = (since: number) => (performance.now() - since) / 1000;
/** The ids of samples `indices` of `ds` for the report (`idRange`). */
const idList = (ds: Dataset, indices: number[]) => idRange(indices.map((i) => Number(ds.id(i))));

/** Trains with `fit` (last epoch kept) and returns the model of the last epoch and the timings. */
async function train(name: string, trainDs: Dataset, valDs: Dataset, config: TrainConfig, base: TrainConfig = COMMON) {
  const epochs = config.epochs ?? 0;
  console.log(`  fit: ${trainDs.length} train / ${valDs.length} val samples, ${epochs} epochs`);
  const started = performance.now();
  const summary = await fit(
    trainDs,
    valDs,
    { ...base, ...config },
    {
      outDir: join(args.runs, name),
      overwrite: true,
      onSkip,
      onEpoch: (m) => console.log(`  ${formatEpochLine(m, epochs, trainDs.classNames)}`),
    },
  );
  const fitSeconds = seconds(started);
  const last = summary.checkpoints.last;
  if (!last) throw new Error(`${name}: fit wrote no checkpoint`);
  const trainSeconds = summary.history.reduce((s, m) => s + trainDs.length / m["train/imagesPerSecond"], 0);
  const model = await loadModel(last);
  return {
    model,
    timing: {
      params: modelInfo(model).trainableParams,
      fitSeconds,
      trainSeconds,
      imagesPerSecond: (trainDs.length * summary.epochs) / trainSeconds,
      epochs: summary.epochs,
    },
    history: summary.history,
    runDir: summary.outDir,
    checkpoint: last,
  };
}

/** The confusion matrix of `model`'s predictions (argmax) on `ds` resized to the model's input `size`. */
async function confusion(model: tf.LayersModel, ds: Dataset, size: readonly [number, number]) {
  const scores = await evaluateModel(model, ds, { inputSize: size, batchSize: 8, onSkip });
  return ConfusionMatrix.fromArray(scores.confusion, { ignoreIndex: ds.ignoreIndex });
}

/** mIoU, pixel accuracy, class-average accuracy (mean recall) and IoU per class (by name; null if undefined). */
function multiclass(cm: ConfusionMatrix, classNames: readonly string[]) {
  const s = datasetScores(cm);
  return {
    miou: s.meanIoU,
    pixelAccuracy: s.pixelAccuracy,
    classAverageAccuracy: s.meanRecall,
    iou: Object.fromEntries(classNames.map((c, i) => [c, s.perClass.iou[i] ?? null])),
  };
}

/** Mean, sample standard deviation, lowest and highest of `xs`. */
function spread(xs: number[]) {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, sd, min: Math.min(...xs), max: Math.max(...xs) };
}

/** Per-seed multiclass figures (and timings) averaged over the seeds; `miouSpread` gives mean, sd and range. */
function overSeeds<T extends ReturnType<typeof multiclass>>(runs: (T & Record<string, unknown>)[]) {
  const mean = (key: string) => spread(runs.map((r) => r[key] as number)).mean;
  const first = runs[0] as T;
  return {
    miou: mean("miou"),
    miouSpread: spread(runs.map((r) => r.miou)),
    pixelAccuracy: mean("pixelAccuracy"),
    classAverageAccuracy: mean("classAverageAccuracy"),
    iou: Object.fromEntries(
      Object.keys(first.iou).map((c) => [c, spread(runs.map((r) => r.iou[c] ?? Number.NaN)).mean]),
    ),
    trainSeconds: mean("trainSeconds"),
    imagesPerSecond: mean("imagesPerSecond"),
    seeds: runs,
  };
}

/** The breed of an Oxford-IIIT Pet id (`american_bulldog_12` -> `american_bulldog`). */
const breedOf = (id: string) => id.replace(/_\d+$/, "");

/**
 * Oxford Pet with `segkit train`'s defaults (what `segkit train <pet dir> --epochs 15` runs: DEFAULT_TRAIN_CONFIG),
 * against the same recipe in PyTorch: per seed, segkit's `fit` on the decoded samples, then the peer on arrays of
 * the very samples segkit's epochs saw (`loadArrays` with segkit's augmentation and the seed's draws, one pair per
 * epoch), both scored on the official test split at 128x128. Then breeds never seen: per breed, the defaults
 * trained on that breed's trainval only and scored on the test images of that breed and of the other.
 */
async function pet() {
  const d = DEFAULT_TRAIN_CONFIG;
  const size = d.inputSize;
  const epochs = epochsOf("pet");
  const root = join(args.root, "oxford-iiit-pet");
  const trainval = few(await openDataset(root, { format: "oxford-pet", split: "trainval" }), 24);
  const testSet = few(await openDataset(root, { format: "oxford-pet", split: "test" }), 16);
  const [trainPart, valPart] = splitDataset(trainval, [0.9, 0.1], SEED).map(cached) as [Dataset, Dataset];
  const testA = await loadArrays(testSet, size, onSkip);
  const test = arraysDataset(testSet, testA);
  const dir = await mkdtemp(join(tmpdir(), "segkit-quality-pet-"));
  const mine: (ReturnType<typeof multiclass> & Record<string, unknown>)[] = [];
  const theirs: (ReturnType<typeof multiclass> & Record<string, unknown>)[] = [];
  let peerMissing = false;
  try {
    const testFiles = await writeArrays(dir, "test", testA);
    // per seed, segkit then the PyTorch peer: the two sides alternate, so that a slower stretch of the machine falls
    // on both
    for (let seed = SEED; seed < SEED + SEEDS; seed++) {
      console.log(`  seed ${seed} (${seed - SEED + 1}/${SEEDS})`);
      const run = await train("pet", trainPart, valPart, { epochs, seed }, {});
      mine.push({
        seed,
        ...multiclass(await confusion(run.model, test, size), test.classNames),
        ...run.timing,
        history: run.history,
      });
      run.model.dispose();
      if (peerMissing) continue;
      const trainEpochs = [];
      for (let epoch = 1; epoch <= epochs; epoch++) {
        const a = await loadArrays(trainPart, size, onSkip, { augment: d.augment, seed, epoch });
        trainEpochs.push(await writeArrays(dir, `train-${epoch}`, a));
      }
      const manifest = {
        size,
        classes: test.classNames.length,
        ignoreIndex: test.ignoreIndex,
        epochs,
        batchSize: d.batchSize,
        lr: d.optimizer.lr,
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-7,
        loss: d.loss,
        bnMomentum: d.batchNormMomentum,
        seed,
        threads: THREADS,
        train: trainEpochs[0],
        trainEpochs,
        test: testFiles,
        predictions: join(dir, "predictions.bin"),
      };
      await writeFile(join(dir, "manifest.json"), JSON.stringify(manifest));
      console.log(
        `  PyTorch peer: ${trainPart.length} train images, ${epochs} epochs, seed ${seed} (no output until it ends)`,
      );
      const peer = runPythonPeer<{ trainSeconds: number; wallSeconds: number; imagesPerSecond: number }>(
        join(here, "peers", "torch_quality.py"),
        [join(dir, "manifest.json")],
        "apt-get install -y python3-torch python3-numpy",
      );
      if (!peer) {
        peerMissing = true;
        continue;
      }
      const cm = new ConfusionMatrix(test.classNames.length, { ignoreIndex: test.ignoreIndex });
      cm.update(testA.masks, new Uint8Array(await readFile(manifest.predictions)), undefined, "PyTorch predictions");
      theirs.push({ seed, ...multiclass(cm, test.classNames), ...peer });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  // breeds never seen: trained on one breed, scored on both breeds' test images
  const idsOf = (ds: Dataset, breed: string) => [...Array(ds.length).keys()].filter((i) => breedOf(ds.id(i)) === breed);
  const breeds = [...new Set([...Array(trainval.length).keys()].map((i) => breedOf(trainval.id(i))))];
  const unseen = [];
  for (const breed of breeds) {
    const own = subset(trainval, idsOf(trainval, breed));
    const [t, v] = splitDataset(own, [0.9, 0.1], SEED).map(cached) as [Dataset, Dataset];
    const run = await train(`pet-${breed}`, t, v, { epochs, seed: SEED }, {});
    const scores = Object.fromEntries(
      await Promise.all(
        breeds.map(async (b) => {
          const ds = subset(testSet, idsOf(testSet, b));
          return [b, { images: ds.length, ...multiclass(await confusion(run.model, ds, size), ds.classNames) }];
        }),
      ),
    );
    run.model.dispose();
    const seenMiou = scores[breed].miou as number;
    const others = breeds.filter((b) => b !== breed).map((b) => scores[b].miou as number);
    console.log(`  trained on ${breed} (${t.length}): ${breeds.map((b) => `${b} ${f3(scores[b].miou)}`).join(", ")}`);
    unseen.push({ trainedOn: breed, trainImages: t.length, scores, gap: seenMiou - Math.min(...others) });
  }
  const segkit = overSeeds(mine);
  const pytorch = theirs.length > 0 ? overSeeds(theirs) : null;
  return {
    title: "Oxford-IIIT Pet, 3-class trimaps (pet, background, border)",
    recipe: `segkit train's defaults: ${recipeOf(d)}`,
    split: `official trainval: ${trainPart.length} train + ${valPart.length} val (seeded 90/10, val only watched); official test: ${testA.n}`,
    inputSize: size,
    scoredAt: "128x128 (images bilinear, masks nearest)",
    augment: d.augment,
    classWeights: null,
    epochs,
    seeds: SEEDS,
    metric: `test mIoU, mean over ${SEEDS} seed${SEEDS > 1 ? "s" : ""} per side`,
    segkit,
    pytorch,
    difference: pytorch ? { miou: segkit.miou - pytorch.miou } : null,
    unseenBreeds: unseen,
    goal: "segkit mean mIoU >= PyTorch mean mIoU; on breeds never seen within 0.05 of the breed trained on",
  };
}

const f3 = (v: unknown) => (typeof v === "number" ? v.toFixed(3) : "n/a");

/** A resolved config's recipe in one line. */
function recipeOf(c: typeof DEFAULT_TRAIN_CONFIG): string {
  const m = c.model;
  const model = m.arch ? `${m.arch} ${JSON.stringify(m.options)}` : "composed";
  return `${model}, batch norm momentum ${c.batchNormMomentum}; loss ${JSON.stringify(c.loss)}; ${c.optimizer.name}(${c.optimizer.lr}), ${c.schedule.name}; batch ${c.batchSize}; augment ${JSON.stringify(c.augment)}`;
}

/** The number of points of the CamVid curve (snapshots scored at 480x360); the last epoch is always one. */
const CURVE_POINTS = 8;

/**
 * CamVid with the recipe the README gives, run as its commands (`segkit train --config recipes/camvid.yaml`,
 * `segkit predict`, `segkit eval`) in this process. The shared copy has `train` and `val` only (not the `test` split
 * papers report): the model trains on `train` (`fit` validates on `val` at the input size, only watched: `best/` is
 * picked by the training loss), predicts the held-out images at their 480x360 as its card says, and `segkit eval`
 * with no split flag scores its default held-out split (`test` when the dataset has it, else `val`). The curve: after
 * every epoch `last/` is copied with the process's CPU and wall time then; after training, up to `CURVE_POINTS` of
 * the copies (evenly spaced, with the last) are predicted and scored the same way: mIoU against training minutes.
 */
async function camvid() {
  const recipe = join(here, "..", "recipes", "camvid.yaml");
  const work = join(args.runs, "camvid");
  await rm(work, { recursive: true, force: true });
  let data = join(args.root, "camvid");
  if (QUICK) {
    // 8 train and 4 val images, linked into a CamVid layout
    const source = data;
    data = join(work, "data");
    for (const [split, n] of [
      ["train", 8],
      ["val", 4],
    ] as const) {
      const names = (await readdir(join(source, split))).sort().slice(0, n);
      for (const dir of [split, `${split}annot`]) {
        await mkdir(join(data, dir), { recursive: true });
        for (const f of names) await symlink(join(source, dir, f), join(data, dir, f));
      }
    }
  }
  const heldOut = defaultEvalSplit(data, "camvid")?.split ?? "val";
  const runDir = join(work, "run");
  const snapshots = join(work, "snapshots");
  const epochsFlag = QUICK ? ["--epochs", "1"] : args.epochs ? ["--epochs", args.epochs] : [];
  const argv = ["train", data, "--format", "camvid", "--config", recipe, "--out", runDir, ...epochsFlag];
  const training = await timedTrain(argv, runDir, snapshots);
  // predict the held-out images as the card says and score them with `segkit eval` as the README does
  const score = async (model: string, name: string) => {
    const pred = join(work, `pred-${name}`);
    await cli(["predict", "--model", model, "--input", join(data, heldOut), "--out", pred]);
    const json = join(work, `eval-${name}.json`);
    await cli(["eval", "--pred", pred, "--gt", data, "--json", json, "--heatmap", join(work, `confusion-${name}.png`)]);
    return JSON.parse(await readFile(json, "utf8")) as EvaluationReport;
  };
  const r = await score(join(runDir, "best"), "best");
  const step = Math.max(1, Math.ceil(training.snapshots.length / CURVE_POINTS));
  const curve = [];
  for (const [k, s] of training.snapshots.entries()) {
    if ((k + 1) % step !== 0 && k !== training.snapshots.length - 1) continue;
    const e = await score(s.dir, `e${s.epoch}`);
    curve.push({
      ...s,
      dir: undefined,
      miou: e.miou,
      classAverageAccuracy: e.meanRecall,
      pixelAccuracy: e.pixelAccuracy,
    });
    console.log(`  epoch ${s.epoch}: ${(s.cpuSeconds / 60).toFixed(1)} CPU min, mIoU ${e.miou.toFixed(3)}`);
  }
  const card = JSON.parse(await readFile(join(runDir, "best", "card.json"), "utf8")) as ModelCard;
  const history = await readHistory(runDir);
  const trainSeconds = history.reduce((t, m) => t + m.seconds, 0);
  return {
    title: "CamVid, 11 classes (void ignored)",
    split: `train (${card.data.trainSamples}); scored on ${heldOut} (${r.images})${heldOut === "val" ? ": the shared copy has no test split" : ""}`,
    recipe: `recipes/camvid.yaml: ${recipeText(card)}`,
    inputSize: card.inputSize,
    scoredAt: `480x360 (${predictText(card)}), best/ by train loss`,
    augment: card.training.augment,
    classWeights: card.training.classWeights,
    epochs: history.length,
    metric: `${heldOut} mIoU / class-average accuracy`,
    segkit: {
      miou: r.miou,
      pixelAccuracy: r.pixelAccuracy,
      classAverageAccuracy: r.meanRecall,
      iou: Object.fromEntries(r.perClass.map((c) => [c.name, c.iou])),
      trainSeconds,
      imagesPerSecond:
        (card.data.trainSamples * (card.training.patches?.perImage ?? 1) * history.length) / trainSeconds,
      ...training.timing,
    },
    curve,
    segnet: {
      ...SEGNET_CAMVID,
      source:
        "Badrinarayanan et al., SegNet, IEEE TPAMI 39(12) 2017, Table 2: CamVid test set (233 images), 360x480, percent",
    },
    history,
    runDir,
  };
}

/** A binary recipe's run: its data linked into a train / held-out layout, trained, predicted and scored by the CLI. */
interface RecipeRun {
  name: "isbi" | "drive";
  /** The dataset under ../shared/datasets, and its sample ids (all; quick mode: 2 train, 1 held out). */
  dir: string;
  ids: number[];
  quickIds: number[];
  /** Whether sample `id` is held out, and its files: `from` in the dataset, `to` in the layout. */
  heldOut: (id: number) => boolean;
  files: (id: number, heldOut: boolean) => { from: string; to: string }[];
  /** The layout's held-out images, relative to it. */
  testImages: string;
  format: string;
  title: string;
  scoredAt: string;
  metric: string;
  reference: string;
}

/**
 * A binary recipe run as the README gives its commands (`segkit train --config recipes/<format>.yaml`, `segkit
 * predict`, `segkit eval`) in this process: the shared copy's images linked as a dataset with a held-out half. The
 * model trains on random patches at full resolution (validation, only watched, on patches of the held-out half;
 * `best/` picked by the training loss), predicts the held-out images in tiles as its card says, and is scored (DRIVE:
 * inside the field of view). Records wall time, the process's CPU time and the load average over the training.
 */
async function recipeBinary(o: RecipeRun) {
  const recipe = join(here, "..", "recipes", `${o.format}.yaml`);
  const work = join(args.runs, o.name);
  const layout = join(work, "data");
  await rm(work, { recursive: true, force: true });
  const ids = QUICK ? o.quickIds : o.ids;
  for (const id of ids) {
    for (const { from, to } of o.files(id, o.heldOut(id))) {
      await mkdir(dirname(join(layout, to)), { recursive: true });
      await symlink(join(args.root, o.dir, from), join(layout, to));
    }
  }
  const runDir = join(work, "run");
  // 1. train
  const quick = QUICK ? ["--epochs", "1"] : args.epochs ? ["--epochs", args.epochs] : [];
  const training = await timedTrain(
    ["train", layout, "--format", o.format, "--config", recipe, "--out", runDir, ...quick],
    runDir,
  );
  // 2. predict the held-out images as the card says, 3. score them (eval takes the held-out split by default)
  const pred = join(work, "pred");
  await cli(["predict", "--model", join(runDir, "best"), "--input", join(layout, o.testImages), "--out", pred]);
  const report = join(work, "eval.json");
  const heatmap = join(work, "confusion.png");
  await cli(["eval", "--pred", pred, "--gt", layout, "--format", o.format, "--json", report, "--heatmap", heatmap]);
  const r = JSON.parse(await readFile(report, "utf8")) as EvaluationReport;
  const fg = r.perClass[1] as EvaluationReport["perClass"][number];
  const card = JSON.parse(await readFile(join(runDir, "best", "card.json"), "utf8")) as ModelCard;
  const history = await readHistory(runDir);
  const trainSeconds = history.reduce((t: number, m: EpochMetrics) => t + m.seconds, 0);
  const patches = card.data.trainSamples * (card.training.patches?.perImage ?? 1) * history.length;
  const overlap = card.predict.mode === "tile" ? card.predict.overlap : 0;
  return {
    title: o.title,
    split: `train images ${idRange(ids.filter((i) => !o.heldOut(i)))}; scored on ${idRange(ids.filter(o.heldOut))}`,
    recipe: `recipes/${o.format}.yaml: ${recipeText(card)}`,
    inputSize: card.inputSize,
    scoredAt: `${o.scoredAt} (tiles of ${card.inputSize.join("x")}, overlap ${overlap}), best/ by train loss`,
    augment: card.training.augment,
    classWeights: card.training.classWeights,
    epochs: history.length,
    metric: o.metric,
    reference: o.reference,
    segkit: {
      f1: fg.dice,
      iou: fg.iou,
      precision: fg.precision,
      recall: fg.recall,
      accuracy: r.pixelAccuracy,
      trainSeconds,
      imagesPerSecond: patches / trainSeconds,
      ...training.timing,
    },
    history,
    runDir,
  };
}

/** ISBI 2012 with recipes/isbi2012.yaml: images 0-21 linked as `train`, 22-29 as `test` (labels public for 0-29 only). */
const isbi = () =>
  recipeBinary({
    name: "isbi",
    dir: "isbi2012-membrane",
    ids: Array.from({ length: 30 }, (_, k) => k),
    quickIds: [0, 1, 22],
    heldOut: (id) => id >= 22,
    files: (id, held) =>
      ["image", "label"].map((d) => ({
        from: join("train", d, `${id}.png`),
        to: join(held ? "test" : "train", d, `${id}.png`),
      })),
    testImages: join("test", "image"),
    format: "isbi2012",
    title: "ISBI 2012 EM membranes (membrane = class 1)",
    scoredAt: "512x512 full resolution",
    metric: "membrane F1 / pixel accuracy",
    reference: "U-Net (challenge test set, labels not public): pixel error 0.0611, i.e. accuracy 0.939",
  });

/** DRIVE with recipes/drive.yaml: images 21-35 linked as the `training` half, 36-40 as `test` (the shared copy is DRIVE's training half). */
const drive = () =>
  recipeBinary({
    name: "drive",
    dir: join("drive", "training"),
    ids: Array.from({ length: 20 }, (_, k) => 21 + k),
    quickIds: [21, 22, 36],
    heldOut: (id) => id >= 36,
    files: (id, held) =>
      [
        ["images", `${id}_training.tif`],
        ["1st_manual", `${id}_manual1.gif`],
        ["mask", `${id}_training_mask.gif`],
      ].map(([d, f]) => ({
        from: join(d as string, f as string),
        to: join(held ? "test" : "training", d as string, f as string),
      })),
    testImages: join("test", "images"),
    format: "drive",
    title: "DRIVE retinal vessels (vessel = class 1), scored inside the field of view",
    scoredAt: "565x584 full resolution",
    metric: "vessel F1 / accuracy in FOV",
    reference: "published U-Nets (DRIVE test set): F1 0.80-0.82",
  });

/** Runs `segkit argv` in this process; a non-zero exit is an error. */
async function cli(argv: string[]) {
  console.log(`  segkit ${argv.join(" ")}`);
  const code = await main(argv);
  if (code !== 0) throw new Error(`segkit ${argv[0]} exited with ${code}`);
}

/** A copy of a run's `last/` after epoch `epoch`, with the training's process CPU and wall seconds then. */
interface Snapshot {
  epoch: number;
  dir: string;
  cpuSeconds: number;
  wallSeconds: number;
  loadAverage: number;
}

/**
 * `segkit train` (argv) in this process, recording its wall time, the process's CPU time and the load average (every
 * 10 s: the machine may be shared). With `snapshots`, `runDir/last/` is copied to `snapshots/eN` after every epoch N.
 */
async function timedTrain(argv: string[], runDir: string, snapshots?: string) {
  const loads: number[] = [];
  const taken: Snapshot[] = [];
  const cpu = process.cpuUsage();
  const started = performance.now();
  const cpuSeconds = () => {
    const used = process.cpuUsage(cpu);
    return (used.user + used.system) / 1e6;
  };
  let copying = Promise.resolve();
  const snap = async (out: string) => {
    const state = join(runDir, "last", "train-state.json");
    const epoch = existsSync(state) ? (JSON.parse(await readFile(state, "utf8")) as { epoch: number }).epoch : 0;
    if (epoch <= (taken.at(-1)?.epoch ?? 0)) return;
    const at = { cpuSeconds: cpuSeconds(), wallSeconds: seconds(started), loadAverage: loadavg()[0] as number };
    const dir = join(out, `e${epoch}`);
    await cp(join(runDir, "last"), dir, { recursive: true });
    taken.push({ epoch, dir, ...at });
  };
  const sampler = setInterval(() => loads.push(loadavg()[0] as number), 10_000);
  // the epoch's checkpoint is polled for (a few ms a poll); a poll never overlaps the one before
  const poller = snapshots ? setInterval(() => (copying = copying.then(() => snap(snapshots))), 2000) : undefined;
  try {
    await cli(argv);
  } finally {
    clearInterval(sampler);
    clearInterval(poller);
  }
  const timing = {
    trainWallSeconds: seconds(started),
    trainCpuSeconds: cpuSeconds(),
    loadAverage: loads.length ? spread(loads) : null,
  };
  await copying;
  if (snapshots) await snap(snapshots);
  return { timing, snapshots: taken };
}

/** The epochs of a run's `metrics.jsonl`. */
async function readHistory(runDir: string): Promise<EpochMetrics[]> {
  const text = await readFile(join(runDir, "metrics.jsonl"), "utf8");
  return text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as EpochMetrics);
}

/** A [height, width] size as the tables give it: `WxH`. */
const widthByHeight = ([h, w]: readonly number[]) => `${w}x${h}`;

/** How the card says the model predicts whole images. */
function predictText(card: ModelCard): string {
  const p = card.predict;
  const size = widthByHeight(card.inputSize);
  return p.mode === "tile" ? `tiles of ${size}, overlap ${p.overlap}, ${p.blend}` : `resized to ${size} and back`;
}

/** The recipe in one line, from the card of its run. */
function recipeText(card: ModelCard): string {
  const t = card.training;
  const o = t.optimizer;
  const { encoder, decoder, baseFilters, depth } = card.options;
  const model = encoder
    ? `${card.architecture} (encoder ${JSON.stringify(encoder)}, decoder ${JSON.stringify(decoder)})`
    : `${card.architecture} ${JSON.stringify(baseFilters ?? "")} base filters, depth ${depth}`;
  const input = t.patches
    ? `${widthByHeight(t.inputSize)} patches, ${t.patches.perImage} per image per epoch`
    : `images resized to ${widthByHeight(t.inputSize)}`;
  const weights = t.classWeightsFrom === "auto" ? "; median-frequency class weights" : "";
  return `${model}; ${input}; augment ${JSON.stringify(t.augment)}; loss ${JSON.stringify(t.loss)}${weights}; ${o.name}(${o.lr}), ${t.schedule.name}; batch ${t.batchSize}`;
}

/** The synthetic instance run's sizes: images per split (each split its own seed) and their side. */
const SYNTHETIC_INSTANCES = { side: 128, train: 256, val: 32, test: 100 };

/**
 * Instances of the built-in synthetic set, learnt as `segkit train --format synthetic-instances --task instance`
 * learns them (`instanceTargetDataset`: background / boundary / one interior class per category) and scored on
 * images of another seed with COCOeval.
 */
async function syntheticInstances() {
  const { side } = SYNTHETIC_INSTANCES;
  const size: [number, number] = [side, side];
  const epochs = epochsOf("synthetic-instances");
  const open = async (seed: number, length: number) =>
    openDataset("synthetic-instances", {
      format: "synthetic-instances",
      task: "instance",
      seed,
      length: QUICK ? Math.min(length, 8) : length,
      size: side,
    });
  const trainDs = cached(instanceTargetDataset(await open(SEED, SYNTHETIC_INSTANCES.train)));
  const valDs = cached(instanceTargetDataset(await open(SEED + 1, SYNTHETIC_INSTANCES.val)));
  const test = await open(SEED + 2, SYNTHETIC_INSTANCES.test);
  return {
    title: "Synthetic instances (discs, boxes, triangles; touching, overlapping)",
    split: `train: seed ${SEED}, ${trainDs.length} images (fit validation: seed ${SEED + 1}, ${valDs.length}); scored on seed ${SEED + 2}, ${test.length} images`,
    scoredAt: `${side}x${side}, COCOeval on the set's own instances`,
    ...(await instanceRun(
      "synthetic-instances",
      trainDs,
      valDs,
      test,
      { inputSize: size, epochs, augment: false },
      {
        tile: false,
        overlays: 2,
      },
    )),
  };
}

/**
 * ISBI 2012 cells as instances: the 4-connected regions between membranes (`openDataset(..., { task: "instance" })`
 * on the isbi2012 format), learnt as background (membrane) / boundary / cell interior on 4x4 tiles of 128x128 of
 * images 0-21 with augmentation and median-frequency class weights (as the membrane run), then predicted on the
 * full 512x512 images 22-29 with the predictor's sliding windows and scored with COCOeval.
 */
async function isbiCells() {
  const tile: [number, number] = [128, 128];
  const epochs = epochsOf("isbi-cells");
  const all = await openDataset(join(args.root, "isbi2012-membrane"), { format: "isbi2012", task: "instance" });
  const order = byNumber(all);
  const trainIds = QUICK ? order.slice(0, 2) : order.slice(0, 22);
  const testIds = QUICK ? order.slice(22, 23) : order.slice(22);
  const targets = cached(instanceTargetDataset(all));
  const trainDs = tiled(subset(targets, trainIds), tile, [4, 4]);
  const valDs = tiled(subset(targets, testIds), tile, [4, 4]);
  return {
    title: "ISBI 2012 cells (the regions between membranes) as instances",
    split: `train images ${idList(all, trainIds)}; scored on ${idList(all, testIds)}`,
    scoredAt: "512x512 full resolution (sliding windows of 128x128, overlap 0.25)",
    ...(await instanceRun(
      "isbi-cells",
      trainDs,
      valDs,
      subset(all, testIds),
      { inputSize: tile, epochs, augment: true },
      { tile: true, overlays: 1, grid: 2 },
    )),
  };
}

/**
 * Trains an instance model with `fit` on target maps (`instanceTargetDataset`), then runs it as an `InstanceModel`
 * on `test` (an instance dataset) and scores its instances with COCOeval (`scoreInstanceModel`).
 */
async function instanceRun(
  name: DatasetName,
  trainDs: Dataset,
  valDs: Dataset,
  test: Dataset,
  config: TrainConfig,
  scoring: { tile: boolean; overlays: number; grid?: number },
) {
  const run = await train(name, trainDs, valDs, { ...INSTANCE_RECIPE, ...config });
  run.model.dispose();
  const scores = await scoreInstanceModel(run.checkpoint, test, {
    threads: THREADS,
    overlayDir: run.runDir,
    ...scoring,
  });
  return {
    recipe: INSTANCE_RECIPE_TEXT,
    inputSize: config.inputSize,
    augment: config.augment ?? false,
    classWeights: "median frequency (auto)",
    boundary: trainDs.instanceTargets?.boundary ?? null,
    epochs: config.epochs,
    metric: "COCO AP / AP50 / AP75, segm and bbox",
    segkit: { ...scores, ...run.timing },
    history: run.history,
    runDir: run.runDir,
  };
}

const RUNNERS: Record<DatasetName, () => Promise<Record<string, unknown>>> = {
  pet,
  isbi,
  camvid,
  drive,
  "synthetic-instances": syntheticInstances,
  "isbi-cells": isbiCells,
};

// the runs: one entry per dataset, with its machine, backend, version and total time
const backend = await initBackend({ threads: THREADS });
const hardware = { ...machine(), backend, wasmThreads: backend === "wasm" ? wasmThreads() : null };
console.log(`segkit ${VERSION}, backend ${backend}; ${hardware.cpus} x ${hardware.cpuModel}${QUICK ? "; QUICK" : ""}`);
const outBase = join(here, "results", QUICK ? "quality-quick" : "quality");
const entries: Record<string, Record<string, unknown>> = {};
for (const name of chosen) {
  console.log(`\n== ${name}`);
  const started = performance.now();
  const entry = await RUNNERS[name]();
  entries[name] = {
    recipe: RECIPE_TEXT,
    ...entry,
    selection: "last epoch",
    quick: QUICK,
    wallSeconds: seconds(started),
    date: new Date().toISOString(),
    segkitVersion: VERSION,
    hardware,
    skipped: skips.splice(0).length,
  };
  console.log(`  ${name}: ${JSON.stringify(headline(name, entries[name]))}`);
}
// read the earlier entries only now, so that runs of other datasets that ended meanwhile are kept
const results: { datasets: Record<string, Record<string, unknown>> } = existsSync(`${outBase}.json`)
  ? JSON.parse(await readFile(`${outBase}.json`, "utf8"))
  : { datasets: {} };
Object.assign(results.datasets, entries);
await writeResults(`${outBase}.json`, results);
await writeFileAtomic(`${outBase}.md`, markdown(results.datasets));
const camvidCurve = results.datasets.camvid?.curve as CurvePoint[] | undefined;
if (camvidCurve?.length) {
  const e = results.datasets.camvid as Record<string, unknown>;
  const title = `CamVid ${String(e.metric).split(" ")[0]} at 480x360 (${String(e.date).slice(0, 10)})`;
  await writeFileAtomic(`${outBase}-camvid-curve.png`, await curveChart(camvidCurve, title));
}
console.log(`Wrote ${outBase}.md`);

/** The figures of one entry, for the console and the table. */
function headline(name: string, e: Record<string, unknown>) {
  const s = e.segkit as Figures;
  if (name === "pet" || name === "camvid") return { miou: s.miou, classAverageAccuracy: s.classAverageAccuracy };
  if (s.segm && s.bbox) return { segm: apTriple(s.segm), bbox: apTriple(s.bbox) };
  return { f1: s.f1, accuracy: s.accuracy };
}

/** The figures an entry's `segkit` (and `pytorch`) holds; which are set depends on the dataset. */
interface Figures {
  miou: number;
  classAverageAccuracy: number;
  f1: number;
  iou: number;
  accuracy: number;
  trainSeconds: number;
  imagesPerSecond: number;
  /** Pet: mean, sample sd and range of the seeds' mIoU. */
  miouSpread?: { mean: number; sd: number; min: number; max: number };
  /** Instance runs: COCOeval's numbers. */
  segm?: CocoStats;
  bbox?: CocoStats;
  groundTruths?: number;
  detections?: number;
  /** isbi-cells: the same predictions scored with each image cut in grid x grid parts. */
  cut?: { grid: number; images: number; segm: CocoStats; bbox: CocoStats };
}

/** Pet: test mIoU per breed of the models trained on one breed (seed 0), when recorded. */
function breedsLine(e: Record<string, unknown>): string {
  const runs = e.unseenBreeds as { trainedOn: string; trainImages: number; scores: Record<string, { miou: number }> }[];
  if (!runs?.length) return "";
  const one = runs.map((r) => {
    const others = Object.entries(r.scores).filter(([b]) => b !== r.trainedOn);
    const unseen = others.map(([b, s]) => `${b} ${f3(s.miou)}`).join(", ");
    return `trained on ${r.trainedOn} only (${r.trainImages} images): ${r.trainedOn} ${f3(r.scores[r.trainedOn]?.miou)}, never seen ${unseen}`;
  });
  return ` Breeds never seen (test mIoU, seed 0): ${one.join("; ")}.`;
}

/** A recipe run's (DRIVE, CamVid) CPU time and load average, when recorded. */
function trainLoad(e: Record<string, unknown>): string {
  const s = e.segkit as {
    trainWallSeconds?: number;
    trainCpuSeconds?: number;
    loadAverage?: { mean: number; max: number };
  };
  if (s.trainWallSeconds === undefined || s.trainCpuSeconds === undefined) return "";
  const load = s.loadAverage
    ? `, load average ${s.loadAverage.mean.toFixed(1)} (max ${s.loadAverage.max.toFixed(1)})`
    : "";
  return ` Training: ${(s.trainWallSeconds / 60).toFixed(1)} min wall, ${(s.trainCpuSeconds / 60).toFixed(1)} min CPU (2 cores: ${(s.trainCpuSeconds / 120).toFixed(1)} min of the whole machine)${load}.`;
}

/** A point of the CamVid curve: a snapshot after `epoch`, scored at 480x360. */
interface CurvePoint {
  epoch: number;
  cpuSeconds: number;
  wallSeconds: number;
  loadAverage: number;
  miou: number;
  classAverageAccuracy: number;
  pixelAccuracy: number;
}

/** The CamVid curve as a markdown table: mIoU against training CPU and wall minutes. */
function curveTable(curve: CurvePoint[]): string[] {
  return [
    "CamVid curve (snapshots of the run after each epoch, predicted and scored as the row):",
    "",
    "| epoch | training CPU min | wall min | load (1 min) | mIoU | class avg | pixel accuracy |",
    "|---|---|---|---|---|---|---|",
    ...curve.map(
      (p) =>
        `| ${p.epoch} | ${(p.cpuSeconds / 60).toFixed(1)} | ${(p.wallSeconds / 60).toFixed(1)} | ${p.loadAverage.toFixed(1)} | ${p.miou.toFixed(3)} | ${p.classAverageAccuracy.toFixed(3)} | ${p.pixelAccuracy.toFixed(3)} |`,
    ),
  ];
}

/** The CamVid curve as a PNG chart: mIoU (and class-average accuracy) against training CPU minutes. */
async function curveChart(curve: CurvePoint[], title: string): Promise<Uint8Array> {
  const cpuMin = curve.map((p) => p.cpuSeconds / 60);
  const series = (name: string, color: string, key: "miou" | "classAverageAccuracy") => ({
    name,
    color,
    points: curve.map((p, k) => [cpuMin[k] as number, p[key]] as [number, number]),
  });
  const svg = linePlotSvg(
    [
      {
        title,
        xLabel: "training CPU minutes (process time, both cores)",
        yLabel: "score",
        unit: true,
        series: [
          series("mIoU", "#2ca02c", "miou"),
          series("class-average accuracy", "#1f77b4", "classAverageAccuracy"),
        ],
      },
    ],
    { width: 720, height: 400, xTicks: niceTicks(0, Math.max(1, ...cpuMin), 8) },
  );
  return svgToPng(svg);
}

/** AP, AP50, AP75 of COCOeval's numbers. */
function apTriple(c: CocoStats) {
  return { AP: c.AP, AP50: c.AP50, AP75: c.AP75 };
}

/** bench/results/quality.md: the summary table, then IoU per class for Pet and CamVid. */
function markdown(entries: Record<string, Record<string, unknown>>): string {
  const f = (v: unknown, d = 3) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(d) : "n/a");
  const min = (v: unknown) => `${f((v as number) / 60, 1)} min`;
  const size = (s: unknown) => `${(s as number[])[1]}x${(s as number[])[0]}`;
  const lines = [
    "# segkit quality on real data",
    "",
    `Generated by \`npm run bench:quality\` (bench/quality.ts) from \`bench/results/${QUICK ? "quality-quick" : "quality"}.json\`; every figure is`,
    `measured by the script. Recipe: ${RECIPE_TEXT}; the last epoch's model is scored.`,
    "",
    "| dataset | split | input (W x H) | epochs | metric | segkit | reference | train time | train img/s | wall time |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const name of DATASETS) {
    const e = entries[name];
    if (!e) continue;
    const s = e.segkit as Figures;
    const p = e.pytorch as Figures | null | undefined;
    const seg = e.segnet as typeof SEGNET_CAMVID | undefined;
    let value = "";
    let reference = "";
    if (name === "pet") {
      const pm = (x: Figures) => {
        const sp = x.miouSpread;
        return sp ? `${f(sp.mean)} ± ${f(sp.sd)} (${f(sp.min)}-${f(sp.max)}, ${e.seeds} seeds)` : f(x.miou);
      };
      value = `mIoU ${pm(s)}`;
      const diff = p ? s.miou - p.miou : Number.NaN;
      reference = p ? `PyTorch ${pm(p)}; segkit ${diff >= 0 ? "+" : ""}${f(diff)}` : "PyTorch not run";
    } else if (name === "camvid") {
      value = `mIoU ${f(s.miou)}, class avg ${f(s.classAverageAccuracy)}`;
      reference = seg
        ? `SegNet (test, 360x480): class avg ${f(seg.classAverageAccuracy / 100)}, mIoU ${f(seg.meanIoU / 100)}`
        : "";
    } else if (s.segm && s.bbox) {
      const ap = (c: CocoStats) => `${f(c.AP)} / ${f(c.AP50)} / ${f(c.AP75)}`;
      value = `segm ${ap(s.segm)}; bbox ${ap(s.bbox)}`;
      reference = `${s.groundTruths} true instances, ${s.detections} predicted; AR100 segm ${f(s.segm.AR100)}`;
      if (s.cut) {
        const { grid, images, segm, bbox } = s.cut;
        reference += `; as ${images} images of 1/${grid} side (under 100 objects each): segm ${ap(segm)}, bbox ${ap(bbox)}`;
      }
    } else {
      value = `F1 ${f(s.f1)}, accuracy ${f(s.accuracy)}`;
      reference = typeof e.reference === "string" ? e.reference : "";
    }
    const times = p
      ? [
          `${min(s.trainSeconds)} (PyTorch ${min(p.trainSeconds)})`,
          `${f(s.imagesPerSecond, 1)} (PyTorch ${f(p.imagesPerSecond, 1)})`,
        ]
      : [min(s.trainSeconds), f(s.imagesPerSecond, 1)];
    lines.push(
      `| ${e.title} | ${e.split} | ${size(e.inputSize)}, scored at ${e.scoredAt} | ${e.epochs} | ${e.metric} | ${value} | ${reference} | ${times.join(" | ")} | ${min(e.wallSeconds)} |`,
    );
  }
  for (const name of ["pet", "camvid"] as const) {
    const e = entries[name];
    if (!e) continue;
    const s = (e.segkit as { iou: Record<string, number | null> }).iou;
    const p = (e.pytorch as { iou: Record<string, number | null> } | null | undefined)?.iou;
    lines.push("", `IoU per class, ${e.title}:`, "", `| | ${Object.keys(s).join(" | ")} |`);
    lines.push(
      `|---|${Object.keys(s)
        .map(() => "---")
        .join("|")}|`,
    );
    lines.push(
      `| segkit | ${Object.values(s)
        .map((v) => f(v))
        .join(" | ")} |`,
    );
    if (p)
      lines.push(
        `| PyTorch | ${Object.values(p)
          .map((v) => f(v))
          .join(" | ")} |`,
      );
  }
  const instanceRecipes = new Set(
    Object.values(entries).flatMap((e) =>
      (e.segkit as Figures | undefined)?.segm && e.recipe ? [String(e.recipe)] : [],
    ),
  );
  if (entries.pet) lines.push("", `Pet row: ${entries.pet.recipe}.${breedsLine(entries.pet)}`);
  if (entries.isbi) lines.push("", `ISBI row: ${entries.isbi.recipe}.${trainLoad(entries.isbi)}`);
  if (entries.drive) lines.push("", `DRIVE row: ${entries.drive.recipe}.${trainLoad(entries.drive)}`);
  const camvid = entries.camvid;
  if (camvid?.curve) {
    lines.push(
      "",
      `CamVid row: ${camvid.recipe}.${trainLoad(camvid)}`,
      "",
      ...curveTable(camvid.curve as CurvePoint[]),
    );
  }
  for (const r of instanceRecipes) {
    lines.push("", `Instance rows: ${r}; instances split from background / boundary (1 px) / interior maps.`);
  }
  const hw = new Set(Object.values(entries).map((e) => JSON.stringify(e.hardware)));
  lines.push("", "Hardware (per run):");
  for (const h of hw) {
    const m = JSON.parse(h) as ReturnType<typeof machine> & { backend: string; wasmThreads: number | null };
    lines.push(
      `- ${m.cpus} x ${m.cpuModel}, Node ${m.node}, tfjs backend ${m.backend}${m.wasmThreads ? ` (${m.wasmThreads} threads)` : ""}`,
    );
  }
  const dates = Object.entries(entries).map(
    ([n, e]) => `${n} ${String(e.date).slice(0, 10)} (segkit ${e.segkitVersion})`,
  );
  lines.push(`- runs: ${dates.join(", ")}`);
  return `${lines.join("\n")}\n`;
}
