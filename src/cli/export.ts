import { type Command, Option } from "commander";
import { EXPORT_TARGETS, type ExportTarget, exportDataset } from "../index.js";
import { type CliIo, type DatasetFlags, datasetOptions, openForCli, positive, requirePath } from "./options.js";
import { createProgress } from "./progress.js";

/**
 * `segkit export`: converts a dataset of any format to COCO instances JSON (`annotations.json`), YOLO segmentation
 * labels (`labels/`, `data.yaml`) or a class-index PNG folder (`masks/`, `classes.json`), images copied beside them
 * (layouts and conventions in `src/export/`). Bad samples are reported on stderr and skipped; one summary line ends it.
 */

interface ExportFlags extends DatasetFlags {
  from?: string;
  to: ExportTarget;
  out: string;
  polygons?: boolean;
  instances?: boolean;
  tolerance: number;
}

export function registerExport(program: Command, io: CliIo): void {
  datasetOptions(
    program
      .command("export")
      .description("convert a dataset to COCO instances JSON, YOLO segmentation labels or a class-index PNG folder")
      .option("--from <path>", "dataset directory (omit with --format synthetic)")
      .addOption(new Option("--to <target>", "output layout").choices(EXPORT_TARGETS).makeOptionMandatory())
      .requiredOption("-o, --out <dir>", "output directory")
      .option("--polygons", "coco: polygons (outer rings, holes filled) instead of compressed RLE")
      .option("--instances", "coco: one annotation per connected component (iscrowd 0) instead of per class")
      .option(
        "--tolerance <px>",
        "polygon simplification in pixels (coco --polygons, yolo)",
        positive("--tolerance"),
        1,
      ),
  )
    .exitOverride()
    .action(async (flags: ExportFlags) => {
      const ds = await openForCli(flags.from, flags);
      const root = requirePath(flags.from, flags);
      for (const s of ds.skipped) io.err(`skipped ${s.path}: ${s.reason}`);
      const progress = createProgress("export", "samples");
      const summary = await exportDataset(ds, flags.out, {
        to: flags.to,
        ...(ds.files(0).length > 0 ? { root } : {}),
        polygons: Boolean(flags.polygons),
        instances: Boolean(flags.instances),
        tolerance: flags.tolerance,
        onProgress: (d, t) => progress.update(d, t),
        onSkip: (s) => io.err(`skipped ${s.path}: ${s.reason}`),
      }).finally(() => progress.stop());
      const what = flags.to === "coco" ? "annotations" : flags.to === "yolo" ? "label lines" : "masks";
      const count = flags.to === "png" ? summary.samples : summary.annotations;
      const holes = summary.holesFilled ? `, ${summary.holesFilled} holes filled (polygons have none)` : "";
      const bad = summary.skipped.length + ds.skipped.length;
      io.out(
        `exported ${summary.samples} ${ds.format} samples to ${flags.out} as ${flags.to}: ${count} ${what}${holes}, ${bad} skipped; index ${summary.file}`,
      );
    });
}
