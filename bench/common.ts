/** Shared by the benchmarks: timing passes, running a Python peer, machine facts, writing results. */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { writeFileAtomic } from "../src/io/fs.js";

/** Debian's interpreter: python3-pil, python3-numpy and friends install for it (not pyenv's `python3`). */
export const PYTHON = "/usr/bin/python3";

export interface Stats {
  /** Best and median rate over the timed passes (items per second). */
  best: number;
  median: number;
  passes: number[];
  /** Items per pass. */
  images: number;
}

/** One warm-up pass, then `repeats` timed passes; `pass(k)` returns how many items it processed. */
export async function measure(pass: (k: number) => Promise<number> | number, repeats: number): Promise<Stats> {
  await pass(0);
  const passes: number[] = [];
  let images = 0;
  for (let k = 1; k <= repeats; k++) {
    const start = performance.now();
    images = await pass(k);
    passes.push(images / ((performance.now() - start) / 1000));
  }
  const sorted = [...passes].sort((a, b) => a - b);
  return { best: Math.max(...passes), median: sorted[Math.floor(sorted.length / 2)] ?? 0, passes, images };
}

/**
 * Runs a Python peer script and parses the JSON object on its last stdout line; null (with the reason and the
 * install command printed) when Python or a module it needs is missing.
 */
export function runPythonPeer<T>(script: string, args: string[], install: string): T | null {
  const run = spawnSync(PYTHON, [script, ...args], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (run.error || run.status !== 0) {
    console.log(`peer ${script} not run: ${run.error?.message || run.stdout.trim() || run.stderr.trim()}`);
    console.log(`Install what it needs for ${PYTHON} with: ${install}`);
    return null;
  }
  return JSON.parse(run.stdout.trim().split("\n").at(-1) ?? "null") as T;
}

export function machine(): { cpus: number; cpuModel: string | undefined; node: string } {
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version };
}

/** Writes a result file atomically (temp file + rename) and says where. */
export async function writeResults(path: string, report: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`Wrote ${path}`);
}

/**
 * Resets this process's peak resident set size to the current one (Linux: `5` to /proc/self/clear_refs) and returns
 * that size in MB; `peakRssMB()` then reads the peak since (VmHWM), so a measurement excludes earlier peaks such as
 * loading models.
 */
export function resetPeakRssMB(): number {
  writeFileSync("/proc/self/clear_refs", "5");
  return statusMB("VmRSS");
}

/** Peak resident set size (MB) since the last `resetPeakRssMB`. */
export function peakRssMB(): number {
  return statusMB("VmHWM");
}

function statusMB(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "utf8"));
  if (!m) throw new Error(`no ${field} in /proc/self/status`);
  return Number(m[1]) / 1024;
}
