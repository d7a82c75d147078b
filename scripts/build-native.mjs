#!/usr/bin/env node
// Builds segkit's native kernels (native/segkit.cc -> build/Release/segkit_native.node) with node-gyp; run by npm
// as the package's `install` script. Optional: where it cannot build (no C++ compiler, make or python3; or
// SEGKIT_NATIVE=0), it prints one warning and exits 0, and segkit runs the same math on the wasm kernels.
// node-gyp: npm's own copy (npm passes its path as npm_config_node_gyp). Node's headers: npm's `nodedir` setting
// when set, else those beside this Node (Debian's nodejs ships them in /usr/include/node); with neither, node-gyp
// downloads them (which fails offline: then the warning).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const warn = (why) =>
  console.warn(`segkit: native kernels not built (${why}); training runs on the wasm kernels only (slower)`);

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(
      dirname(process.execPath),
      "..",
      "lib",
      "node_modules",
      "npm",
      "node_modules",
      "node-gyp",
      "bin",
      "node-gyp.js",
    ),
  ];
  return candidates.find((p) => p && existsSync(p));
}

function main() {
  if (process.env.SEGKIT_NATIVE === "0") return warn("SEGKIT_NATIVE=0");
  const gyp = nodeGyp();
  if (!gyp) return warn("node-gyp not found");
  const args = [gyp, "rebuild"];
  const prefix = resolve(dirname(process.execPath), "..");
  if (!process.env.npm_config_nodedir && existsSync(join(prefix, "include", "node", "node_api.h"))) {
    args.push(`--nodedir=${prefix}`);
  }
  const result = spawnSync(process.execPath, args, { cwd: root, encoding: "utf8" });
  if (result.status !== 0) {
    const log = `${result.stdout ?? ""}${result.stderr ?? ""}`.trim().split("\n");
    const why = log.find((l) => /error/i.test(l) && !l.startsWith("gyp ERR! stack")) ?? `exit ${result.status}`;
    return warn(why.trim());
  }
}

main();
