import { type PanopticQuality, pqCompute, SegkitError, writeFileAtomic } from "../index.js";
import type { CliIo } from "./options.js";
import { createProgress } from "./progress.js";

/** The flags of `segkit eval --task panoptic`. */
export interface PanopticEvalFlags {
  pred: string;
  gt?: string;
  predDir?: string;
  gtDir?: string;
  json: string;
}

/** `x` with one decimal as Python's `{:.1f}` writes it: an exact tie rounds to the even digit (toFixed rounds up). */
export function pythonFixed1(x: number): string {
  const tie = /^(\d+\.\d)50*$/.exec(x.toFixed(20));
  return tie && Number(tie[1]?.at(-1)) % 2 === 0 ? (tie[1] as string) : x.toFixed(1);
}

/** panopticapi's table: PQ, SQ, RQ in percent with one decimal, and N, for All, Things and Stuff. */
export function pqTable(r: PanopticQuality): string[] {
  const cell = (x: number) => (Number.isNaN(x) ? "nan" : pythonFixed1(100 * x)).padStart(5);
  return [
    `${"".padEnd(10)}| ${["PQ", "SQ", "RQ"].map((h) => h.padStart(5)).join("  ")} ${"N".padStart(5)}`,
    "-".repeat(38),
    ...(["All", "Things", "Stuff"] as const).map((name) => {
      const s = r[name];
      return `${name.padEnd(10)}| ${[s.pq, s.sq, s.rq].map(cell).join("  ")} ${String(s.n).padStart(5)}`;
    }),
  ];
}

/** `segkit eval --task panoptic`: pqCompute on the two COCO panoptic files, the table, the JSON report (atomic). */
export async function runPanopticEval(flags: PanopticEvalFlags, io: CliIo): Promise<void> {
  if (!flags.gt) {
    throw new SegkitError("--task panoptic needs --gt", { hint: "give the ground truth's COCO panoptic JSON" });
  }
  const progress = createProgress("eval", "images");
  const result = await pqCompute(flags.gt, flags.pred, {
    ...(flags.gtDir ? { gtDir: flags.gtDir } : {}),
    ...(flags.predDir ? { predDir: flags.predDir } : {}),
    onProgress: (d, t) => progress.update(d, t),
  }).finally(() => progress.stop());
  for (const line of pqTable(result)) io.out(line);
  // NaN (a mean over no categories) is written as null
  const json = JSON.stringify(result, (_k, v) => (typeof v === "number" && Number.isNaN(v) ? null : v), 2);
  await writeFileAtomic(flags.json, `${json}\n`);
  io.out(`wrote ${flags.json}`);
}
