import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { z } from "zod";
import { type BackendChoice, initBackend } from "../backend/init.js";
import { withWasmMemoryGuard } from "../backend/memory.js";
import { errorMessage, SegkitError } from "../core/errors.js";
import { DEFAULT_IGNORE_INDEX, type Mask, type RgbImage } from "../core/image.js";
import { type Palette, VOC_PALETTE } from "../core/palette.js";
import { pathExists, readJson } from "../io/fs.js";
import { type ImageSource, readImage } from "../io/image.js";
import { resizeImage } from "../io/resize.js";
import { resizeBilinear } from "../masks/resize.js";
import { checkpointDir } from "../models/checkpoint.js";
import { loadModel } from "../models/io.js";
import { exportOnnx } from "../models/onnx.js";
import {
  DEFAULT_ONNX_PREDICTOR_OPTIONS,
  type OnnxPredictor,
  type OnnxPredictorOptions,
  openOnnxPredictor,
} from "../onnx/predictor.js";
import { logitsToMask, logitsToProbabilities, resizeLogitsToMask } from "./logits.js";

import { blendWeights, type TileBlend, type TileOptions, validateTileOptions, windowGrid } from "./tiling.js";

/**
 * Prediction with a trained checkpoint (`model.json` + `model.weights.bin` + `card.json`, as `fit` writes them):
 *
 *   const p = await loadPredictor("runs/pets/best");
 *   const { mask } = await p.predict("cat.jpg");   // Mask: class indices, the image's own width x height
 *   await p.dispose();
 *
 * Two ways over an image, both ending at the image's original size:
 * - default: the image is resized to the model input with the resize training uses (`resizeImage` bilinear, as
 *   `batches` / `transformSample` do), the model's logits are resized back bilinearly (half-pixel centres) and
 *   then turned into classes (argmax; a one-channel sigmoid head: logit >= 0, i.e. probability >= 0.5). Resizing
 *   logits rather than a label map keeps boundaries smooth instead of blocky.
 * - `tile`: the image is not rescaled; windows of the model's input size slide over it with overlap and their
 *   logits are blended (see `tiling.ts`). For images much larger than the model input, where downscaling would
 *   lose detail; the model then sees objects at the image's own scale, so this suits models trained on crops.
 * Engines: `onnx` (the model exported with `exportOnnx`, run on onnxruntime, several times faster) or `tfjs`
 * (the model as loaded, on segkit's tfjs backend); `auto` takes onnx and falls back to tfjs when the model does
 * not export or the session does not start (`fallbackReason` says why).
 */

export const PREDICT_ENGINES = ["auto", "tfjs", "onnx"] as const;
export type PredictEngine = (typeof PREDICT_ENGINES)[number];

export interface PredictorOptions {
  engine?: PredictEngine;
  /** Model inputs per call: images (default mode) or windows (tiled). */
  batchSize?: number;
  /**
   * Sliding-window prediction at the image's own scale (true: the card's overlap and blend, else
   * `DEFAULT_TILE_OPTIONS`; options given override them), or false: resize. Default: as the model card's `predict`
   * says (tiles for a model trained on patches), resize for a card without it.
   */
  tile?: boolean | TileOptions;
  /** onnxruntime intra-op threads. */
  threads?: number;
  /** The tfjs backend the model is loaded on (and the tfjs engine runs on); see `initBackend`. */
  backend?: BackendChoice;
}

export const DEFAULT_PREDICTOR_OPTIONS = {
  engine: "auto",
  batchSize: 4,
  threads: DEFAULT_ONNX_PREDICTOR_OPTIONS.threads,
  backend: "auto",
} as const satisfies PredictorOptions;

export interface PredictOptions {
  /** Also return the class probabilities (default false). */
  probs?: boolean;
}

