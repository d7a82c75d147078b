import { basename, join } from "node:path";
import { type Command, CommanderError, InvalidArgumentError } from "commander";
import {
  AMG_COCO_FILE,
  type AmgFilesSummary,
  createSamPredictor,
  DEFAULT_AMG_OPTIONS,
  DEFAULT_PULL_OPTIONS,
  defaultCacheDir,
  generateMaskFiles,
  type PulledFile,
  type PullProgress,
  type PullResult,
  pullModel,
  readImage,
  readMaskInput,
  type SamBox,
  type SamPoint,
  type SamPredictorOptions,
  type SamPredictRequest,
  SegkitError,
  type SkippedSample,
  writeFileAtomic,
  writeSamOutputs,
} from "../index.js";
import { abortOnSigint, type CliIo, int, positive } from "./options.js";
import { createProgress, type Progress } from "./progress.js";
import { type SamVideoFlags, samVideo } from "./sam-video.js";

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

/** Comma-separated finite numbers, `count` of them (or any count in `counts`). */
function numbers(v: string, counts: number[], what: string): number[] {
  const parts = v.split(",").map((s) => Number(s.trim()));
  if (!counts.includes(parts.length) || !parts.every(Number.isFinite) || v.trim() === "") {
    throw new InvalidArgumentError(`expected ${what}, got "${v}"`);
  }
  return parts;
}

/** `x,y` or `x,y,label` (label 1 foreground, default; 0 background), in original-image pixels. */
const pointArg = (v: string, previous: SamPoint[]): SamPoint[] => {
  const [x, y, label = 1] = numbers(v, [2, 3], "x,y or x,y,label") as [number, number, number?];
  if (label !== 0 && label !== 1) throw new InvalidArgumentError(`point label must be 1 or 0, got "${v}"`);
  return [...previous, { x, y, label }];
};

const boxArg = (v: string, previous: SamBox[]): SamBox[] => [
  ...previous,
  numbers(v, [4], "x1,y1,x2,y2") as unknown as SamBox,
];

interface SamFlags {
  model?: string;
  image?: string;
  point: SamPoint[];
  box: SamBox[];
  multimask?: boolean;
  maskInput?: string;
  maskIndex?: number;
  out?: string;
  cacheDir?: string;
  threads?: number;
  variant?: string;
  provider: string[];
}

const ms = (x: number) => Math.round(x * 100) / 100;

/** The predictor options the `sam` group's flags give (shared by `sam` and `sam auto`). */
function predictorOptions(flags: SamFlags): SamPredictorOptions {
  return {
    ...(flags.threads ? { threads: flags.threads } : {}),
    ...(flags.cacheDir ? { cacheDir: flags.cacheDir } : {}),
    ...(flags.variant ? { variant: flags.variant } : {}),
    ...(flags.provider.length ? { executionProviders: flags.provider } : {}),
  };
}

/** `--model`, `--image` and `--out`, which `sam` and `sam auto` both need (checked here, not by commander). */
function requireModelImageOut(flags: Pick<SamFlags, "model" | "image" | "out">, usage: string): void {
  for (const [flag, value] of [
    ["--model", flags.model],
    ["--image", flags.image],
    ["--out", flags.out],
  ] as const) {
    if (!value) throw new SegkitError(`missing ${flag}`, { hint: usage });
  }
}

/** `segkit sam --model DIR --image IMG [prompts] --out DIR`: the default action of the `sam` group. */
async function samPredict(flags: SamFlags, io: CliIo): Promise<void> {
  requireModelImageOut(
    flags,
    "usage: segkit sam --model DIR --image IMG --point X,Y[,LABEL] --box X1,Y1,X2,Y2 --out DIR (or sam pull)",
  );
  const [modelDir, imagePath, out] = [flags.model as string, flags.image as string, flags.out as string];
  const t0 = performance.now();
  const predictor = await createSamPredictor(modelDir, predictorOptions(flags));
  try {
    const loadMs = performance.now() - t0;
    const image = await readImage(imagePath);
    const info = await predictor.setImage(image);
    const { originalSize, inputSize } = info;
    const request: SamPredictRequest = {
      points: flags.point,
      ...(flags.box.length === 1 ? { box: flags.box[0] } : flags.box.length > 1 ? { boxes: flags.box } : {}),
      ...(flags.maskInput
        ? { maskInput: await readMaskInput(flags.maskInput, originalSize, flags.maskIndex, inputSize) }
        : {}),
      multimask: Boolean(flags.multimask),
    };
    const prediction = await predictor.predict(request);
    const files = await writeSamOutputs(out, image, prediction, request);
    const result = {
      image: imagePath,
      model: modelDir,
      layout: predictor.model.layout,
      originalSize,
      prompt: {
        points: flags.point,
        boxes: flags.box,
        multimask: Boolean(flags.multimask),
        ...(flags.maskInput ? { maskInput: flags.maskInput } : {}),
      },
      ...files,
      lowResShape: prediction.lowResLogits.dims,
      timings: {
        loadMs: ms(loadMs),
        setImageMs: ms(info.ms),
        embeddings: info.source,
        decodeMs: ms(prediction.timings.decodeMs),
        upscaleMs: ms(prediction.timings.upscaleMs),
      },
    };
    await writeFileAtomic(join(out, "result.json"), `${JSON.stringify(result, null, 2)}\n`);
    for (const m of files.masks) {
      io.out(`${m.file}  score ${m.score.toFixed(4)}  stability ${m.stabilityScore.toFixed(4)}  channel ${m.channel}`);
    }
    io.out(
      `wrote ${files.masks.length} mask${files.masks.length === 1 ? "" : "s"}, overlay.png, low_res_logits.npy, ` +
        `result.json to ${out} (embeddings: ${info.source} ${info.ms.toFixed(0)} ms, decoder ${prediction.timings.decodeMs.toFixed(1)} ms)`,
    );
  } finally {
    await predictor.dispose();
  }
}

