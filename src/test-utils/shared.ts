import { existsSync } from "node:fs";
import { join } from "node:path";

/** The real datasets beside the repository (../shared/datasets); never copied into it. */
export const SHARED_DATASETS = join(process.cwd(), "..", "shared", "datasets");

/**
 * `skip` option for tests that read ../shared/datasets: they run whenever it is there, and in CI it must be
 * (a missing ../shared in CI is an error, not a skip).
 */
export function sharedSkip(): false | string {
  if (existsSync(SHARED_DATASETS)) return false;
  if (process.env.CI) throw new Error(`CI needs ${SHARED_DATASETS}`);
  return `${SHARED_DATASETS} not present`;
}

/** `skip` option for slow tests: they run with SEGKIT_SLOW=1 (CI sets it). */
export function slowSkip(): false | string {
  return process.env.SEGKIT_SLOW ? false : "slow test: set SEGKIT_SLOW=1";
}

export const sharedPath = (...parts: string[]): string => join(SHARED_DATASETS, ...parts);
