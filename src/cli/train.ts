import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { extname, join, resolve } from "node:path";
import { type Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { parse as parseYaml } from "yaml";
import {
  BACKEND_NAMES,
  type BackendChoice,
  checkpointDir,
  type Dataset,
  DECODER_NAMES,
  type DecoderChoice,
  detectFormat,
  ENCODER_NAMES,
  type EncoderChoice,
  type EpochMetrics,
  errorMessage,
  type FitSummary,
  fit,
  fitReporter,
  initBackend,
  LOSS_NAMES,
  MODEL_ARCHS,
  type ResolvedTrainConfig,
  SegkitError,
  type SkippedSample,
  splitDataset,
  type TrainConfig,
  type TrainState,
  trainModelName,
  validateTrainConfig,
  wasmThreads,
  writeFileAtomic,
} from "../index.js";
import {
  abortOnSigint,
  type CliIo,
  type DatasetFlags,
  datasetFlags,
  datasetOptions,
  int,
  openForCli,
  requirePath,
} from "./options.js";
import { createProgress } from "./progress.js";

/**
 * `segkit train DATA --out runs/NAME`: wiring of `fit` for the command line.
 *
 * Configuration, later wins: `DEFAULT_TRAIN_CONFIG`, the `--config` file (JSON or YAML, a `TrainConfig`), then the
 * flags `--model --size --epochs --batch-size --lr --loss --seed`. `--seed` seeds training (weights, shuffle,
 * augmentation, the held-out validation fraction) and, with `--format synthetic`, the generated set.
 *
 * Validation data, in this order:
 *   1. `--val-split NAMES`: those official splits of the same dataset (e.g. oxford-pet `--val-split test`, as the
 *      TensorFlow tutorial does, though the test split then also picks `best/`);
 *   2. a format with an official validation split (CamVid `val`), when neither `--split` nor `--val-fraction` is
 *      given: train on its training split, validate on the validation split;
 *   3. otherwise `--val-fraction` (default 0.2) of the training samples held out, drawn with the seed.
 * When `--split` is not given, Oxford-IIIT Pet trains on `trainval` (its `test` split stays for `segkit eval`).
 *
 * Pretrained encoders (the TensorFlow tutorials' fine-tuning): `--encoder-weights FILE` loads a Keras `.h5`, a
 * torchvision / timm `.safetensors` or a TF.js model into the encoder before the first epoch (`loadEncoderWeights`),
 * `--freeze-encoder EPOCHS` keeps the encoder frozen for that many first epochs, then trains it with the rest
 * (config `encoderWeights`, `freezeEncoderEpochs`; the card records what was loaded).
 *
 * The run directory gets `data.json` (where the data came from and how it was split) beside what `fit` writes, so
 * `--resume` needs no data arguments; given again, they must describe the same data.
 */

/**
 * Official splits taken when `--split` / `--val-split` are not given. DRIVE and ISBI 2012 validate on their `test`
 * half when the dataset has it (ISBI's with labels: `val` is the path that must exist, the split its first part; only
 * watched: the recipes pick `best/` by the training loss), else on a held-out fraction.
 */
const DEFAULT_SPLITS: Readonly<Record<string, { train: string; val?: string }>> = {
  "oxford-pet": { train: "trainval" },
  camvid: { train: "train", val: "val" },
  drive: { train: "training", val: "test" },
  isbi2012: { train: "train", val: "test/label" },
};
const DEFAULT_VAL_FRACTION = 0.2;
const DATA_FILE = "data.json";

interface TrainFlags extends DatasetFlags {
  out: string;
  data?: string;
  config?: string;
  model?: string;
  size?: [number, number];
  epochs?: number;
  batchSize?: number;
  lr?: number;
  loss?: string;
  valSplit?: string;
  valFraction?: number;
  encoderWeights?: string;
  freezeEncoder?: number;
  resume?: boolean;
  overwrite?: boolean;
  backend: BackendChoice;
}

/** Where a run's data comes from: the dataset (as `openForCli` takes it) and how validation is chosen. */
interface DataSpec {
  path: string;
  dataset: DatasetFlags;
  validation: { split: string } | { fraction: number; seed: number };
}

/** `128` -> [128, 128]; `96x128` -> [96, 128] (height x width). */
export const sizeArg = (v: string): [number, number] => {
  const m = /^(\d+)(?:x(\d+))?$/.exec(v.trim());
  const h = Number(m?.[1]);
  const w = Number(m?.[2] ?? m?.[1]);
  if (!m || h < 1 || w < 1) throw new InvalidArgumentError("--size must be N (square) or HxW, e.g. 128 or 96x128");
  return [h, w];
};

const fraction = (v: string) => {
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError("--val-fraction must be a number between 0 and 1");
  return n;
};

const positiveNumber = (name: string) => (v: string) => {
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError(`${name} must be a number > 0`);
  return n;
};

/** The tfjs backend option, shared with `segkit demo`. */
export const backendOption = () =>
  new Option("--backend <name>", "tfjs backend (auto: tfjs-node if installed, else wasm)")
    .choices(BACKEND_NAMES)
    .default("auto");

/** `JSON.parse`'s "at position N" as a line and column. */
function jsonError(text: string, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const at = /at position (\d+)/.exec(message);
  if (!at) return message;
  const before = text.slice(0, Number(at[1]));
  const line = before.split("\n").length;
  const column = before.length - before.lastIndexOf("\n");
  return `${message.replace(/ at position \d+.*$/, "")} at line ${line}, column ${column}`;
}

/** Reads and validates a training config file (`.json`, `.yaml`, `.yml`); errors name the file and the field. */
export async function readTrainConfig(file: string): Promise<TrainConfig> {
  const ext = extname(file).toLowerCase();
  if (![".json", ".yaml", ".yml"].includes(ext)) {
    throw new SegkitError("a training config must be a .json, .yaml or .yml file", { file });
  }
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SegkitError(code === "ENOENT" ? "config file not found" : `cannot read (${code})`, { file });
  }
  let value: unknown;
  try {
    // yaml's message ends with a drawing of the spot over several lines: keep the first
    value = ext === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    const message = ext === ".json" ? jsonError(text, err) : String((err as Error).message).split(":\n")[0];
    throw new SegkitError(`not valid ${ext === ".json" ? "JSON" : "YAML"}: ${message}`, { file });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new SegkitError("a training config must be a mapping of fields (model, epochs, ...)", { file });
  }
  try {
    validateTrainConfig(value as TrainConfig);
  } catch (err) {
    if (err instanceof SegkitError) throw new SegkitError(err.message, { file });
    throw err;
  }
  return value as TrainConfig;
}

