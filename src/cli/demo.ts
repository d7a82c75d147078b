import { rm } from "node:fs/promises";
import { join } from "node:path";
import { type Command, CommanderError, InvalidArgumentError, Option } from "commander";
import {
  type BackendChoice,
  createModel,
  createSyntheticDataset,
  type Dataset,
  type EpochMetrics,
  evaluateModel,
  evaluatePredictions,
  type FitSummary,
  formatEpochLine,
  initBackend,
  loadPredictor,
  type RgbImage,
  seedWeights,
  splitDataset,
  type TrainConfig,
  validateTrainConfig,
  writeFileAtomic,
  writeMaskPng,
} from "../index.js";
import { type CliIo, int } from "./options.js";
import { createProgress } from "./progress.js";
import { backendOption, classIous, runFit, shellWord } from "./train.js";

/**
 * `segkit demo`: the whole job on the built-in synthetic set (pet / background / border, as the Oxford-IIIT Pet
 * trimaps) in about `--minutes`: train a small U-Net, then predict and score the validation set, all in `--out`:
 *   metrics.jsonl, last/, best/, curves.png, samples.png, report.html   as `segkit train` writes them
 *   predictions/ID.png   class-index masks of the validation images from best/ (palette PNGs)
 *   eval.json            `segkit eval`'s report of those predictions
 *
 * The time budget: epoch 1 is timed, then the run resumes for as many epochs as fit in the rest of the budget (the
 * cosine schedule spans them). `--epochs N` (hidden, for tests) trains exactly N epochs instead.
 */

/** The recipe: measured to learn clearly in about two minutes on 2 cores (see the README). */
const DEMO_RECIPE = {
  samples: 400,
  size: 64,
  dataSeed: 0,
  config: {
    model: { arch: "unet", options: { baseFilters: 16, depth: 4 } },
    batchSize: 8,
    optimizer: { name: "adam", lr: 3e-3 },
    schedule: "cosine",
    augment: true,
    seed: 0,
  } satisfies TrainConfig,
} as const;
/** At most this many epochs, whatever the budget. */
const MAX_EPOCHS = 200;

interface DemoFlags {
  out: string;
  minutes: number;
  epochs?: number;
  length: number;
  size: number;
  backend: BackendChoice;
}

const minutes = (v: string) => {
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError("--minutes must be a number > 0");
  return n;
};

const clock = (seconds: number) => {
  const s = Math.round(seconds);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
};

/** The untrained model's validation mIoU: the weights `fit` starts from (same architecture and seed). */
async function untrainedScore(val: Dataset, config: TrainConfig): Promise<number> {
  const cfg = validateTrainConfig(config);
  const model = createModel("unet", {
    ...cfg.model.options,
    numClasses: val.classNames.length,
    inputSize: [...cfg.inputSize],
  });
  try {
    seedWeights(model, cfg.seed);
    return (await evaluateModel(model, val, { inputSize: cfg.inputSize, batchSize: cfg.batchSize })).miou;
  } finally {
    model.dispose();
  }
}

/** Trains `epochs` epochs, or (without) times epoch 1 and resumes for as many as fit in `budget` seconds. */
async function train(
  trainSet: Dataset,
  val: Dataset,
  config: TrainConfig,
  outDir: string,
  plan: { epochs?: number; budget: number; started: number },
  io: CliIo,
): Promise<FitSummary> {
  const names = trainSet.classNames;
  let epochs = plan.epochs ?? 1;
  const epochLine = (m: EpochMetrics) => {
    if (plan.epochs === undefined && m.epoch === 1) {
      const left = plan.budget - (performance.now() - plan.started) / 1000;
      epochs = Math.min(MAX_EPOCHS, 1 + Math.max(0, Math.floor(left / m.seconds)));
    }
    return formatEpochLine(m, epochs, names);
  };
  const first = await runFit(trainSet, val, { ...config, epochs }, { outDir, overwrite: true, epochLine }, io);
  if (first.stopReason === "aborted" || epochs === first.epochs) return first;
  return runFit(trainSet, val, { ...config, epochs }, { outDir, resume: true, epochLine }, io);
}

