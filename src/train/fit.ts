import { rm } from "node:fs/promises";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { withWasmMemoryGuard } from "../backend/memory.js";
import { onnxConvEngines, pinOnnxConvEngines } from "../backend/onnx-conv.js";
import { SegkitError } from "../core/errors.js";
import type { SkippedSample } from "../core/skipped.js";
import { cached, type Dataset } from "../data/dataset.js";
import { batches } from "../data/loader.js";
import { patchDataset } from "../data/patches.js";
import { batchTensors, scoreModel } from "../eval/model.js";
import { readJson, writeFileAtomic } from "../io/fs.js";
import type { LossFn } from "../losses/losses.js";
import { createLoss } from "../losses/registry.js";
import { checkpointDir, MODEL_CARD_FILE, removeCheckpoint, TRAIN_STATE_FILE } from "../models/checkpoint.js";
import { loadModel } from "../models/io.js";
import { createModel } from "../models/registry.js";
import { weightFileFormat } from "../models/weight-files.js";
import { type EncoderWeightsInfo, freezeEncoder, loadEncoderWeightFile } from "../models/weights.js";
import { modelCard, monitorValue } from "./card.js";
import { loadOptimizerState, writeCheckpoint } from "./checkpoint.js";
import { autoClassWeights } from "./class-weights.js";
import { monitorMode, type ResolvedTrainConfig, type TrainConfig, validateTrainConfig } from "./config.js";
import { resolveLossConfig } from "./loss-config.js";
import { type EpochMetrics, metricsLine, reviveMetrics } from "./metrics.js";
import { createOptimizer, type TrainOptimizer } from "./optimizer.js";
import {
  loadSampleBatch,
  REPORT_FILES,
  type ReportOptions,
  validateReportOptions,
  writeEpochReport,
  writeReport,
} from "./report.js";
import {
  INITIAL_MONITOR_STATE,
  initialScheduleState,
  learningRate,
  type MonitorState,
  type ScheduleState,
  type StopReason,
  shouldStopEarly,
  stepSchedule,
  updateMonitor,
} from "./schedule.js";
import { seedWeights } from "./seed.js";

/**
 * The training loop, as Keras `model.fit` with callbacks (ModelCheckpoint on `last` and `best`, EarlyStopping,
 * a learning-rate scheduler, CSVLogger) or a segmentation_models_pytorch training script would write it.
 *
 * Run directory `outDir`:
 *   metrics.jsonl   one `EpochMetrics` per line (rewritten atomically each epoch, so never a partial line)
 *   last/           checkpoint after every epoch      } model, optimizer state, train-state.json, card.json
 *   best/           checkpoint of the best epoch      } (see models/checkpoint.ts; each swapped in atomically)
 *   curves.png      learning curves, samples.png fixed validation predictions: after every epoch's checkpoints
 *   report.html     one self-contained page, when fit ends (completed, stopped early, or aborted after an epoch)
 * (the report files unless `report: false`; see report.ts; each written atomically).
 *
 * Reproducibility: with the same config (seed included), datasets and backend, a run gives the same weights
 * whether it runs straight through or is killed and resumed from `last/`: initial weights are drawn from the seed
 * (`seedWeights`), each epoch's shuffle and augmentation from (seed, epoch), and a checkpoint restores the weights,
 * the optimizer slots and scalars, the schedule and the monitor. The wasm backend times each convolution shape on
 * two engines and keeps the faster (their float results differ in the last bits): the choices are saved in the
 * checkpoint and pinned on resume, so the resumed process runs the same arithmetic. Not covered: dropout (tfjs
 * draws its masks from Math.random).
 *
 * Patch training (`config.patches`): the datasets' images are decoded once and kept; every epoch draws its own
 * `perImage` patches per training image (`patchDataset`, seeded by (seed, epoch)), and validation scores one fixed
 * set of patches of the validation images (an estimate for watching the run; whole images are scored by predicting
 * them in tiles, as the card's `predict` says). Progress and images per second count patches.
 *
 * Call `initBackend()` before `fit` (the backend is the caller's choice).
 */

export interface FitProgress {
  phase: "train" | "val";
  /** From 1. */
  epoch: number;
  epochs: number;
  /** Images done in this phase of this epoch, of `total`. */
  done: number;
  total: number;
  /** Mean loss of the phase so far. */
  loss: number;
}

