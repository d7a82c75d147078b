import { type Command, InvalidArgumentError, Option } from "commander";
import {
  DATASET_FORMAT_NAMES,
  type Dataset,
  instanceTargetDataset,
  type OpenDatasetOptions,
  openDataset,
  SegkitError,
} from "../index.js";

/** Option parsers and the dataset options shared by the CLI's commands. */

/** The CLI's output streams (stdout, stderr), one line per call. */
export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

export const int = (name: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
  return n;
};

/** `0:1,255:0` -> { "0": 1, "255": 0 } */
function parseValueMap(v: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of v.split(",")) {
    const m = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(part);
    if (!m) throw new InvalidArgumentError(`expected stored:class pairs like 0:0,255:1, got "${part}"`);
    out[m[1] as string] = Number(m[2]);
  }
  return out;
}

export interface DatasetFlags {
  format?: string;
  split?: string;
  strict?: boolean;
  images?: string;
  annotations?: string;
  masks?: string;
  valid?: string;
  classes?: string;
  values?: Record<string, number>;
  threshold?: number;
  ignoreIndex?: number;
  mode?: "trimap" | "binary";
  seed?: number;
  length?: number;
  /** `instance`: the dataset's instances as target maps (`segkit train --task`; other commands' tasks pass by). */
  task?: string;
}

/** Every key of `DatasetFlags` (the compiler checks the list is complete). */
const DATASET_FLAG_KEYS = [
  "format",
  "split",
  "strict",
  "images",
  "annotations",
  "masks",
  "valid",
  "classes",
  "values",
  "threshold",
  "ignoreIndex",
  "mode",
  "seed",
  "length",
  "task",
] as const satisfies readonly (keyof DatasetFlags)[];
const everyDatasetFlag: Exclude<keyof DatasetFlags, (typeof DATASET_FLAG_KEYS)[number]> extends never ? true : never =
  true;
void everyDatasetFlag;

/** The dataset flags among a command's flags (given or not). */
export function datasetFlags(f: DatasetFlags): DatasetFlags {
  return Object.fromEntries(DATASET_FLAG_KEYS.map((k) => [k, f[k]])) as DatasetFlags;
}

export function datasetOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option("-f, --format <name>", "dataset format (detected from the layout when omitted)").choices(
        DATASET_FORMAT_NAMES,
      ),
    )
    .option("--split <names>", "official split(s), comma-separated (oxford-pet: trainval,test; camvid: train,val,test)")
    .option("--strict", "stop at the first bad sample instead of reporting it and going on")
    .option(
      "--images <dir>",
      "folder: image directory (default: images); coco: the directory file_names are relative to (default: the dataset); relative to the dataset",
    )
    .option(
      "--annotations <file>",
      "coco: the annotations file, relative to the dataset (default: annotations.json); coco-panoptic: the panoptic JSON",
    )
    .option(
      "--masks <dir>",
      "folder: mask directory, relative to the dataset (default: masks); coco-panoptic: the PNG folder",
    )
    .option("--valid <dir>", "folder: directory of valid-region masks (0 = ignore), relative to the dataset")
    .option("--classes <names>", "folder: class names, comma-separated")
    .option("--values <map>", "folder: stored value -> class, e.g. 0:1,255:0", parseValueMap)
    .option("--threshold <n>", "folder: binary masks, stored value >= n is class 1", int("--threshold", 1))
    .option("--ignore-index <n>", "mask value ignored by losses and metrics", int("--ignore-index", 0))
    .addOption(new Option("--mode <mode>", "oxford-pet: trimap (3 classes) or binary").choices(["trimap", "binary"]))
    .option("--seed <n>", "synthetic: the seed of the generated set", int("--seed", 0))
    .option("--length <n>", "synthetic: number of samples (default 200)", int("--length", 1));
}

export function toOpenOptions(f: DatasetFlags): OpenDatasetOptions {
  return {
    ...(f.format ? { format: f.format } : {}),
    ...(f.split ? { split: f.split } : {}),
    ...(f.strict ? { strict: true } : {}),
    ...(f.images ? { images: f.images } : {}),
    ...(f.annotations ? { annotations: f.annotations } : {}),
    ...(f.masks ? { masks: f.masks } : {}),
    ...(f.valid ? { valid: f.valid } : {}),
    ...(f.classes ? { classes: f.classes.split(",").map((s) => s.trim()) } : {}),
    ...(f.values ? { values: f.values } : {}),
    ...(f.threshold !== undefined ? { threshold: f.threshold } : {}),
    ...(f.ignoreIndex !== undefined ? { ignoreIndex: f.ignoreIndex } : {}),
    ...(f.mode ? { mode: f.mode } : {}),
    ...(f.seed !== undefined ? { seed: f.seed } : {}),
    ...(f.length !== undefined ? { length: f.length } : {}),
    ...(f.task === "instance" ? { task: "instance" as const } : {}), // semantic is every format's own
  };
}

/** Opens the dataset a command names; a dataset without a single pair is an error that lists why. */
export async function openForCli(path: string | undefined, f: DatasetFlags): Promise<Dataset> {
  const root = requirePath(path, f);
  const opened = await openDataset(root, toOpenOptions(f));
  const ds = f.task === "instance" ? instanceTargetDataset(opened) : opened;
  if (ds.length === 0) {
    const why = ds.skipped.slice(0, 5).map((s) => `${s.path}: ${s.reason}`);
    throw new SegkitError(
      `no image/mask pairs found (${ds.skipped.length} files skipped${why.length ? `: ${why.join("; ")}` : ""})`,
      {
        file: root,
        hint: "check --format and the directory layout (segkit --help lists the formats)",
      },
    );
  }
  return ds;
}

export function requirePath(path: string | undefined, f: DatasetFlags): string {
  if (path) return path;
  if (f.format?.startsWith("synthetic")) return f.format;
  throw new SegkitError("missing dataset path", { hint: "give a directory, or --format synthetic for the demo data" });
}

export const positive = (name: string) => (v: string) => {
  const n = Number(v);
  if (!(Number.isFinite(n) && n >= 0)) throw new InvalidArgumentError(`${name} must be a number >= 0`);
  return n;
};

/**
 * Ctrl-C as long work wants it: the first aborts the returned signal (saying "stopping at the next `where`"), a
 * second exits at once with 130. `release()` removes the handler.
 */
export function abortOnSigint(io: CliIo, where: string): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    io.err(`stopping at the next ${where} (Ctrl-C again to quit at once)`);
    controller.abort();
  };
  process.on("SIGINT", onSigint);
  return { signal: controller.signal, release: () => process.off("SIGINT", onSigint) };
}