interface AutoFlags {
  pointsPerSide: number;
  pointsPerBatch: number;
  predIouThresh: number;
  stabilityScoreThresh: number;
  boxNmsThresh: number;
  cropNLayers: number;
  minMaskRegionArea: number;
  masksPng?: boolean;
}

/** `segkit sam auto --model DIR --image IMG|DIR --out DIR [AMG options]`: `generateMaskFiles` with a bar per image. */
async function samAuto(flags: AutoFlags & SamFlags, io: CliIo): Promise<void> {
  requireModelImageOut(flags, "usage: segkit sam auto --model DIR --image IMG|DIR --out DIR");
  if (flags.point.length || flags.box.length || flags.multimask || flags.maskInput) {
    throw new SegkitError("sam auto takes no prompts (--point, --box, --multimask, --mask-input)", {
      hint: "it prompts a grid of points itself; see --points-per-side",
    });
  }
  const [modelDir, input, out] = [flags.model as string, flags.image as string, flags.out as string];
  const predictor = await createSamPredictor(modelDir, predictorOptions(flags));
  const interrupt = abortOnSigint(io, "decoder call");
  const skipped: SkippedSample[] = [];
  let bar: Progress | undefined;
  let current: string | undefined;
  let summary: AmgFilesSummary;
  try {
    summary = await generateMaskFiles(predictor, input, out, {
      pointsPerSide: flags.pointsPerSide,
      pointsPerBatch: flags.pointsPerBatch,
      predIouThresh: flags.predIouThresh,
      stabilityScoreThresh: flags.stabilityScoreThresh,
      boxNmsThresh: flags.boxNmsThresh,
      cropNLayers: flags.cropNLayers,
      minMaskRegionArea: flags.minMaskRegionArea,
      masksPng: Boolean(flags.masksPng),
      signal: interrupt.signal,
      onSkip: (s) => void skipped.push(s),
      onProgress: (p) => {
        if (p.file !== current) {
          bar?.stop();
          current = p.file;
          bar = createProgress(`${basename(p.file)} (${p.image + 1}/${p.images})`, "points");
        }
        // every crop has the grid of pointsPerSide (the CLI keeps the downscale factor at 1)
        bar?.update(p.crop * p.pointsInCrop + p.points, p.crops * p.pointsInCrop);
      },
    });
  } finally {
    bar?.stop();
    interrupt.release();
    await predictor.dispose();
  }
  for (const s of skipped) io.err(`skipped ${s.path}: ${s.reason}`);
  const images = `${summary.images} image${summary.images === 1 ? "" : "s"}`;
  if (summary.stopped) {
    io.err(`interrupted with ${images} finished: their files are in ${out}`);
    throw new CommanderError(130, "segkit.interrupted", "interrupted");
  }
  if (summary.images === 0) {
    throw new SegkitError(`no image could be segmented (${skipped.length} skipped)`, {
      file: input,
      hint: "give an image file or a directory of JPEG/PNG/WebP/TIFF/GIF images",
    });
  }
  io.out(
    `segmented ${images} (${summary.masks} mask${summary.masks === 1 ? "" : "s"})` +
      `${skipped.length ? `, skipped ${skipped.length}` : ""} in ${summary.seconds.toFixed(1)} s; ` +
      `wrote ${summary.written.length} files to ${out}`,
  );
}

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
 * `segkit sam ...`: Segment Anything. `sam --model DIR --image IMG --point X,Y[,L] --box X1,Y1,X2,Y2 --out DIR`
 * (the group's own action) prompts a model with points and boxes in original-image pixels and writes the files of
 * `writeSamOutputs` plus `result.json` (masks with scores in decoder order, stability scores, timings). `sam pull REPO` downloads a model repository's SAM files (`*.onnx`,
 * `*.onnx_data`, `*.json` unless `--include` / `--all` say otherwise) into the cache (`pullModel`), with a progress
 * bar per file, and prints one summary line naming the snapshot directory, which is the model directory later
 * `sam` commands take. `sam auto` ("segment everything", `generateMaskFiles`) takes the group's `--model`, `--image`
 * (a file or a directory), `--out`, `--threads`, `--cache-dir`, `--variant` and `--provider` (Commander gives them to the group, whose options
 * are read with `optsWithGlobals`) plus the generator's options; Ctrl-C stops it at the next decoder call with the
 * finished images written. Returns the `sam` command so that further subcommands can join it.
 */