export interface FitOptions {
  /** The run directory (created if needed). */
  outDir: string;
  /** Continue the run in `outDir` from its `last/` checkpoint. */
  resume?: boolean;
  /** Start a new run even if `outDir` holds one (its checkpoints and metrics are replaced). */
  overwrite?: boolean;
  /**
   * After each epoch, before its checkpoints: the run's total epochs from now on (a run planned by time: fewer
   * ends the run after this epoch). The schedule and the progress counts follow the new total, and the checkpoints
   * record it. Default: the config's `epochs` throughout.
   */
  replan?: (history: readonly EpochMetrics[]) => number;
  /** After each epoch, once its checkpoints are written. */
  onEpoch?: (metrics: EpochMetrics, state: { improved: boolean; best: EpochMetrics | null }) => void | Promise<void>;
  /** After each batch of training and of validation. */
  onProgress?: (progress: FitProgress) => void;
  /** Samples that fail to load (left out of their batch). */
  onSkip?: (skip: SkippedSample) => void;
  /** Aborting stops at the next batch; the unfinished epoch is dropped (`last/` stays at the previous one). */
  signal?: AbortSignal;
  /** The report files (curves.png, samples.png, report.html; see report.ts), on by default; false: none. */
  report?: false | ReportOptions;
}

export interface FitSummary {
  outDir: string;
  /** Epochs completed (including those of the run that was resumed). */
  epochs: number;
  /** The epoch (from 1) with the best monitored value, 0 if none; its metrics; its checkpoint. */
  bestEpoch: number;
  best: EpochMetrics | null;
  monitor: ResolvedTrainConfig["monitor"];
  mode: "min" | "max";
  history: EpochMetrics[];
  stopReason: StopReason;
  /** The epoch the run resumed after (0 for a fresh run). */
  resumedFrom: number;
  checkpoints: { last: string | null; best: string | null };
  /** The class weights trained with ("auto" resolved), or null. */
  classWeights: number[] | null;
  /** The best epoch's validation confusion counts, [truth][prediction] (null without a best epoch). */
  bestConfusion: number[][] | null;
  /** Wall time of the run, all sessions (up to the last checkpoint of a session that was resumed), seconds. */
  wallSeconds: number;
}

/** `train-state.json`: everything besides weights and optimizer slots that a resumed run needs. */
export interface TrainState {
  format: "segkit-train-state";
  config: ResolvedTrainConfig;
  classWeights: number[] | null;
  /** Epochs completed. */
  epoch: number;
  schedule: ScheduleState;
  monitor: MonitorState;
  history: EpochMetrics[];
  /** The best epoch's validation confusion counts, [truth][prediction] (for the report; absent in older states). */
  bestConfusion?: number[][] | null;
  /** Wall time of the run so far, all sessions, seconds (absent in older states). */
  wallSeconds?: number;
  /** The convolution engine chosen per call signature (`onnxConvEngines`), pinned on resume. */
  convEngines?: Record<string, string>;
  /** What `config.encoderWeights` loaded into the fresh model. */
  encoderWeights?: EncoderWeightsInfo;
}

