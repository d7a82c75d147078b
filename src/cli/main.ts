import { Command, CommanderError, InvalidArgumentError } from "commander";
import {
  DATASET_FORMATS,
  type DatasetReport,
  defaultEvalSplit,
  type EvaluationReport,
  evaluatePredictions,
  inspectDataset,
  previewGrid,
  renderConfusionHeatmap,
  SegkitError,
  type SkippedSample,
  VERSION,
  writeFileAtomic,
  writeImagePng,
  type ZeroDivision,
} from "../index.js";
import { registerDemo } from "./demo.js";
import { checkTaskFlags, type EvalTask, evalInstances, evalTask, type InstanceEvalFlags, iouTypes } from "./eval.js";
import { runPanopticEval } from "./eval-panoptic.js";
import { registerExport } from "./export.js";
import { registerInstances } from "./instances.js";
import { type DatasetFlags, datasetOptions, int, openForCli, positive, requirePath } from "./options.js";
import { registerPanoptic } from "./panoptic.js";
import { registerPredict } from "./predict.js";
import { createProgress } from "./progress.js";
import { registerSam } from "./sam.js";
import { registerStudio } from "./studio.js";
import { registerTrain } from "./train.js";

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

function printReport(root: string, r: DatasetReport, out: (s: string) => void): void {
  out(`${r.format}  ${root}`);
  out(`pairs: ${r.pairs} usable of ${r.listed} listed`);
  out(`image width:  min ${r.width.min}  median ${r.width.median}  max ${r.width.max}`);
  out(`image height: min ${r.height.min}  median ${r.height.median}  max ${r.height.max}`);
  out("pixels by class:");
  const w = Math.max(7, ...r.classes.map((c) => c.name.length));
  for (const c of r.classes)
    out(`  ${String(c.index).padStart(3)}  ${c.name.padEnd(w)}  ${pct(c.pixelFraction).padStart(7)}`);
  out(`  ${String(r.ignoreIndex).padStart(3)}  ${"ignored".padEnd(w)}  ${pct(r.ignoredFraction).padStart(7)}`);
  out(r.skipped.length === 0 ? "skipped: none" : `skipped: ${r.skipped.length}`);
  for (const s of r.skipped) out(`  ${s.path}: ${s.reason}`);
}

interface EvalFlags extends DatasetFlags, InstanceEvalFlags {
  task: EvalTask;
  predDir?: string;
  gtDir?: string;
  json: string;
  heatmap?: string;
  tolerance: number;
  toleranceRatio?: number;
  dilationRatio: number;
  zeroDivision: ZeroDivision;
}

const zeroDivision = (v: string): ZeroDivision => {
  if (v === "exclude") return v;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('--zero-division must be "exclude" or a number');
  return n;
};

/** NaN (an undefined score, see the zero-division policy) is written as null in JSON. */
const jsonNumbers = (_key: string, v: unknown) => (typeof v === "number" && Number.isNaN(v) ? null : v);

const num = (x: number) => (Number.isNaN(x) ? "   n/a" : x.toFixed(4).padStart(6));

function printEvaluation(r: EvaluationReport, out: (s: string) => void): void {
  const w = Math.max(5, ...r.classes.map((c) => c.length));
  const head = ["IoU", "Dice", "prec", "recall", "BF1", "share"].map((h) => h.padStart(6)).join("  ");
  out(`${"class".padEnd(w)}  ${head}`);
  for (const c of r.perClass) {
    const cells = [c.iou, c.dice, c.precision, c.recall, c.boundaryF1].map(num);
    out(`${c.name.padEnd(w)}  ${cells.join("  ")}  ${pct(c.pixelShare).padStart(6)}`);
  }
  const means = [r.miou, r.meanDice, r.meanPrecision, r.meanRecall, r.meanBoundaryF1].map(num);
  out(`${"mean".padEnd(w)}  ${means.join("  ")}`);
  out(`pixel accuracy ${num(r.pixelAccuracy).trim()}  frequency-weighted IoU ${num(r.frequencyWeightedIoU).trim()}`);
  out(`per-image mean IoU ${num(r.perImage.macro.iou).trim()}  boundary IoU ${num(r.meanBoundaryIoU).trim()}`);
  out(`boundary F1, mean over images (MATLAB MeanBFScore) ${num(r.imageMeanBoundaryF1).trim()}`);
  out(`${r.images} images scored${r.problems.length ? `, ${r.problems.length} counted as wrong:` : ""}`);
  some(
    r.problems.map((p) => `  ${p.path}: ${p.reason} (counted as wrong)`),
    out,
  );
  if (r.extra.length) out(`${r.extra.length} prediction files match no ground truth (not scored):`);
  some(
    r.extra.map((e) => `  ${e}`),
    out,
  );
  some(
    r.skipped.map((s) => `skipped ${s.path}: ${s.reason}`),
    out,
  );
}

