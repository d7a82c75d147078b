/**
 * `segkit eval --task instance`: COCO results (or a COCO file with scores, as `segkit instances` writes it) scored
 * against a COCO instances file exactly as pycocotools' COCOeval, per IoU type. The semantic task stays in main.ts.
 */
import { type Command, InvalidArgumentError } from "commander";
import {
  type CocoIouType,
  cocoEvalReport,
  evaluateCocoFiles,
  formatCocoSummary,
  SegkitError,
  writeFileAtomic,
} from "../index.js";

export type EvalTask = "semantic" | "instance" | "panoptic";

export const evalTask = (v: string): EvalTask => {
  if (v === "semantic" || v === "instance" || v === "panoptic") return v;
  throw new InvalidArgumentError("expected semantic, instance or panoptic");
};

export const iouTypes = (v: string): CocoIouType[] => {
  if (v === "segm" || v === "bbox") return [v];
  if (v === "both") return ["segm", "bbox"];
  throw new InvalidArgumentError("expected segm, bbox or both");
};

/** The task an eval flag belongs to (undefined: every task's); by commander attribute name. */
function flagTask(name: string): EvalTask | undefined {
  if (name === "iouType") return "instance";
  if (name === "predDir" || name === "gtDir") return "panoptic";
  return ["pred", "gt", "task", "json"].includes(name) ? undefined : "semantic";
}

/** A flag typed for another task is an error naming it: silently ignoring it would mislead. */
export function checkTaskFlags(task: EvalTask, cmd: Command): void {
  for (const opt of cmd.options) {
    const name = opt.attributeName();
    const owner = flagTask(name);
    if (owner && owner !== task && cmd.getOptionValueSource(name) === "cli") {
      throw new SegkitError(`${opt.long} applies to --task ${owner}, not ${task}`);
    }
  }
}

export interface InstanceEvalFlags {
  pred: string;
  gt?: string;
  json: string;
  iouType?: CocoIouType[];
}

/** Scores `--pred` against `--gt`, prints summarize's twelve lines and per-class AP per IoU type, writes the report. */
export async function evalInstances(flags: InstanceEvalFlags, out: (s: string) => void): Promise<void> {
  if (!flags.gt) throw new SegkitError("--task instance needs --gt <instances.json> (COCO ground truth)");
  const results = await evaluateCocoFiles(flags.pred, flags.gt, flags.iouType ?? ["segm", "bbox"]);
  for (const r of results) {
    out(`IoU type ${r.iouType} (${flags.pred} against ${flags.gt})`);
    for (const line of formatCocoSummary(r.stats)) out(line);
    out("per-class AP @[ IoU=0.50:0.95 | area=all | maxDets=100 ]");
    const width = Math.max(5, ...r.perClass.map((c) => c.name.length));
    out(`  ${"id".padStart(4)}  ${"class".padEnd(width)}  AP`);
    for (const c of r.perClass) {
      const ap = c.ap < 0 ? "-1 (no ground truth)" : c.ap.toFixed(3);
      out(`  ${String(c.id).padStart(4)}  ${c.name.padEnd(width)}  ${ap}`);
    }
  }
  const report = Object.fromEntries(results.map((r) => [r.iouType, cocoEvalReport(r)]));
  await writeFileAtomic(flags.json, `${JSON.stringify(report)}\n`);
  out(`wrote ${flags.json}`);
}