/** `base` with the command-line flags applied (a copy). `--model` keeps the file's model options for the same preset, or encoder and decoder. */
function applyFlags(base: TrainConfig, f: TrainFlags): TrainConfig {
  const c: TrainConfig = structuredClone(base);
  if (f.model?.includes("+")) {
    // a composition: the file's options and encoder/decoder options are kept for the same encoder and decoder
    const [encoder, decoder] = f.model.split("+") as [EncoderChoice & string, DecoderChoice & string];
    const name = (p: unknown) => (typeof p === "string" ? p : (p as { name?: string } | undefined)?.name);
    const same = name(c.model?.encoder) === encoder && name(c.model?.decoder) === decoder;
    if (!same) c.model = { encoder, decoder };
  } else if (f.model !== undefined) {
    const same = c.model?.encoder === undefined && (c.model?.arch === undefined || c.model.arch === f.model);
    c.model = {
      arch: f.model as NonNullable<TrainConfig["model"]>["arch"],
      ...(same ? { options: c.model?.options } : {}),
    };
  }
  if (f.size !== undefined) c.inputSize = f.size;
  if (f.epochs !== undefined) c.epochs = f.epochs;
  if (f.batchSize !== undefined) c.batchSize = f.batchSize;
  if (f.seed !== undefined) c.seed = f.seed;
  if (f.loss !== undefined) c.loss = f.loss as TrainConfig["loss"];
  if (f.encoderWeights !== undefined) c.encoderWeights = resolve(f.encoderWeights);
  if (f.freezeEncoder !== undefined) c.freezeEncoderEpochs = f.freezeEncoder;
  if (f.lr !== undefined) {
    const o = c.optimizer ?? "adam";
    c.optimizer = typeof o === "string" ? { name: o, lr: f.lr } : { ...o, lr: f.lr };
  }
  return c;
}