export interface Prediction {
  /** Class indices, uint8, the input image's width x height. */
  mask: Mask;
  /**
   * With `probs`: one float32 plane per class, CHW (`probs[(k * height + y) * width + x]`, k = class index, as
   * `classes`); softmax over the classes, or for a sigmoid head the planes 1 - p and p.
   */
  probs?: Float32Array;
}

export interface Predictor {
  /** The engine in use. */
  readonly engine: "tfjs" | "onnx";
  /** Why `auto` runs on tfjs rather than onnx; undefined otherwise. */
  readonly fallbackReason: string | undefined;
  /** The checkpoint directory (a run directory resolves to its `best/`). */
  readonly dir: string;
  /** From the model card: class names (index = class), their colours, the ignore index, the background class. */
  readonly classes: readonly string[];
  readonly palette: Palette;
  readonly ignoreIndex: number;
  readonly backgroundClass: number | null;
  /** [height, width] of the model input. */
  readonly inputSize: readonly [number, number];
  /** The COCO category behind each class (the card's `classCategories`: a model trained on COCO files), else null. */
  readonly classCategories: readonly ({ readonly id: number; readonly isthing?: boolean } | null)[] | null;
  /** An instance model's categories (its card's `instances`: `segkit train --task instance`), else null. */
  readonly instances: {
    readonly categories: readonly { id: number; name: string }[];
    readonly boundary: number;
  } | null;
  readonly batchSize: number;
  /** The tiling in use, or null for the default (resize) mode. */
  readonly tile: Required<TileOptions> | null;
  /** An image, or an image file / encoded bytes (read with `readImage`). */
  predict(input: RgbImage | ImageSource, options?: PredictOptions): Promise<Prediction>;
  /** Several images, batched through the model; the result at index i is for input i. */
  predictBatch(inputs: readonly (RgbImage | ImageSource)[], options?: PredictOptions): Promise<Prediction[]>;
  /** Frees the model (tfjs tensors or the onnxruntime session). */
  dispose(): Promise<void>;
}

const byte = z.number().int().min(0).max(255);
/** The fields of `card.json` (`ModelCard`) prediction needs. */
const cardSchema = z
  .object({
    format: z.literal("segkit-model-card"),
    classes: z.array(z.string()).min(1).max(256),
    palette: z.array(z.tuple([byte, byte, byte])).optional(),
    inputSize: z.tuple([z.number().int().min(1), z.number().int().min(1)]),
    ignoreIndex: byte.optional(),
    backgroundClass: byte.nullable().optional(),
    classCategories: z.array(z.object({ id: z.number().int(), isthing: z.boolean().optional() }).nullable()).optional(),
    instances: z
      .object({
        categories: z.array(z.object({ id: z.number().int(), name: z.string() })).min(1),
        boundary: z.number().int().min(0),
      })
      .optional(),
    predict: z
      .discriminatedUnion("mode", [
        z.object({ mode: z.literal("resize") }),
        z.object({ mode: z.literal("tile"), overlap: z.number().optional(), blend: z.string().optional() }),
      ])
      .optional(),
  })
  .refine((c) => !c.classCategories || c.classCategories.length === c.classes.length, {
    message: "classCategories must have one entry per class",
  });
type Card = z.infer<typeof cardSchema>;

/**
 * The tiling a predictor uses: `tile` as given (true or options: tiles, the card's settings filling what is not
 * given), or when undefined the card's `predict`; null: resize.
 */
export function resolveTiling(
  tile: boolean | TileOptions | undefined,
  card: { predict?: { mode: "resize" } | { mode: "tile"; overlap?: number; blend?: string } | undefined },
): Required<TileOptions> | null {
  const fromCard = card.predict?.mode === "tile" ? card.predict : undefined;
  if (tile === false || (tile === undefined && !fromCard)) return null;
  const given = typeof tile === "object" ? tile : {};
  const overlap = given.overlap ?? fromCard?.overlap;
  const blend = given.blend ?? (fromCard?.blend as TileBlend | undefined);
  return validateTileOptions({ ...(overlap !== undefined ? { overlap } : {}), ...(blend ? { blend } : {}) });
}