/** Trains a model on `train`, validating on `val` after each epoch; see the module comment. */
export async function fit(train: Dataset, val: Dataset, config: TrainConfig, options: FitOptions): Promise<FitSummary> {
  const started = performance.now();
  const cfg = validateTrainConfig(config);
  const report = options.report === false ? null : validateReportOptions(options.report);
  const mode = monitorMode(cfg);
  const { outDir } = options;
  checkDatasets(train, val);
  const C = train.classNames.length;

  // 1. where we start: a fresh run, or the state of last/
  const lastDir = await checkpointDir(outDir, "last");
  if (options.resume && !lastDir) {
    throw new SegkitError("no checkpoint to resume from (last/ is missing)", {
      file: outDir,
      hint: "run without resume to start training",
    });
  }
  if (!options.resume && lastDir && !options.overwrite) {
    throw new SegkitError("already holds a training run", {
      file: outDir,
      hint: "resume it, pass overwrite to start again, or choose another directory",
    });
  }
  const saved = options.resume && lastDir ? await readState(join(lastDir, TRAIN_STATE_FILE), cfg) : null;
  if (!options.resume) {
    // a bad encoder weights file is reported before an overwritten run's checkpoints are gone
    if (cfg.encoderWeights) await weightFileFormat(cfg.encoderWeights);
    for (const name of ["last", "best"]) await removeCheckpoint(outDir, name);
    for (const name of ["metrics.jsonl", ...Object.values(REPORT_FILES)]) await rm(join(outDir, name), { force: true });
  }

  // 2. class weights, loss, model, optimizer
  const classWeights = saved ? saved.classWeights : await resolveClassWeights(cfg, train, options.onSkip);
  const loss = createLoss(resolveLossConfig(cfg.loss, train.ignoreIndex, classWeights));
  const model = lastDir && saved ? await loadModel(lastDir) : buildModel(cfg, C);
  let optimizer = createOptimizer(cfg.optimizer);
  try {
    // a frozen encoder is not saved as such (batch norm's inference mode): freeze it again on resume
    if (saved && cfg.model.options.freezeEncoder === true) freezeEncoder(model);
    // pretrained encoder weights go into a fresh model only (a resumed one has trained on from them)
    const load = !saved && cfg.encoderWeights;
    const encoderWeights = load ? await loadEncoderWeightFile(model, load) : saved?.encoderWeights;
    const cardOf = (config: ResolvedTrainConfig, epoch: number, metrics: EpochMetrics, best: EpochMetrics | null) =>
      modelCard({
        model,
        train,
        val,
        config,
        classWeights,
        mode,
        epoch,
        metrics,
        best,
        ...(encoderWeights && { encoderWeights }),
      });
    if (lastDir && saved) await loadOptimizerState(lastDir, optimizer);
    if (saved?.convEngines) pinOnnxConvEngines(saved.convEngines);
    let schedule = saved?.schedule ?? initialScheduleState(cfg.optimizer.lr);
    let monitor = saved?.monitor ?? { ...INITIAL_MONITOR_STATE };
    const history = saved ? [...saved.history] : [];
    const resumedFrom = saved?.epoch ?? 0;
    let bestConfusion = saved?.bestConfusion ?? null;
    const previousSeconds = saved ? (saved.wallSeconds ?? saved.history.reduce((s, m) => s + m.seconds, 0)) : 0;
    const wallSeconds = () => previousSeconds + (performance.now() - started) / 1000;
    // patch training: the images decoded once; each epoch its own patches, validation one fixed set of them
    const patched = (ds: Dataset, epoch: number) =>
      cfg.patches
        ? patchDataset(ds, { size: cfg.inputSize, perImage: cfg.patches.perImage, seed: cfg.seed, epoch })
        : ds;
    const trainImages = cfg.patches ? cached(train) : train;
    const valSet = patched(cfg.patches ? cached(val) : val, 0);
    const samples = report && report.samples > 0 ? await loadSampleBatch(valSet, cfg.inputSize, report.samples) : null;
    // metrics.jsonl may hold an epoch newer than last/ (a kill between the two writes): keep it in step
    await writeFileAtomic(join(outDir, "metrics.jsonl"), history.map((m) => `${metricsLine(m)}\n`).join(""));

    // 3. the epochs
    let stopReason: StopReason = "completed";
    let lastPath: string | null = lastDir;
    let bestPath: string | null = saved ? await checkpointDir(outDir, "best") : null;
    let planned = cfg; // cfg with the epochs `replan` last gave
    for (let epoch = resumedFrom + 1; epoch <= planned.epochs; epoch++) {
      if (shouldStopEarly(monitor, cfg.earlyStopping?.patience ?? null)) {
        stopReason = "early-stopping";
        break;
      }
      const epochStarted = performance.now();
      if (cfg.freezeEncoderEpochs) {
        freezeEncoder(model, epoch <= cfg.freezeEncoderEpochs);
        // the trainable weights grow: a fresh optimizer (its slots follow the order of the weights it trains)
        if (epoch === cfg.freezeEncoderEpochs + 1) {
          optimizer.dispose();
          optimizer = createOptimizer(cfg.optimizer);
        }
      }
      const lr = learningRate(cfg.schedule, cfg.optimizer.lr, epoch - 1, planned.epochs, schedule);
      optimizer.setLearningRate(lr);
      const trained = await trainEpoch(model, optimizer, loss, patched(trainImages, epoch), planned, epoch, options);
      if (trained === null) {
        stopReason = "aborted";
        break;
      }
      const scores = await scoreModel(
        model,
        valSet,
        {
          inputSize: cfg.inputSize,
          batchSize: cfg.batchSize,
          loss,
          ...(options.onSkip ? { onSkip: options.onSkip } : {}),
        },
        {
          ...(options.signal ? { signal: options.signal } : {}),
          onProgress: (done, loss) =>
            options.onProgress?.({ phase: "val", epoch, epochs: planned.epochs, done, total: valSet.length, loss }),
        },
      );
      if (scores === null) {
        stopReason = "aborted";
        break;
      }
      const metrics: EpochMetrics = {
        epoch,
        lr,
        "train/loss": trained.loss,
        "val/loss": scores.loss,
        "val/miou": scores.miou,
        "val/pixelAccuracy": scores.pixelAccuracy,
        "val/iou": scores.iou,
        "train/imagesPerSecond": trained.imagesPerSecond,
        seconds: (performance.now() - epochStarted) / 1000,
      };
      history.push(metrics);
      if (options.replan) planned = { ...cfg, epochs: Math.max(epoch, Math.floor(options.replan(history))) };
      const value = monitorValue(metrics, cfg.monitor);
      monitor = updateMonitor(monitor, value, epoch, mode, cfg.minDelta);
      schedule = stepSchedule(cfg.schedule, schedule, value, epoch, mode, cfg.minDelta);
      const improved = monitor.bestEpoch === epoch;
      if (improved) bestConfusion = scores.confusion;
      const best = history.find((m) => m.epoch === monitor.bestEpoch) ?? null;

      // 4. the record and the checkpoints
      await writeFileAtomic(join(outDir, "metrics.jsonl"), history.map((m) => `${metricsLine(m)}\n`).join(""));
      const state: TrainState = {
        format: "segkit-train-state",
        config: planned,
        classWeights,
        epoch,
        schedule,
        monitor,
        history,
        bestConfusion,
        wallSeconds: wallSeconds(),
        convEngines: onnxConvEngines(),
        ...(encoderWeights ? { encoderWeights } : {}),
      };
      const card = cardOf(planned, epoch, metrics, best);
      const files = { [TRAIN_STATE_FILE]: state, [MODEL_CARD_FILE]: card };
      // best/ before last/: a kill between the two leaves last/ one epoch behind, and resuming redoes that epoch
      if (improved) bestPath = await writeCheckpoint(outDir, "best", model, optimizer, files);
      lastPath = await writeCheckpoint(outDir, "last", model, optimizer, files);
      if (report) {
        const { bestEpoch } = monitor;
        await writeEpochReport(outDir, {
          history,
          bestEpoch,
          monitor: cfg.monitor,
          model,
          samples,
          palette: val.palette,
        });
      }
      await options.onEpoch?.(metrics, { improved, best });
    }

    // 5. the report of the run, when it has an epoch
    const best = history.find((m) => m.epoch === monitor.bestEpoch) ?? null;
    const last = history.at(-1);
    if (report && last) {
      const card = cardOf(planned, last.epoch, last, best);
      await writeReport(outDir, {
        card,
        history,
        stopReason,
        resumedFrom,
        wallSeconds: wallSeconds(),
        confusion: bestConfusion,
      });
    }
    return {
      outDir,
      epochs: history.length,
      bestEpoch: monitor.bestEpoch,
      best,
      monitor: cfg.monitor,
      mode,
      history,
      stopReason,
      resumedFrom,
      checkpoints: { last: lastPath, best: bestPath },
      classWeights,
      bestConfusion,
      wallSeconds: wallSeconds(),
    };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

function checkDatasets(train: Dataset, val: Dataset): void {
  if (train.length === 0 || val.length === 0) {
    throw new SegkitError(`fit needs samples to train and validate on (train ${train.length}, val ${val.length})`);
  }
  if (train.classNames.join("\n") !== val.classNames.join("\n") || train.ignoreIndex !== val.ignoreIndex) {
    throw new SegkitError(
      `train and val datasets differ in classes or ignore index: [${train.classNames}] / ${train.ignoreIndex} vs ` +
        `[${val.classNames}] / ${val.ignoreIndex}`,
    );
  }
}

/** The model of a fresh run: the config's preset or composition and options, with the input size and the class count. */
function buildModel(cfg: ResolvedTrainConfig, numClasses: number): tf.LayersModel {
  const given = cfg.model.options;
  const size = given.inputSize as unknown;
  if (size !== undefined && JSON.stringify(size) !== JSON.stringify(cfg.inputSize)) {
    throw new SegkitError(
      `training config: model.options.inputSize ${JSON.stringify(size)} differs from inputSize ` +
        `${JSON.stringify(cfg.inputSize)}; set inputSize only`,
    );
  }
  const classes = (given.numClasses as number | undefined) ?? numClasses;
  if (classes !== numClasses && !(classes === 1 && numClasses === 2)) {
    throw new SegkitError(
      `training config: model.options.numClasses is ${classes} but the dataset has ${numClasses} classes`,
      { hint: "leave numClasses out (or 1 for a binary dataset's sigmoid head)" },
    );
  }
  if (cfg.freezeEncoderEpochs && given.freezeEncoder === true) {
    throw new SegkitError(
      "training config: give model.options.freezeEncoder (always) or freezeEncoderEpochs, not both",
    );
  }
  const options = { ...given, numClasses: classes, inputSize: [...cfg.inputSize] as [number, number] };
  const m = cfg.model;
  const model =
    m.arch !== undefined
      ? createModel(m.arch, options as never)
      : createModel({ ...options, encoder: m.encoder, decoder: m.decoder });
  seedWeights(model, cfg.seed);
  if (cfg.batchNormMomentum !== null) {
    // read by the layers at every training step, and saved with their config (so a resumed run keeps it)
    for (const layer of model.layers) {
      if (layer.getClassName() === "BatchNormalization")
        (layer as unknown as { momentum: number }).momentum = cfg.batchNormMomentum;
    }
  }
  return model;
}

async function resolveClassWeights(
  cfg: ResolvedTrainConfig,
  train: Dataset,
  onSkip?: (skip: SkippedSample) => void,
): Promise<number[] | null> {
  if (cfg.classWeights === null) return null;
  if (cfg.classWeights === "auto") return autoClassWeights(train, onSkip);
  if (cfg.classWeights.length !== train.classNames.length) {
    throw new SegkitError(
      `training config: classWeights has ${cfg.classWeights.length} values for ${train.classNames.length} classes ` +
        `(${train.classNames.join(", ")})`,
    );
  }
  return [...cfg.classWeights];
}

/** Reads a saved train state and checks that `cfg` may continue it (only epochs and early stopping may change). */
async function readState(file: string, cfg: ResolvedTrainConfig): Promise<TrainState> {
  const raw = await readJson<TrainState>(file);
  if (raw.format !== "segkit-train-state") throw new SegkitError("not a segkit training state", { file });
  const comparable = (c: ResolvedTrainConfig) => ({ ...c, epochs: 0, earlyStopping: null });
  const a = comparable(raw.config) as Record<string, unknown>;
  const b = comparable(cfg) as Record<string, unknown>;
  const changed = Object.keys({ ...a, ...b }).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
  if (changed.length > 0) {
    throw new SegkitError(`cannot resume with a different ${changed.join(", ")} than the run was started with`, {
      file,
      hint: "only epochs and earlyStopping may change on resume",
    });
  }
  const history = (raw.history as unknown as Record<string, unknown>[]).map(reviveMetrics);
  return { ...raw, history };
}

async function trainEpoch(
  model: tf.LayersModel,
  optimizer: TrainOptimizer,
  loss: LossFn,
  train: Dataset,
  cfg: ResolvedTrainConfig,
  epoch: number,
  options: FitOptions,
): Promise<{ loss: number; imagesPerSecond: number } | null> {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const ctx = { what: "training step", batchSize: cfg.batchSize, inputSize: cfg.inputSize };
  const started = performance.now();
  let sum = 0;
  let done = 0;
  const stream = batches(train, {
    size: cfg.inputSize,
    batchSize: cfg.batchSize,
    shuffle: true,
    seed: cfg.seed,
    epoch,
    augment: cfg.augment,
    ...(options.onSkip ? { onSkip: options.onSkip } : {}),
  });
  for await (const batch of stream) {
    if (options.signal?.aborted) return null;
    const [x, y] = batchTensors(batch);
    let value: number;
    try {
      value = await withWasmMemoryGuard(ctx, async () => {
        const cost = optimizer.step(() => loss(y, model.apply(x, { training: true }) as tf.Tensor), vars);
        try {
          return (await cost.data())[0] as number;
        } finally {
          cost.dispose();
        }
      });
    } finally {
      tf.dispose([x, y]);
    }
    if (!Number.isFinite(value)) {
      throw new SegkitError(`the training loss became ${value} in epoch ${epoch} (batch ${batch.ids.join(", ")})`, {
        hint: "lower the learning rate",
      });
    }
    sum += value * batch.size;
    done += batch.size;
    options.onProgress?.({ phase: "train", epoch, epochs: cfg.epochs, done, total: train.length, loss: sum / done });
  }
  if (options.signal?.aborted) return null;
  return { loss: done > 0 ? sum / done : Number.NaN, imagesPerSecond: done / ((performance.now() - started) / 1000) };
}