/** The data of a new run, from the command's arguments. */
function dataSpec(path: string | undefined, f: TrainFlags, seed: number): DataSpec {
  const root = requirePath(path, f);
  const format = f.format ?? detectFormat(root);
  const defaults = DEFAULT_SPLITS[format];
  if (f.valSplit !== undefined && f.valFraction !== undefined) {
    throw new SegkitError("give --val-split or --val-fraction, not both");
  }
  // the default validation split, when the dataset has it (its directory, as CamVid's and DRIVE's layouts name them)
  const defaultVal =
    defaults?.val !== undefined && existsSync(join(root, defaults.val)) ? defaults.val.split("/")[0] : undefined;
  const valSplit = f.valSplit ?? (f.split === undefined && f.valFraction === undefined ? defaultVal : undefined);
  const split = f.split ?? defaults?.train;
  if (valSplit !== undefined) {
    const names = (s: string | undefined) => (s ?? "").split(",").map((n) => n.trim());
    const both = names(valSplit).filter((n) => names(split).includes(n));
    if (split === undefined || both.length > 0) {
      throw new SegkitError(
        split === undefined
          ? "--val-split needs --split naming the training split(s)"
          : `split ${both.join(", ")} would be used for training and validation`,
      );
    }
  }
  const dataset: DatasetFlags = {
    ...Object.fromEntries(Object.entries(datasetFlags(f)).filter(([, v]) => v !== undefined)),
    format,
    ...(split !== undefined ? { split } : {}),
  };
  const generated = format.startsWith("synthetic");
  if (!generated) delete dataset.seed; // --seed seeds training; only the synthetic sets take it too
  return {
    path: generated ? root : resolve(root),
    dataset,
    validation:
      valSplit !== undefined ? { split: valSplit } : { fraction: f.valFraction ?? DEFAULT_VAL_FRACTION, seed },
  };
}

/** Opens the training and validation sets of `spec`. */
async function openData(spec: DataSpec): Promise<{ train: Dataset; val: Dataset; how: string }> {
  const all = await openForCli(spec.path, spec.dataset);
  const v = spec.validation;
  if ("split" in v) {
    const val = await openForCli(spec.path, { ...spec.dataset, split: v.split });
    return { train: all, val, how: `split ${v.split}` };
  }
  const [train, val] = splitDataset(all, [1 - v.fraction, v.fraction], v.seed) as [Dataset, Dataset];
  if (train.length === 0 || val.length === 0) {
    throw new SegkitError(
      `--val-fraction ${v.fraction} of ${all.length} samples leaves ${train.length} to train and ${val.length} ` +
        "to validate",
      { file: spec.path, hint: "use more samples or another --val-fraction" },
    );
  }
  return { train, val, how: `${Math.round(100 * v.fraction)}% held out with seed ${v.seed}` };
}

/** Flags that set the training configuration (only --epochs may be given with --resume). */
const CONFIG_FLAGS = [
  "config",
  "model",
  "size",
  "batchSize",
  "lr",
  "loss",
  "seed",
  "encoderWeights",
  "freezeEncoder",
] as const;
const flagName = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** A JSON file of a run directory. */
async function readRunFile(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, "utf8"));
  } catch (err) {
    throw new SegkitError(`cannot read the run's record (${errorMessage(err)})`, {
      file,
      hint: "start again with --overwrite",
    });
  }
}

