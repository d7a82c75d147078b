import type { Command } from "commander";
import {
  DEFAULT_PULL_OPTIONS,
  defaultCacheDir,
  type PulledFile,
  type PullProgress,
  type PullResult,
  pullModel,
} from "../index.js";
import type { CliIo } from "./options.js";
import { createProgress, type Progress } from "./progress.js";

interface PullFlags {
  dir?: string;
  endpoint: string;
  revision: string;
  include: string[];
  all?: boolean;
  token?: string;
}

/** 1000-based, one decimal: `950 B`, `12.3 kB`, `1.2 GB`. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n / 1000;
  let u = 0;
  while (v >= 999.95 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

const collect = (v: string, previous: string[]) => [...previous, v];

/** One line: `pulled REPO@COMMIT: N files, SIZE (a downloaded, b resumed, c already present; checked ...) in DIR`. */
function summary(repo: string, commit: string, files: PulledFile[], dir: string): string {
  const count = (f: (x: PulledFile) => boolean) => files.filter(f).length;
  const bytes = files.reduce((s, f) => s + f.bytes, 0);
  const fetched = files.filter((f) => f.status !== "present");
  const checked = (["sha256", "git-sha1", "none"] as const)
    .map((k) => [k === "none" ? "unchecked" : k, fetched.filter((f) => f.checksum === k).length] as const)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k}`);
  const statuses = [
    `${count((f) => f.status === "downloaded")} downloaded`,
    `${count((f) => f.status === "resumed")} resumed`,
    `${count((f) => f.status === "present")} already present`,
  ].join(", ");
  const s = files.length === 1 ? "" : "s";
  const check = checked.length ? `; checked: ${checked.join(", ")}` : "";
  return `pulled ${repo}@${commit}: ${files.length} file${s}, ${formatBytes(bytes)} (${statuses}${check}) in ${dir}`;
}

/**
 * `segkit sam ...`: Segment Anything. `sam pull REPO` downloads a model repository's SAM files (`*.onnx`,
 * `*.onnx_data`, `*.json` unless `--include` / `--all` say otherwise) into the cache (`pullModel`), with a progress
 * bar per file, and prints one summary line naming the snapshot directory, which is the model directory later
 * `sam` commands take. Returns the `sam` command so that further subcommands can join it.
 */
export function registerSam(program: Command, io: CliIo): Command {
  const sam = program.command("sam").description("Segment Anything: download promptable segmentation models");
  sam
    .command("pull")
    .description("download a model repository from a Hugging Face-style hub, resuming and checking checksums")
    .argument("<repo-id>", "owner/name, e.g. Xenova/slimsam-77-uniform")
    .option("--dir <dir>", `cache directory (default ${defaultCacheDir()}; $SEGKIT_CACHE/hub when set)`)
    .option("--endpoint <url>", "base URL of the hub", DEFAULT_PULL_OPTIONS.endpoint)
    .option("--revision <rev>", "branch, tag or commit", DEFAULT_PULL_OPTIONS.revision)
    .option(
      "--include <glob>",
      "files to fetch, repeatable (default: *.onnx *.onnx_data *.onnx.data *.json)",
      collect,
      [],
    )
    .option("--all", "fetch every file of the repository")
    .option("--token <token>", "access token for private or gated repositories (default: $HF_TOKEN)")
    .exitOverride()
    .action(async (repoId: string, flags: PullFlags) => {
      let bar: Progress | undefined;
      let current: string | undefined;
      const onProgress = (p: PullProgress) => {
        if (p.path !== current) {
          bar?.stop();
          current = p.path;
          const resumed = p.start > 0 ? `, resuming at ${formatBytes(p.start)}` : "";
          bar = createProgress(`${p.path} (${p.index + 1}/${p.count}${resumed})`, "MB");
        }
        // the bar counts this run's bytes, so that its rate and ETA are right for a resumed file
        const mb = (b: number) => Math.round(b / 1e5) / 10;
        bar?.update(mb(p.done - p.start), mb((p.total ?? p.done) - p.start));
      };
      const token = flags.token ?? process.env.HF_TOKEN;
      let r: PullResult;
      try {
        r = await pullModel(repoId, {
          endpoint: flags.endpoint,
          revision: flags.revision,
          ...(flags.dir ? { cacheDir: flags.dir } : {}),
          ...(flags.include.length ? { include: flags.include } : {}),
          ...(flags.all ? { all: true } : {}),
          ...(token ? { token } : {}),
          onProgress,
        });
      } finally {
        bar?.stop();
      }
      for (const f of r.files) {
        if (f.status !== "present" && f.checksum === "none") {
          io.err(`note: ${f.path}: the server gave no checksum for it; only its size was checked`);
        }
      }
      io.out(summary(repoId, r.commit ?? r.revision, r.files, r.dir));
    });
  return sam;
}