function validatePredictorOptions(options: PredictorOptions) {
  const o = {
    engine: options.engine ?? DEFAULT_PREDICTOR_OPTIONS.engine,
    batchSize: options.batchSize ?? DEFAULT_PREDICTOR_OPTIONS.batchSize,
    threads: options.threads ?? DEFAULT_PREDICTOR_OPTIONS.threads,
    backend: options.backend ?? DEFAULT_PREDICTOR_OPTIONS.backend,
    // checked here, before the model is read; resolved against the card in loadPredictor
    tile: typeof options.tile === "object" ? resolveTiling(options.tile, {}) : null,
  };
  if (!PREDICT_ENGINES.includes(o.engine)) {
    throw new SegkitError(`unknown engine "${o.engine}"`, { hint: `use one of: ${PREDICT_ENGINES.join(", ")}` });
  }
  for (const key of ["batchSize", "threads"] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 1)
      throw new SegkitError(`${key} must be a positive integer, got ${o[key]}`);
  }
  return o;
}

/**
 * The checkpoint directory `dir` names: itself when it holds model.json, else its run's `best/` (`checkpointDir`:
 * also the `.best.old` a run killed while replacing `best/` leaves).
 */
async function checkpointOf(dir: string): Promise<string> {
  if (await pathExists(join(dir, "model.json"))) return dir;
  const best = await checkpointDir(dir, "best", "model.json");
  if (best) return best;
  throw new SegkitError((await pathExists(dir)) ? "no model.json in this directory" : "not found", {
    file: dir,
    hint: "give a checkpoint directory written by segkit train (e.g. runs/NAME/best) or its run directory",
  });
}

async function readCard(dir: string): Promise<Card> {
  const file = join(dir, "card.json");
  const parsed = cardSchema.safeParse(await readJson(file));
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message));
  throw new SegkitError(`not a segkit model card (${problems.join("; ")})`, { file });
}

/** The card's input size and classes must be the model's. Returns the model's output channels. */
function checkModel(model: tf.LayersModel, card: Card, dir: string): number {
  const [, h, w, ch] = model.inputs[0]?.shape ?? [];
  const [H, W] = card.inputSize;
  if ((h != null && h !== H) || (w != null && w !== W) || ch !== 3) {
    throw new SegkitError(`the card says input ${H}x${W}x3 but the model takes ${h}x${w}x${ch}`, {
      file: join(dir, "card.json"),
    });
  }
  const channels = model.outputs[0]?.shape.at(-1) ?? 0;
  const k = card.classes.length;
  if (!(channels === k || (channels === 1 && k === 2))) {
    throw new SegkitError(`the card lists ${k} classes but the model has ${channels} output channels`, {
      file: join(dir, "card.json"),
    });
  }
  return channels;
}