/** The first `LISTED` lines, then how many more there are (the JSON report lists them all). */
const LISTED = 10;
function some(lines: string[], out: (s: string) => void): void {
  for (const line of lines.slice(0, LISTED)) out(line);
  if (lines.length > LISTED) out(`  ... and ${lines.length - LISTED} more (all in the JSON report)`);
}

export function buildProgram(out: (s: string) => void, err: (s: string) => void): Command {
  const program = new Command("segkit")
    .description("Image segmentation toolkit: datasets, training, evaluation, Segment Anything")
    .version(VERSION)
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ writeOut: (s) => out(s.trimEnd()), writeErr: (s) => err(s.trimEnd()) })
    .exitOverride();
  const data = program.command("data").description("inspect and preview datasets").exitOverride();

  datasetOptions(
    data
      .command("inspect")
      .description("report pairs, image sizes, class pixel fractions and skipped samples of a dataset")
      .argument("[path]", "dataset directory (omit with --format synthetic)")
      .option("--json", "print one JSON object instead of text"),
  )
    .exitOverride()
    .action(async (path: string | undefined, flags: DatasetFlags & { json?: boolean }) => {
      const ds = await openForCli(path, flags);
      const root = requirePath(path, flags);
      const progress = createProgress("inspect", "samples");
      const report = await inspectDataset(ds, {
        strict: Boolean(flags.strict),
        onProgress: (d, t) => progress.update(d, t),
      });
      progress.stop();
      if (flags.json) out(JSON.stringify({ path: root, ...report }, null, 2));
      else printReport(root, report, out);
    });

  datasetOptions(
    data
      .command("preview")
      .description("write a grid of samples with their masks overlaid, as training will see them")
      .argument("[path]", "dataset directory (omit with --format synthetic)")
      .requiredOption("-o, --out <file.png>", "output PNG")
      .option("-n, --n <count>", "number of samples", int("--n", 1), 16)
      .option("--size <px>", "tile size in pixels", int("--size", 8), 192)
      .option("--augment", "show training-time augmentation (flip, scale-crop, rotation, colour)"),
  )
    .exitOverride()
    .action(
      async (
        path: string | undefined,
        flags: DatasetFlags & { out: string; n: number; size: number; augment?: boolean },
      ) => {
        const ds = await openForCli(path, flags);
        for (const s of ds.skipped) err(`skipped ${s.path}: ${s.reason}`);
        const { grid, shown } = await previewGrid(ds, {
          n: flags.n,
          size: flags.size,
          augment: Boolean(flags.augment),
          ...(flags.seed !== undefined ? { seed: flags.seed } : {}),
          onSkip: (s: SkippedSample) => err(`skipped ${s.path}: ${s.reason}`),
        });
        await writeImagePng(flags.out, grid);
        out(`wrote ${flags.out}: ${shown} ${ds.format} samples (${ds.classNames.join(", ")})`);
      },
    );
  datasetOptions(
    program
      .command("eval")
      .description(
        "score predicted masks against a dataset (IoU, Dice, BF1); --task instance: COCO AP/AR; --task panoptic: PQ",
      )
      .requiredOption(
        "--pred <path>",
        "directory of predicted class-index masks, named by image base name (instance: COCO results JSON; panoptic: COCO panoptic JSON)",
      )
      .option(
        "--gt <path>",
        "ground-truth dataset directory (omit with --format synthetic; instance: COCO JSON; panoptic: COCO panoptic JSON)",
      )
      .option(
        "--task <task>",
        "semantic (masks against a dataset), instance (COCOeval) or panoptic (PQ)",
        evalTask,
        "semantic",
      )
      .option("--iou-type <type>", "instance: segm, bbox or both", iouTypes)
      .option("--pred-dir <dir>", "panoptic: the predictions' PNG folder (default: the JSON's path without .json)")
      .option("--gt-dir <dir>", "panoptic: the ground truth's PNG folder (default: the JSON's path without .json)")
      .option("--json <file>", "where to write the full report", "segkit-eval.json")
      .option(
        "--heatmap <file.png>",
        "where to write the confusion-matrix heatmap (default: beside --json, NAME-confusion.png)",
      )
      .option("--tolerance <px>", "boundary F1 match distance in pixels", positive("--tolerance"), 2)
      .option(
        "--tolerance-ratio <r>",
        "boundary F1 match distance as a fraction of the diagonal (overrides --tolerance)",
        positive("--tolerance-ratio"),
      )
      .option(
        "--dilation-ratio <r>",
        "boundary IoU band width as a fraction of the diagonal",
        positive("--dilation-ratio"),
        0.02,
      )
      .option(
        "--zero-division <v>",
        "score of a class absent from truth and prediction: exclude, or a number",
        zeroDivision,
        "exclude",
      ),
  )
    .exitOverride()
    .action(async (flags: EvalFlags, cmd: Command) => {
      checkTaskFlags(flags.task, cmd);
      if (flags.task === "instance") return evalInstances(flags, out);
      if (flags.task === "panoptic") return runPanopticEval(flags, { out, err });
      // without --split, the format's held-out split when the dataset has it (CamVid test, else val; DRIVE test)
      const held = flags.split === undefined && flags.gt ? defaultEvalSplit(flags.gt, flags.format) : undefined;
      if (held) out(`scoring split ${held.split} (${held.why}; --split to choose)`);
      const ds = await openForCli(flags.gt, held ? { ...flags, split: held.split } : flags);
      const progress = createProgress("eval", "images");
      const boundary =
        flags.toleranceRatio !== undefined
          ? { toleranceRatio: flags.toleranceRatio, dilationRatio: flags.dilationRatio }
          : { tolerance: flags.tolerance, dilationRatio: flags.dilationRatio };
      const report = await evaluatePredictions(ds, flags.pred, {
        boundary,
        zeroDivision: flags.zeroDivision,
        onProgress: (d, t) => progress.update(d, t),
      });
      progress.stop();
      printEvaluation(report, out);
      await writeFileAtomic(flags.json, `${JSON.stringify(report, jsonNumbers, 2)}\n`);
      const heatmap = flags.heatmap ?? `${flags.json.replace(/\.json$/i, "")}-confusion.png`;
      await writeFileAtomic(
        heatmap,
        await renderConfusionHeatmap(report.confusion, report.classes, { missed: report.missedPixels }),
      );
      out(`wrote ${flags.json} and ${heatmap}`);
    });

  const io = { out, err };
  registerTrain(program, io);
  registerPredict(program, io);
  registerDemo(program, io);
  registerSam(program, io);
  registerInstances(program, io);
  registerPanoptic(program, io);
  registerExport(program, io);
  registerStudio(program, io);

  program.addHelpText(
    "after",
    `\nDataset formats:\n${Object.entries(DATASET_FORMATS)
      .map(([n, f]) => `  ${n.padEnd(11)} ${f.description}`)
      .join("\n")}`,
  );
  return program;
}

/** Runs the CLI; returns the exit code. Bad input prints one line (`segkit: file: what is wrong. what to do`). */
export async function main(
  argv: string[],
  out: (s: string) => void = (s) => process.stdout.write(`${s}\n`),
  err: (s: string) => void = (s) => process.stderr.write(`${s}\n`),
): Promise<number> {
  const program = buildProgram(out, err);
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof SegkitError) {
      err(`segkit: ${e.describe()}`);
      return 1;
    }
    const errno = e as NodeJS.ErrnoException;
    if (typeof errno.code === "string" && errno.syscall) {
      err(`segkit: ${errno.path ?? errno.syscall}: ${errno.message.replace(/^\w+: /, "")}`);
      return 1;
    }
    throw e;
  }
}
