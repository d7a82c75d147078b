import { basename, join, relative } from "node:path";
import { type Command, CommanderError, InvalidArgumentError } from "commander";
import {
  type CocoInstances,
  type InstanceModel,
  instancesOverlayPng,
  loadInstanceModel,
  runImageFiles,
  SegkitError,
  writeFileAtomic,
} from "../index.js";
import { type InstanceAnnotation, instancesToCoco } from "../instances/instances.js";
import { type CliIo, int } from "./options.js";
import { runBatch } from "./progress.js";

interface InstancesFlags {
  model: string;
  input: string;
  out: string;
  score?: number;
  overlay?: boolean;
  threads?: number;
}

/** The COCO file `segkit instances` writes into its output directory. */
export const INSTANCES_FILE = "annotations.json";

const score = (v: string) => {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError("--score must be a number from 0 to 1");
  return n;
};

/**
 * `segkit instances`: an instance model over an image or a directory of images, into `OUT/annotations.json` (COCO
 * instances with compressed-RLE masks and scores; `file_name`s relative to the input directory, so the file is a
 * `coco` dataset with `--images INPUT`) and, with `--overlay`, `OUT/NAME.overlay.png`.
 */
export function registerInstances(program: Command, io: CliIo): void {
  program
    .command("instances")
    .description(
      "detect and segment object instances in an image or a directory of images (YOLO-seg or Mask R-CNN ONNX, or a segkit --task instance run)",
    )
    .requiredOption(
      "-m, --model <dir>",
      "a directory holding one .onnx (YOLO-seg or torchvision Mask R-CNN export), or a segkit --task instance run",
    )
    .requiredOption("-i, --input <path>", "an image file or a directory of images")
    .requiredOption("-o, --out <dir>", "output directory: annotations.json (COCO instances with scores)")
    .option(
      "--score <s>",
      "keep instances scoring above this (default: the model's, 0.25 for YOLO as Ultralytics)",
      score,
    )
    .option("--overlay", "also write NAME.overlay.png: masks tinted, boxes, class names and scores drawn")
    .option("--threads <n>", "onnxruntime threads", int("--threads", 1))
    .exitOverride()
    .action(async (flags: InstancesFlags) => {
      const model = await loadInstanceModel(flags.model, flags.threads === undefined ? {} : { threads: flags.threads });
      try {
        await runInstances(model, flags, io);
      } finally {
        await model.dispose();
      }
    });
}

async function runInstances(model: InstanceModel, flags: InstancesFlags, io: CliIo): Promise<void> {
  const coco: {
    images: CocoInstances["images"];
    categories: CocoInstances["categories"];
    annotations: (InstanceAnnotation & { id: number; image_id: number })[];
  } = {
    images: [],
    categories: model.categories.map((c) => ({ id: c.id, name: c.name })),
    annotations: [],
  };
  const { result: summary, skipped } = await runBatch(io, "instances", "image", (hooks) =>
    runImageFiles(
      flags.input,
      flags.out,
      "give another --out: overlays would be written among the images",
      async (jobs, { isDir }) => {
        for (const job of jobs) {
          const inst = await model.predict(job.image, flags.score === undefined ? {} : { scoreThreshold: flags.score });
          const imageId = coco.images.length + 1;
          const fileName = isDir ? relative(flags.input, job.path).split("\\").join("/") : basename(job.path);
          coco.images.push({ id: imageId, file_name: fileName, width: job.image.width, height: job.image.height });
          for (const a of instancesToCoco(inst)) {
            coco.annotations.push({ id: coco.annotations.length + 1, image_id: imageId, ...a });
          }
          if (flags.overlay) {
            const png = await instancesOverlayPng(job.image, inst, model.categories);
            await writeFileAtomic(join(flags.out, `${job.name}.overlay.png`), png);
          }
        }
      },
      { throwOnSingleFile: true, ...hooks },
    ),
  );
  const file = join(flags.out, INSTANCES_FILE);
  if (coco.images.length > 0) await writeFileAtomic(file, `${JSON.stringify(coco)}\n`);
  if (summary.stopped) {
    io.err(`interrupted with ${coco.images.length} images done: ${coco.images.length ? file : "nothing"} written`);
    throw new CommanderError(130, "segkit.interrupted", "interrupted");
  }
  if (coco.images.length === 0) {
    throw new SegkitError(`no image could be read (${skipped.length} skipped)`, {
      file: flags.input,
      hint: "give an image file or a directory of JPEG/PNG/WebP/TIFF/GIF images",
    });
  }
  const images = `${coco.images.length} image${coco.images.length === 1 ? "" : "s"}`;
  io.out(
    `${coco.annotations.length} instances in ${images}${skipped.length ? `, skipped ${skipped.length}` : ""} ` +
      `in ${summary.seconds.toFixed(1)} s (${model.kind}); wrote ${file}` +
      `${flags.overlay ? ` and ${coco.images.length} overlays` : ""}`,
  );
}