export function registerSam(program: Command, io: CliIo): Command {
  const sam = program
    .command("sam")
    .description("Segment Anything: masks from point and box prompts (sam --model ...); model downloads (sam pull)")
    .option("--model <dir>", "SAM model directory (split export or transformers.js layout)")
    .option("--image <file>", "the image to segment (sam auto: an image or a directory of images)")
    .option(
      "--point <x,y[,label]>",
      "a click in image pixels, label 1 foreground (default) or 0, repeatable",
      pointArg,
      [],
    )
    .option("--box <x1,y1,x2,y2>", "a box in image pixels; repeat for several (one decoder run each)", boxArg, [])
    .option("--multimask", "return the 3 candidate masks instead of the single best (1-mask models: their one)")
    .option("--mask-input <file>", "a previous low-res mask: low_res_logits.npy (with --mask-index) or a mask PNG")
    .option("--mask-index <k>", "the plane of a multi-plane --mask-input .npy", int("--mask-index", 0))
    .option(
      "--out <dir>",
      "output directory: mask-K.png, overlay.png, low_res_logits.npy, result.json (sam auto: see its help)",
    )
    .option("--cache-dir <dir>", "keep image embeddings on disk here (reused for the same image and model)")
    .option("--threads <n>", "onnxruntime threads", int("--threads", 1))
    .option("--variant <name>", "which export of the graphs to load when several exist, e.g. quantized or fp16")
    .option(
      "--provider <name>",
      "onnxruntime execution provider, repeatable in order of preference (default cpu; cuda, dml... when installed)",
      (v: string, prev: string[]) => [...prev, v],
      [],
    )
    .exitOverride()
    .action((flags: SamFlags) => samPredict(flags, io));
  const d = DEFAULT_AMG_OPTIONS;
  sam
    .command("auto")
    .description(
      `segment everything: a grid of point prompts, filtered and de-duplicated (--model, --image, --out as for sam); ` +
        `an image gives NAME.json (amg.py's records, COCO RLE), a directory one COCO ${AMG_COCO_FILE}; ` +
        "NAME.overlay.png per image",
    )
    .option("--points-per-side <n>", "grid points per side of the image", int("--points-per-side", 1), d.pointsPerSide)
    .option("--points-per-batch <n>", "points per progress step", int("--points-per-batch", 1), d.pointsPerBatch)
    .option(
      "--pred-iou-thresh <x>",
      "keep masks with predicted IoU above this",
      positive("--pred-iou-thresh"),
      d.predIouThresh,
    )
    .option(
      "--stability-score-thresh <x>",
      "keep masks with a stability score at least this",
      positive("--stability-score-thresh"),
      d.stabilityScoreThresh,
    )
    .option(
      "--box-nms-thresh <x>",
      "box IoU above which the lower-scoring mask is dropped",
      positive("--box-nms-thresh"),
      d.boxNmsThresh,
    )
    .option(
      "--crop-n-layers <n>",
      "layers of overlapping crops besides the whole image",
      int("--crop-n-layers", 0),
      d.cropNLayers,
    )
    .option(
      "--min-mask-region-area <px>",
      "remove holes and islands smaller than this (0: off)",
      positive("--min-mask-region-area"),
      d.minMaskRegionArea,
    )
    .option("--masks-png", "also write NAME/mask-K.png, one 0/255 PNG per mask")
    .usage(
      "--model DIR --image FILE|DIR --out DIR [--threads N] [--cache-dir DIR] [--variant V] [--provider P] [options]",
    )
    .exitOverride()
    .action((_flags: AutoFlags, cmd: Command) => samAuto(cmd.optsWithGlobals<AutoFlags & SamFlags>(), io));
  sam
    .command("video")
    .description(
      "SAM 2: track objects through a clip (a directory of frames, or a video file through ffmpeg) from prompts on any frame; " +
        "writes OUT/<object>/<frame>.png, OUT/overlay/<frame>.png, OUT/result.json",
    )
    .option("--frames <path>", "a directory of JPEG/PNG frames (name order), or a video file when ffmpeg is on PATH")
    .option("--frame <n>", "the frame --point / --box are on", int("--frame", 0), 0)
    .option("--object <id>", "the object --point / --box prompt", int("--object", 0), 1)
    .option(
      "--prompts <steps.json>",
      'the general case: prompt steps and {"propagate": "forward"|"backward"} steps, in order',
    )
    .usage(
      "--model DIR --frames DIR --out DIR (--point x,y[,label] | --box x1,y1,x2,y2 [--frame N] [--object ID] | --prompts FILE)",
    )
    .exitOverride()
    .action((_flags: unknown, cmd: Command) => samVideo(cmd.optsWithGlobals<SamVideoFlags>(), io));
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