/** A run to start or continue: its configuration and data. */
async function planRun(
  path: string | undefined,
  f: TrainFlags,
): Promise<{ config: TrainConfig; spec: DataSpec; resumedFrom: number }> {
  const lastDir = await checkpointDir(f.out, "last");
  if (!f.resume) {
    if (lastDir && !f.overwrite) {
      throw new SegkitError("already holds a training run", {
        file: f.out,
        hint: "continue it with --resume, start again with --overwrite, or choose another --out",
      });
    }
    const config = applyFlags(f.config ? await readTrainConfig(f.config) : {}, f);
    const seed = validateTrainConfig(config).seed;
    return { config, spec: dataSpec(path, f, seed), resumedFrom: 0 };
  }
  if (f.overwrite) throw new SegkitError("give --resume or --overwrite, not both");
  if (!lastDir) {
    throw new SegkitError("no checkpoint to resume from (last/ is missing)", {
      file: f.out,
      hint: "run without --resume to start training",
    });
  }
  const given = CONFIG_FLAGS.filter((k) => f[k] !== undefined);
  if (given.length > 0) {
    throw new SegkitError(`--resume continues the run's own configuration: drop ${given.map(flagName).join(", ")}`, {
      file: f.out,
      hint: "only --epochs may change; start a new run (another --out, or --overwrite) to change the rest",
    });
  }
  const state = (await readRunFile(join(lastDir, "train-state.json"))) as TrainState;
  const saved: ResolvedTrainConfig = state.config;
  const config = { ...saved, epochs: f.epochs ?? saved.epochs };
  if (config.epochs <= state.epoch) {
    throw new SegkitError(`the run has already trained ${state.epoch} of ${saved.epochs} epochs`, {
      file: f.out,
      hint: `pass --epochs with more than ${state.epoch} to train on`,
    });
  }
  const dataFile = join(f.out, DATA_FILE);
  const recorded = existsSync(dataFile) ? ((await readRunFile(dataFile)) as DataSpec) : null;
  const hasDataArgs = path !== undefined || Object.values(datasetFlags(f)).some((v) => v !== undefined);
  if (!recorded) {
    if (!hasDataArgs) {
      throw new SegkitError(`no ${DATA_FILE} saying which data the run trained on`, {
        file: f.out,
        hint: "give the dataset arguments again",
      });
    }
    return { config, spec: dataSpec(path, f, saved.seed), resumedFrom: state.epoch };
  }
  if (hasDataArgs) {
    // --seed is refused above: the synthetic set's seed is the recorded one
    const again = dataSpec(path, { ...f, seed: recorded.dataset.seed }, saved.seed);
    if (JSON.stringify(again) !== JSON.stringify(recorded)) {
      throw new SegkitError("cannot resume on other data than the run was started with", {
        file: join(f.out, DATA_FILE),
        hint: "leave the dataset arguments out with --resume",
      });
    }
  }
  return { config, spec: recorded, resumedFrom: state.epoch };
}

export interface CliFitRun {
  outDir: string;
  resume?: boolean;
  overwrite?: boolean;
  /** The line logged for each epoch (default: `formatEpochLine`, as `fitReporter` logs it). */
  epochLine?: (m: EpochMetrics) => string;
  /** `fit`'s `replan`: the run's total epochs after each epoch. */
  replan?: (history: readonly EpochMetrics[]) => number;
}