/** Runs `[n, H, W, 3]` float32 0..255 NHWC through the model; returns logits `[n, H, W, C]`. */
interface Engine {
  name: "tfjs" | "onnx";
  run(images: Float32Array, n: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

function tfjsEngine(model: tf.LayersModel, inputSize: readonly [number, number]): Engine {
  const [h, w] = inputSize;
  return {
    name: "tfjs",
    run: (images, n) =>
      withWasmMemoryGuard({ what: "prediction step", batchSize: n, inputSize }, async () => {
        const y = tf.tidy(() => model.predict(tf.tensor4d(images, [n, h, w, 3])) as tf.Tensor);
        try {
          return (await y.data()) as Float32Array;
        } finally {
          y.dispose();
        }
      }),
    dispose: async () => {
      model.dispose();
    },
  };
}

async function onnxEngine(model: tf.LayersModel, inputSize: readonly [number, number], threads: number) {
  const [h, w] = inputSize;
  const session = await createOnnxPredictor(model, { threads });
  const engine: Engine = {
    name: "onnx",
    run: (images, n) => session.predict(images, n, h, w),
    dispose: () => session.dispose(),
  };
  return engine;
}

/**
 * One image's way through the model: `count` model inputs, each filled into a batch by `fill` (`[H, W, 3]`
 * float32 at `offset`) and its logits (`[H, W, C]`) handed back to `accept`; `finish` makes the prediction.
 */
interface Job {
  count: number;
  fill(i: number, into: Float32Array, offset: number): void;
  accept(i: number, logits: Float32Array): void;
  finish(probs: boolean): Prediction;
}

function prediction(logits: Float32Array, width: number, height: number, channels: number, probs: boolean) {
  const mask = logitsToMask(logits, width, height, channels);
  return probs ? { mask, probs: logitsToProbabilities(logits, width, height, channels) } : { mask };
}

/** Default mode: resize to the input size, predict, resize the logits back. */
async function resizeJob(img: RgbImage, [h, w]: readonly [number, number], channels: number): Promise<Job> {
  const small = await resizeImage(img, w, h, "bilinear");
  let logits = new Float32Array(0);
  return {
    count: 1,
    fill: (_i, into, offset) => into.set(small.data, offset),
    accept: (_i, out) => {
      logits = out.slice();
    },
    finish: (probs) =>
      probs
        ? prediction(
            resizeBilinear(logits, w, h, channels, img.width, img.height),
            img.width,
            img.height,
            channels,
            true,
          )
        : { mask: resizeLogitsToMask(logits, w, h, channels, img.width, img.height) },
  };
}

/** Tiled mode: windows of the input size (edge pixels repeated outside the image), logits blended by `weights`. */
function tileJob(
  img: RgbImage,
  [th, tw]: readonly [number, number],
  channels: number,
  overlap: number,
  weights: Float32Array,
): Job {
  const { width: W, height: H, data } = img;
  const windows = windowGrid(W, H, tw, th, overlap);
  const sum = new Float32Array(W * H * channels);
  const total = new Float32Array(W * H);
  const clamp = (v: number, n: number) => Math.min(n - 1, Math.max(0, v));
  return {
    count: windows.length,
    fill(i, into, offset) {
      const win = windows[i] as (typeof windows)[number];
      for (let y = 0; y < th; y++) {
        const row = clamp(win.y + y, H) * W;
        for (let x = 0; x < tw; x++) {
          const s = (row + clamp(win.x + x, W)) * 3;
          const d = offset + (y * tw + x) * 3;
          into[d] = data[s] as number;
          into[d + 1] = data[s + 1] as number;
          into[d + 2] = data[s + 2] as number;
        }
      }
    },
    accept(i, logits) {
      const win = windows[i] as (typeof windows)[number];
      for (let y = Math.max(0, -win.y); y < Math.min(th, H - win.y); y++) {
        for (let x = Math.max(0, -win.x); x < Math.min(tw, W - win.x); x++) {
          const p = (win.y + y) * W + win.x + x;
          const wt = weights[y * tw + x] as number;
          total[p] = (total[p] as number) + wt;
          for (let c = 0; c < channels; c++) {
            const k = p * channels + c;
            sum[k] = (sum[k] as number) + wt * (logits[(y * tw + x) * channels + c] as number);
          }
        }
      }
    },
    finish(probs) {
      for (let p = 0; p < total.length; p++) {
        for (let c = 0; c < channels; c++)
          sum[p * channels + c] = (sum[p * channels + c] as number) / (total[p] as number);
      }
      return prediction(sum, W, H, channels, probs);
    },
  };
}

const isImage = (x: RgbImage | ImageSource): x is RgbImage => typeof x !== "string" && !(x instanceof Uint8Array);

/**
 * An onnxruntime predictor for a tfjs model built by `createModel` (written with `exportOnnx`, batch dynamic) or for
 * ONNX bytes written by `exportOnnx` (input `image`, output `logits`); shapes in onnx/predictor.ts.
 */
export async function createOnnxPredictor(
  model: tf.LayersModel | Uint8Array,
  options: OnnxPredictorOptions = {},
): Promise<OnnxPredictor> {
  return openOnnxPredictor(model instanceof Uint8Array ? model : exportOnnx(model), options);
}

/**
 * A predictor for the checkpoint in `dir` (or a run directory: its `best/`). Reads `card.json` for the classes,
 * palette and input size and checks them against the model. Initialises the tfjs backend (`initBackend`).
 */
export async function loadPredictor(dir: string, options: PredictorOptions = {}): Promise<Predictor> {
  const o = validatePredictorOptions(options);
  const checkpoint = await checkpointOf(dir);
  const card = await readCard(checkpoint);
  o.tile = resolveTiling(options.tile, card);
  await initBackend({ backend: o.backend });
  let model: tf.LayersModel;
  try {
    model = await loadModel(checkpoint);
  } catch (err) {
    if (err instanceof SegkitError) throw err;
    throw new SegkitError(`cannot load the model: ${errorMessage(err)}`, { file: join(checkpoint, "model.json") });
  }
  const inputSize = card.inputSize;
  let channels: number;
  let engine: Engine | undefined;
  let fallbackReason: string | undefined;
  try {
    channels = checkModel(model, card, checkpoint);
    if (o.engine !== "tfjs") {
      try {
        engine = await onnxEngine(model, inputSize, o.threads);
        model.dispose();
      } catch (err) {
        if (o.engine === "onnx") throw err;
        fallbackReason = errorMessage(err);
      }
    }
  } catch (err) {
    model.dispose();
    throw err;
  }
  const active = engine ?? tfjsEngine(model, inputSize);
  const weights = o.tile ? blendWeights(inputSize[1], inputSize[0], o.tile.blend) : new Float32Array(0);
  const [h, w] = inputSize;
  let disposed = false;

  /** Every job's model inputs, `batchSize` at a time. */
  async function run(jobs: Job[]): Promise<void> {
    const items = jobs.flatMap((job) => Array.from({ length: job.count }, (_, i) => ({ job, i })));
    const size = h * w;
    for (let start = 0; start < items.length; start += o.batchSize) {
      const chunk = items.slice(start, start + o.batchSize);
      const images = new Float32Array(chunk.length * size * 3);
      for (const [b, { job, i }] of chunk.entries()) job.fill(i, images, b * size * 3);
      const logits = await active.run(images, chunk.length);
      for (const [b, { job, i }] of chunk.entries()) {
        job.accept(i, logits.subarray(b * size * channels, (b + 1) * size * channels));
      }
    }
  }

  async function predictBatch(inputs: readonly (RgbImage | ImageSource)[], options: PredictOptions = {}) {
    if (disposed) throw new SegkitError("predict: this predictor has been disposed");
    const images = await Promise.all(inputs.map((x) => (isImage(x) ? x : readImage(x))));
    const jobs = await Promise.all(
      images.map((img) =>
        o.tile ? tileJob(img, inputSize, channels, o.tile.overlap, weights) : resizeJob(img, inputSize, channels),
      ),
    );
    await run(jobs);
    return jobs.map((job) => job.finish(Boolean(options.probs)));
  }

  return {
    engine: active.name,
    fallbackReason,
    dir: checkpoint,
    classes: [...card.classes],
    palette: card.classes.map((_, k) => card.palette?.[k] ?? VOC_PALETTE[k] ?? [0, 0, 0]),
    ignoreIndex: card.ignoreIndex ?? DEFAULT_IGNORE_INDEX,
    backgroundClass: card.backgroundClass ?? null,
    inputSize,
    instances: card.instances ?? null,
    classCategories: card.classCategories ?? null,
    batchSize: o.batchSize,
    tile: o.tile,
    predictBatch,
    predict: async (input, options) => (await predictBatch([input], options))[0] as Prediction,
    async dispose() {
      if (disposed) return;
      disposed = true;
      await active.dispose();
    },
  };
}
