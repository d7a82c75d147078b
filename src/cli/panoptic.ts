import { basename, join, relative } from "node:path";
import { type Command, CommanderError, InvalidArgumentError } from "commander";
import {
  encodeIdMap,
  fusePanoptic,
  type InstanceModel,
  loadInstanceModel,
  loadPredictor,
  type PanopticCategories,
  type PanopticSegmentInfo,
  type Predictor,
  panopticCategories,
  panopticOverlayPng,
  panopticSegmentsInfo,
  runImageFiles,
  SegkitError,
  segmentCategory,
  writeFileAtomic,
} from "../index.js";
import { type CliIo, int } from "./options.js";
import { runBatch } from "./progress.js";

interface PanopticFlags {
  instances: string;
  semantic: string;
  input: string;
  out: string;
  score: number;
  overlap: number;
  stuffArea: number;
  thingClasses?: string;
  overlay?: boolean;
  threads?: number;
}

/** The COCO panoptic file `segkit panoptic` writes into its output directory; its PNGs go to the folder `panoptic/`. */
export const PANOPTIC_FILE = "panoptic.json";
const PNG_DIR = "panoptic";

const fraction = (name: string) => (v: string) => {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError(`${name} must be a number from 0 to 1`);
  return n;
};

/** `a,b,3` -> ["a", "b", 3]: class names, or indices where an item is a whole number. */
const classList = (v: string) =>
  v
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));

/**
 * `segkit panoptic`: an instance model (things) and a segkit semantic model (stuff) over an image or a directory,
 * fused as Panoptic FPN does (`fusePanoptic`), into COCO panoptic format: `OUT/panoptic.json` and `OUT/panoptic/NAME.png`
 * (what `segkit eval --task panoptic --pred OUT/panoptic.json` reads), with `--overlay` `OUT/NAME.overlay.png`.
 */
export function registerPanoptic(program: Command, io: CliIo): void {
  program
    .command("panoptic")
    .summary("panoptic segmentation: an instance model's things and a segkit semantic model's stuff, as COCO panoptic")
    .description(
      "panoptic segmentation: an instance model's things and a segkit semantic model's stuff, fused as Panoptic FPN " +
        "does, written in COCO panoptic format. Categories: the instance model's (their ids, isthing 1), then the " +
        "semantic classes that are not thing classes (their names, ids after the largest thing id, isthing 0)",
    )
    .requiredOption(
      "--instances <dir>",
      "instance model: a directory with one YOLO-seg or Mask R-CNN .onnx, or a segkit --task instance run",
    )
    .requiredOption("--semantic <dir>", "semantic model: a segkit checkpoint (runs/NAME/best) or run directory")
    .requiredOption("-i, --input <path>", "an image file or a directory of images")
    .requiredOption(
      "-o, --out <dir>",
      "output directory: panoptic.json (COCO panoptic) and panoptic/NAME.png (id = R + 256 G + 256^2 B)",
    )
    .option("--score <s>", "instances scoring under this are left out", fraction("--score"), 0.5)
    .option(
      "--overlap <f>",
      "an instance whose pixels are taken by better ones beyond this fraction is left out",
      fraction("--overlap"),
      0.5,
    )
    .option("--stuff-area <px>", "stuff regions of fewer pixels are left out (void)", int("--stuff-area", 0), 4096)
    .option(
      "--thing-classes <list>",
      'semantic classes that are not stuff, names or indices, comma-separated ("" for none; default: class 0 and ' +
        "the classes named like an instance category)",
    )
    .option(
      "--overlay",
      "also write NAME.overlay.png: stuff tinted in its class colour, things as segkit instances draws them",
    )
    .option("--threads <n>", "onnxruntime threads", int("--threads", 1))
    .exitOverride()
    .action(async (flags: PanopticFlags) => {
      const threads = flags.threads === undefined ? {} : { threads: flags.threads };
      const model = await loadInstanceModel(flags.instances, threads);
      let predictor: Predictor | undefined;
      try {
        predictor = await loadPredictor(flags.semantic, threads);
        if (predictor.instances) {
          throw new SegkitError("an instance model (segkit train --task instance), not a semantic one", {
            file: predictor.dir,
            hint: "give it as --instances; --semantic takes a model trained for semantic segmentation",
          });
        }
        if (predictor.fallbackReason) io.err(`segkit: semantic model on tfjs: no onnx (${predictor.fallbackReason})`);
        const cats = panopticCategories(
          model.categories,
          predictor.classes,
          flags.thingClasses === undefined ? undefined : classList(flags.thingClasses),
          predictor.classCategories,
        );
        await runPanoptic(model, predictor, cats, flags, io);
      } finally {
        await predictor?.dispose();
        await model.dispose();
      }
    });
}