/** Predicts the validation set with the run's best/ checkpoint into `dir` (class-index PNGs named by sample id). */
async function predict(val: Dataset, runDir: string, dir: string, backend: DemoFlags["backend"]): Promise<void> {
  const predictor = await loadPredictor(runDir, { backend });
  const progress = createProgress("predict", "images");
  try {
    for (let start = 0; start < val.length; start += predictor.batchSize) {
      const ids: string[] = [];
      const images: RgbImage[] = [];
      for (let i = start; i < Math.min(val.length, start + predictor.batchSize); i++) {
        ids.push(val.id(i));
        images.push((await val.get(i)).image);
      }
      const predictions = await predictor.predictBatch(images);
      for (const [k, p] of predictions.entries()) {
        const file = join(dir, `${ids[k]}.png`);
        await writeMaskPng(file, p.mask, { palette: predictor.palette, classNames: predictor.classes });
      }
      progress.update(start + ids.length, val.length);
    }
  } finally {
    progress.stop();
    await predictor.dispose();
  }
}

export function registerDemo(program: Command, io: CliIo): void {
  program
    .command("demo")
    .description("train a small U-Net on the built-in synthetic set for a couple of minutes, predict and score it")
    .option("-o, --out <dir>", "output directory (a run already there is replaced)", "segkit-demo")
    .option("--minutes <m>", "training time budget in minutes", minutes, 2)
    .addOption(backendOption())
    .addOption(
      new Option("--epochs <n>", "train exactly n epochs (no time budget)").argParser(int("--epochs", 1)).hideHelp(),
    )
    .addOption(
      new Option("--length <n>", "synthetic samples")
        .argParser(int("--length", 2))
        .default(DEMO_RECIPE.samples)
        .hideHelp(),
    )
    .addOption(
      new Option("--size <px>", "image size").argParser(int("--size", 32)).default(DEMO_RECIPE.size).hideHelp(),
    )
    .exitOverride()
    .action(async (f: DemoFlags) => {
      const started = performance.now();
      const backend = await initBackend({ backend: f.backend });
      // 1. data: the synthetic set at the model's input size, 80% to train, 20% to validate
      const ds = createSyntheticDataset({ length: f.length, size: f.size, seed: DEMO_RECIPE.dataSeed });
      const [trainSet, val] = splitDataset(ds, [0.8, 0.2], DEMO_RECIPE.config.seed) as [Dataset, Dataset];
      const config: TrainConfig = { ...DEMO_RECIPE.config, inputSize: [f.size, f.size] };
      const cfg = validateTrainConfig(config);
      io.err(
        `segkit demo: a U-Net (${JSON.stringify(cfg.model.options)}) on ${trainSet.length} synthetic ${f.size}x${f.size} ` +
          `images, validating on ${val.length}; ${f.epochs ? `${f.epochs} epoch${f.epochs === 1 ? "" : "s"}` : `about ${f.minutes} min`} ` +
          `on ${backend}`,
      );
      // 2. the untrained model's score, then training
      const before = await untrainedScore(val, config);
      io.err(`before training: val mIoU ${before.toFixed(4)} (the untrained model)`);
      await rm(join(f.out, "predictions"), { recursive: true, force: true });
      await rm(join(f.out, "eval.json"), { force: true });
      const budget = f.minutes * 60;
      const plan = { budget, started, ...(f.epochs ? { epochs: f.epochs } : {}) };
      const s = await train(trainSet, val, config, f.out, plan, io);
      if (s.stopReason === "aborted") {
        io.err("interrupted: run segkit demo again to start over");
        throw new CommanderError(130, "segkit.interrupted", "interrupted");
      }
      const trainedIn = (performance.now() - started) / 1000;
      // 3. predictions of the validation set from best/, scored as `segkit eval` scores them
      const predDir = join(f.out, "predictions");
      await predict(val, f.out, predDir, f.backend);
      const report = await evaluatePredictions(val, predDir);
      await writeFileAtomic(
        join(f.out, "eval.json"),
        `${JSON.stringify(report, (_k, v) => (typeof v === "number" && Number.isNaN(v) ? null : v), 2)}\n`,
      );
      // 4. the outcome
      io.out(`untrained model: val mIoU ${before.toFixed(4)}`);
      io.out(
        `trained model:   val mIoU ${report.miou.toFixed(4)} (${classIous(
          report.perClass.map((c) => c.iou),
          report.classes,
        )}), best epoch ${s.bestEpoch} of ${s.epochs}, ${clock(trainedIn)}`,
      );
      io.out(`report:      ${join(f.out, "report.html")} (learning curves, validation samples, per-class scores)`);
      io.out(`predictions: ${predDir}/ (${report.images} class-index PNGs), scored in ${join(f.out, "eval.json")}`);
      const best = join(f.out, "best");
      io.out(`checkpoint:  ${best} (segkit predict --model ${shellWord(best)} --input IMAGES --out DIR)`);
    });
}
