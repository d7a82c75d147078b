#!/usr/bin/env node
// Runs every src/**/*.test.ts with Node's test runner (TypeScript through tsx).
// Node 20's runner does not expand globs, so the file list is built here.
// SEGKIT_SLOW=1 enables the slow tests (CI sets it).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const files = readdirSync("src", { recursive: true, encoding: "utf8" })
  .filter((f) => f.endsWith(".test.ts"))
  .map((f) => join("src", f))
  .sort();
if (files.length === 0) {
  console.error("run-tests: no src/**/*.test.ts found");
  process.exit(1);
}
const args = ["--import", "tsx", "--test", "--test-reporter=spec", ...process.argv.slice(2), ...files];
const result = spawnSync(process.execPath, args, { stdio: "inherit" });
process.exit(result.status ?? 1);
