import { join } from "node:path";
import type { Command } from "commander";
import {
  createEncoderQueue,
  type EncoderQueue,
  loadPredictor,
  openProjectStore,
  readClassesFile,
  SegkitError,
  startStudioServer,
} from "../index.js";
import { type CliIo, int, positive } from "./options.js";

/**
 * `segkit studio <images dir>`: serves the labelling app and its API for the images in a directory (project files in
 * `--out`, see src/studio/store.ts), encodes the images with `--model` in the background, prints the URL and runs
 * until SIGINT / SIGTERM, then finishes the change being written and exits. It opens no browser.
 */

interface StudioFlags {
  model?: string;
  classes?: string;
  classesFile?: string;
  out?: string;
  port: number;
  host: string;
  threads?: number;
  prelabelModel?: string;
  prelabelPoints: number;
}

/** Grid points per side of the studio's segment-everything pre-labels: a quarter of `segkit sam auto`'s 32 x 32. */
export const STUDIO_PRELABEL_POINTS = 16;

/** The default port of `segkit studio`. */
export const STUDIO_DEFAULT_PORT = 8700;

/** Resolves on the first SIGINT or SIGTERM. */
function untilStopped(): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve(signal);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

export function registerStudio(program: Command, io: CliIo): void {
  program
    .command("studio <images>")
    .description(
      "label a directory of images in the browser, with Segment Anything clicks (--model); saves every change",
    )
    .option("--model <dir>", "SAM model directory (without: manual tools only)")
    .option("--classes <a,b,c>", "class names, comma-separated (default: the project's, else one class 'object')")
    .option("--classes-file <file>", "class names, one a line")
    .option("--out <dir>", "project directory (default: <images>/../<name>-labels)")
    .option("--port <n>", "port (0: any free one)", int("--port", 0), STUDIO_DEFAULT_PORT)
    .option("--host <host>", "address to bind; other than loopback requires the printed token", "127.0.0.1")
    .option("--threads <n>", "onnxruntime threads of the encoder", positive("--threads"))
    .option(
      "--prelabel-model <dir>",
      "a trained segkit model (run or checkpoint) whose predictions the app can offer as pre-labels",
    )
    .option(
      "--prelabel-points <n>",
      "grid points per side of SAM (segment-everything) pre-labels",
      int("--prelabel-points", 1),
      STUDIO_PRELABEL_POINTS,
    )
    .exitOverride()
    .action(async (images: string, flags: StudioFlags) => {
      if (flags.classes !== undefined && flags.classesFile !== undefined) {
        throw new SegkitError("give --classes or --classes-file, not both");
      }
      const classes =
        flags.classes !== undefined
          ? flags.classes.split(",").map((c) => c.trim())
          : flags.classesFile !== undefined
            ? await readClassesFile(flags.classesFile)
            : undefined;
      const store = await openProjectStore({
        imagesDir: images,
        ...(flags.out !== undefined ? { outDir: flags.out } : {}),
        ...(classes ? { classes } : {}),
        onSkip: (path, why) => io.err(`skipped ${path}: ${why}`),
      });
      let encoder: EncoderQueue | undefined;
      if (flags.model !== undefined) {
        encoder = await createEncoderQueue({
          model: flags.model,
          cacheDir: join(store.outDir, "embeddings"),
          images: store.images,
          ...(flags.threads ? { threads: flags.threads } : {}),
        });
      }
      const prelabelModel = flags.prelabelModel !== undefined ? await loadPredictor(flags.prelabelModel) : undefined;
      const server = await startStudioServer({
        store,
        host: flags.host,
        port: flags.port,
        ...(encoder ? { encoder } : {}),
        ...(prelabelModel ? { prelabelModel } : {}),
        prelabelAmg: { pointsPerSide: flags.prelabelPoints },
      }).catch(async (err: NodeJS.ErrnoException) => {
        await encoder?.close();
        await prelabelModel?.dispose();
        if (err.code === "EADDRINUSE") {
          throw new SegkitError(`port ${flags.port} is in use`, {
            hint: "choose another with --port (0: any free one)",
          });
        }
        throw err;
      });
      const model = encoder ? `SAM ${encoder.model.layout} model` : "no model (manual tools only)";
      io.out(`segkit studio: ${store.images.length} images in ${store.imagesDir}, ${model}`);
      io.out(`project: ${store.file}`);
      io.out(`open ${server.url}`);
      const signal = await untilStopped();
      io.err(encoder ? "stopping (after the image being encoded; again to quit at once)" : "stopping");
      await server.close();
      await encoder?.close();
      await prelabelModel?.dispose();
      io.out(`stopped (${signal}); ${store.revision} changes saved in ${store.file}`);
    });
}
