import { type Command, CommanderError, InvalidArgumentError, Option } from "commander";
import {
  DEFAULT_PREDICTOR_OPTIONS,
  DEFAULT_TILE_OPTIONS,
  loadPredictor,
  PREDICT_ENGINES,
  type PredictEngine,
  predictFiles,
  SegkitError,
  type TileBlend,
} from "../index.js";
import { type CliIo, int } from "./options.js";
import { runBatch } from "./progress.js";

interface PredictFlags {
  model: string;
  input: string;
  out: string;
  overlay?: boolean;
  probs?: boolean;
  tile?: boolean;
  overlap?: number;
  blend?: TileBlend;
  engine: PredictEngine;
  batchSize: number;
}

const overlap = (v: string) => {
  const n = Number(v);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError("--overlap must be a number from 0 to below 1");
  return n;
};

/** `segkit predict`: masks (and overlays, probability maps) for an image or a directory of images. */
export function registerPredict(program: Command, io: CliIo): void {
  program
    .command("predict")
    .description("predict masks for an image or a directory of images with a trained model")
    .requiredOption("-m, --model <dir>", "checkpoint directory (runs/NAME/best), or a run directory (uses its best/)")
    .requiredOption("-i, --input <path>", "an image file or a directory of images")
    .requiredOption("-o, --out <dir>", "output directory: NAME.png class-index masks at each image's size")
    .option("--overlay", "also write NAME.overlay.png, the image with the mask blended in")
    .option("--probs", "also write NAME.prob.CLASS.png per class: the probability as 8-bit gray, 255 = 1.0")
    .option(
      "--tile",
      "slide windows of the model input size over the image instead of resizing it (default: as the model card says)",
    )
    .option("--no-tile", "resize the image to the model input even if the model card says tiles")
    .option(
      "--overlap <f>",
      `tiles: fraction of a window shared with its neighbour (default: the card's, else ${DEFAULT_TILE_OPTIONS.overlap})`,
      overlap,
    )
    .addOption(
      new Option(
        "--blend <mode>",
        `tiles: how overlapping windows are weighted (default: the card's, else ${DEFAULT_TILE_OPTIONS.blend})`,
      ).choices(["gaussian", "constant"]),
    )
    .addOption(
      new Option("--engine <name>", "onnx (onnxruntime), tfjs, or auto: onnx, else tfjs")
        .choices(PREDICT_ENGINES)
        .default(DEFAULT_PREDICTOR_OPTIONS.engine),
    )
    .option(
      "--batch-size <n>",
      "images (or windows with --tile) per model call",
      int("--batch-size", 1),
      DEFAULT_PREDICTOR_OPTIONS.batchSize,
    )
    .exitOverride()
    .action(async (flags: PredictFlags) => {
      const predictor = await loadPredictor(flags.model, {
        engine: flags.engine,
        batchSize: flags.batchSize,
        // undefined: as the model card says; --overlap / --blend override the card's tiling
        tile:
          flags.tile === false
            ? false
            : flags.tile || flags.overlap !== undefined || flags.blend !== undefined
              ? {
                  ...(flags.overlap !== undefined && { overlap: flags.overlap }),
                  ...(flags.blend && { blend: flags.blend }),
                }
              : undefined,
      });
      try {
        if (predictor.fallbackReason) io.err(`segkit: predicting on tfjs: no onnx (${predictor.fallbackReason})`);
        const { result: summary, skipped } = await runBatch(io, "predict", "batch", (hooks) =>
          predictFiles(predictor, flags.input, flags.out, {
            overlay: Boolean(flags.overlay),
            probs: Boolean(flags.probs),
            ...hooks,
          }),
        );
        if (summary.stopped) {
          const images = `${summary.predicted} image${summary.predicted === 1 ? "" : "s"}`;
          io.err(`interrupted with ${images} predicted: their files are in ${flags.out}`);
          throw new CommanderError(130, "segkit.interrupted", "interrupted");
        }
        if (summary.predicted === 0) {
          throw new SegkitError(`no image could be predicted (${skipped.length} skipped)`, {
            file: flags.input,
            hint: "give an image file or a directory of JPEG/PNG/WebP/TIFF/GIF images",
          });
        }
        const rate = summary.predicted / Math.max(summary.seconds, 1e-3);
        io.out(
          `predicted ${summary.predicted} image${summary.predicted === 1 ? "" : "s"}` +
            `${skipped.length ? `, skipped ${skipped.length}` : ""} in ${summary.seconds.toFixed(1)} s ` +
            `(${rate.toFixed(1)} images/s, ${predictor.engine}${predictor.tile ? ", tiled" : ""}); ` +
            `wrote ${summary.written.length} files to ${flags.out}`,
        );
      } finally {
        await predictor.dispose();
      }
    });
}