/** `fit` for the CLI: progress bars and epoch lines on stderr, each skipped sample reported once, Ctrl-C stops. */
export async function runFit(
  train: Dataset,
  val: Dataset,
  config: TrainConfig,
  run: CliFitRun,
  io: CliIo,
): Promise<FitSummary> {
  const reporter = fitReporter({
    bar: (label) => createProgress(label, "images"),
    classNames: train.classNames,
    ...(run.epochLine ? {} : { log: io.err }),
  });
  const seen = new Set<string>();
  const interrupt = abortOnSigint(io, "batch");
  try {
    return await fit(train, val, config, {
      outDir: run.outDir,
      ...(run.resume ? { resume: true } : {}),
      ...(run.overwrite ? { overwrite: true } : {}),
      ...(run.replan ? { replan: run.replan } : {}),
      signal: interrupt.signal,
      onProgress: reporter.onProgress,
      onEpoch: async (m, s) => {
        await reporter.onEpoch(m, s);
        if (run.epochLine) io.err(run.epochLine(m));
      },
      onSkip: (s: SkippedSample) => {
        if (seen.has(s.path)) return;
        seen.add(s.path);
        io.err(`skipped ${s.path}: ${s.reason}`);
      },
    });
  } finally {
    interrupt.release();
  }
}

const f4 = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? "n/a" : x.toFixed(4));

/** Per-class IoU as `pet 0.7012, background 0.9034, ...`. */
export const classIous = (iou: readonly number[], classNames: readonly string[]) =>
  iou.map((x, c) => `${classNames[c] ?? c} ${f4(x)}`).join(", ");

/** The end of a run: why it stopped, the best epoch and its val mIoU, where the checkpoints and reports are. */
function printSummary(s: FitSummary, classNames: readonly string[], out: (line: string) => void): void {
  if (s.stopReason === "early-stopping") out(`stopped early after epoch ${s.epochs}: ${s.monitor} stopped improving`);
  if (!s.best) {
    out(s.epochs === 0 ? "no epoch finished" : `no epoch had a valid ${s.monitor}`);
  } else {
    const by = s.monitor === "val/miou" ? "" : ` by ${s.monitor}`;
    out(
      `best epoch ${s.bestEpoch} of ${s.epochs}${by}: val mIoU ${f4(s.best["val/miou"])} ` +
        `(${classIous(s.best["val/iou"], classNames)})`,
    );
  }
  const where = [
    s.checkpoints.best ? `best ${s.checkpoints.best}` : "",
    s.checkpoints.last ? `last ${s.checkpoints.last} (epoch ${s.epochs})` : "",
  ].filter(Boolean);
  if (where.length) out(`checkpoints: ${where.join(", ")}`);
  const report = join(s.outDir, "report.html");
  out(`metrics: ${join(s.outDir, "metrics.jsonl")}${existsSync(report) ? `  report: ${report}` : ""}`);
}