async function runPanoptic(
  model: InstanceModel,
  predictor: Predictor,
  cats: PanopticCategories,
  flags: PanopticFlags,
  io: CliIo,
): Promise<void> {
  const coco = {
    images: [] as { id: number; file_name: string; width: number; height: number }[],
    annotations: [] as { image_id: number; file_name: string; segments_info: PanopticSegmentInfo[] }[],
    categories: cats.categories,
  };
  const categoryOf = segmentCategory(cats.stuffIds);
  const fusion = {
    scoreThreshold: flags.score,
    overlapThreshold: flags.overlap,
    stuffAreaThreshold: flags.stuffArea,
    thingClasses: cats.thingClasses,
  };
  const thingIds = new Set(model.categories.map((c) => c.id));
  let things = 0;
  let stuff = 0;
  const { result: summary, skipped } = await runBatch(io, "panoptic", "batch", (hooks) =>
    runImageFiles(
      flags.input,
      flags.out,
      "give another --out: overlays would be written among the images",
      async (jobs, { isDir }) => {
        const semantic = await predictor.predictBatch(jobs.map((j) => j.image));
        for (const [i, job] of jobs.entries()) {
          const { image } = job;
          const inst = await model.predict(image, { scoreThreshold: flags.score });
          const fused = fusePanoptic(inst, (semantic[i] as (typeof semantic)[number]).mask, fusion);
          const png = `${job.name}.png`;
          await writeFileAtomic(join(flags.out, PNG_DIR, png), encodeIdMap({ ...image, ids: fused.ids }, "rgb"));
          const segments = panopticSegmentsInfo(fused, image.width, categoryOf);
          const imageId = coco.images.length + 1;
          const fileName = isDir ? relative(flags.input, job.path).split("\\").join("/") : basename(job.path);
          coco.images.push({ id: imageId, file_name: fileName, width: image.width, height: image.height });
          coco.annotations.push({ image_id: imageId, file_name: png, segments_info: segments });
          const thingCount = segments.filter((s) => thingIds.has(s.category_id)).length;
          things += thingCount;
          stuff += segments.length - thingCount;
          if (flags.overlay) {
            const overlay = await panopticOverlayPng(image, fused, {
              palette: predictor.palette,
              categories: model.categories,
            });
            await writeFileAtomic(join(flags.out, `${job.name}.overlay.png`), overlay);
          }
        }
      },
      { batchSize: predictor.batchSize, throwOnSingleFile: true, ...hooks },
    ),
  );
  const file = join(flags.out, PANOPTIC_FILE);
  const n = coco.images.length;
  if (n > 0) await writeFileAtomic(file, `${JSON.stringify(coco)}\n`);
  if (summary.stopped) {
    io.err(`interrupted with ${n} images done: ${n ? file : "nothing"} written`);
    throw new CommanderError(130, "segkit.interrupted", "interrupted");
  }
  if (n === 0) {
    throw new SegkitError(`no image could be read (${skipped.length} skipped)`, {
      file: flags.input,
      hint: "give an image file or a directory of JPEG/PNG/WebP/TIFF/GIF images",
    });
  }
  const plural = (k: number, what: string) => `${k} ${what}${k === 1 ? "" : "s"}`;
  io.out(
    `${plural(things + stuff, "segment")} (${things} things, ${stuff} stuff) in ${plural(n, "image")}` +
      `${skipped.length ? `, skipped ${skipped.length}` : ""} in ${summary.seconds.toFixed(1)} s ` +
      `(${model.kind} + ${predictor.engine}); wrote ${file}, ${plural(n, "PNG")} in ${join(flags.out, PNG_DIR)}` +
      `${flags.overlay ? ` and ${plural(n, "overlay")}` : ""}`,
  );
}