/** `s` quoted for a POSIX shell when it needs to be. */
export const shellWord = (s: string) => (/^[\w./:@=-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);

export function registerTrain(program: Command, io: CliIo): void {
  const cmd = datasetOptions(
    program
      .command("train")
      .description("train a segmentation model: checkpoints, metrics and a report in --out")
      .argument("[path]", "dataset directory (omit with --format synthetic, or with --resume)")
      .option("--data <path>", "the dataset directory, as an option (the same as [path])")
      .requiredOption("-o, --out <dir>", "run directory: last/ and best/ checkpoints, metrics.jsonl, report.html")
      .option(
        "-c, --config <file>",
        "training config, JSON or YAML (model, loss, optimizer, schedule, batchSize, augment, classWeights, seed...)",
      )
      .addOption(
        new Option("--model <name>", "a preset, or ENCODER+DECODER (e.g. mobilenetv2+unet)").choices([
          ...MODEL_ARCHS,
          ...ENCODER_NAMES.flatMap((e) => DECODER_NAMES.map((d) => `${e}+${d}`)),
        ]),
      )
      .addOption(
        new Option(
          "--task <task>",
          "instance: learn the instances of coco or synthetic-instances data as background / boundary / interior maps",
        ).choices(["semantic", "instance"]),
      )
      .option("--size <N|HxW>", "model input size (samples are resized to it): 128 or 96x128 (height x width)", sizeArg)
      .option("--epochs <n>", "passes over the training set (with --resume: the new total)", int("--epochs", 1))
      .option("--batch-size <n>", "images per training step", int("--batch-size", 1))
      .option("--lr <x>", "learning rate", positiveNumber("--lr"))
      .addOption(new Option("--loss <name>", "loss").choices(LOSS_NAMES))
      .option(
        "--encoder-weights <file>",
        "pretrained encoder weights: Keras .h5, torchvision / timm .safetensors (MobileNetV2), or a TF.js model",
      )
      .option(
        "--freeze-encoder <epochs>",
        "keep the encoder frozen for the first EPOCHS epochs, then train it too",
        int("--freeze-encoder", 0),
      )
      .option("--val-split <names>", "validate on these official splits (default: CamVid val)")
      .option(
        "--val-fraction <f>",
        `hold out this fraction of the training samples for validation, drawn with the seed (default ${DEFAULT_VAL_FRACTION})`,
        fraction,
      )
      .option("--resume", "continue the run in --out from last/ (data and config from the run; only --epochs changes)")
      .option("--overwrite", "start again in an --out that holds a run")
      .addOption(backendOption()),
  );
  const seed = cmd.options.find((o) => o.long === "--seed");
  if (seed)
    seed.description = "training seed (weights, shuffle, augmentation, held-out split); synthetic: also the data";
  cmd.exitOverride().action(async (arg: string | undefined, f: TrainFlags) => {
    if (arg !== undefined && f.data !== undefined && resolve(arg) !== resolve(f.data)) {
      throw new SegkitError(`two datasets given: ${arg} and --data ${f.data}`, { hint: "give one of them" });
    }
    // 1. the configuration and data of the run to start or continue
    const plan = await planRun(arg ?? f.data, f);
    const cfg = validateTrainConfig(plan.config);
    const backend = await initBackend({ backend: f.backend });
    const { train, val, how } = await openData(plan.spec);
    for (const s of train.skipped.slice(0, 5)) io.err(`skipped ${s.path}: ${s.reason}`);
    if (train.skipped.length > 5)
      io.err(`skipped ${train.skipped.length - 5} more files (segkit data inspect lists them)`);
    const threads = backend === "wasm" ? ` (${wasmThreads()} threads)` : "";
    const frozen = cfg.freezeEncoderEpochs ? `, encoder frozen for ${cfg.freezeEncoderEpochs} epochs` : "";
    const pretrained = cfg.encoderWeights && !plan.resumedFrom ? `; encoder weights from ${cfg.encoderWeights}` : "";
    io.err(
      `${plan.resumedFrom ? `resuming after epoch ${plan.resumedFrom}: ` : ""}training ${trainModelName(cfg.model)} at ` +
        `${cfg.inputSize.join("x")} on ${train.length} ${train.format} samples, validating on ${val.length} ` +
        `(${how}); backend ${backend}${threads}${pretrained}${frozen}`,
    );
    // 2. train, recording where the data came from
    await writeFileAtomic(join(f.out, DATA_FILE), `${JSON.stringify(plan.spec, null, 2)}\n`);
    const resume = plan.resumedFrom > 0;
    const summary = await runFit(train, val, plan.config, { outDir: f.out, resume, overwrite: !resume }, io);
    // 3. the outcome
    printSummary(summary, train.classNames, io.out);
    if (summary.stopReason === "aborted") {
      io.err(
        summary.epochs === 0
          ? "interrupted before the first epoch finished: nothing saved"
          : `interrupted: last/ holds epoch ${summary.epochs}; continue with: ` +
              `segkit train --resume --out ${shellWord(f.out)}`,
      );
      throw new CommanderError(130, "segkit.interrupted", "interrupted");
    }
  });
}
