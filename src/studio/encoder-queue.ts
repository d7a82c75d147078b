/**
 * The studio's image encoder: runs SAM's encoder in the background over the project's images in list order, one at a
 * time, an image asked for (`embedding`) moved to the front. Embeddings go to the predictor's disk cache
 * (`embedding-cache.ts`) in `cacheDir`, so a restart reads them back instead of encoding again (it still decodes
 * each image once to find its cache entry). The predictor is used by one caller at a time: a server-side `decode`
 * waits for the image being encoded, then runs before the next one.
 */
import type { SegkitError } from "../core/errors.js";
import { type AmgOptions, type AmgRecord, generateMasks } from "../sam/amg/generator.js";
import { createEmbeddingCache } from "../sam/embedding-cache.js";
import { type LoadSamModelOptions, loadSamModel, type SamLayout, type SamModel } from "../sam/model.js";
import {
  createSamPredictor,
  type SamLowResPrediction,
  type SamPrediction,
  type SamPredictRequest,
} from "../sam/predictor.js";
import type { SamSize } from "../sam/transforms.js";
import { encodeEmbeddingWire } from "../sam/wire.js";
import type { StudioImage } from "./store.js";

export type EmbeddingStatus = "none" | "queued" | "running" | "ready" | "failed";

export interface EncoderQueueOptions extends Pick<LoadSamModelOptions, "threads" | "variant"> {
  /** The SAM model directory (`loadSamModel`, owned by the queue) or an open model (left open by `close`). */
  model: string | SamModel;
  /** The on-disk embeddings cache. */
  cacheDir: string;
  /** The images, in the order they are encoded. */
  images: readonly StudioImage[];
  /** Called when an image's status changes (e.g. to push progress). */
  onChange?: (id: string, status: EmbeddingStatus) => void;
}

export interface EncoderProgress {
  done: number;
  total: number;
  current: string | null;
  failed: number;
}

export interface EncoderQueue {
  readonly model: {
    layout: SamLayout;
    acceptsBox: boolean;
    acceptsMaskInput: boolean;
    decoderFile: string;
    /** What a page's decoder must compute (`SamModel.lowResOutputs`). */
    lowResOutputs: readonly string[];
  };
  status(id: string): EmbeddingStatus;
  /**
   * The image's embedding in the wire format when it is ready; otherwise the image moves to the front of the queue
   * and its status and position (0 = being encoded, 1 = next, ...) come back. Throws for an image that failed.
   */
  embedding(id: string): Promise<{ wire: Uint8Array } | { status: "queued" | "running"; position: number }>;
  /** Runs a prompt on the image with the Node predictor (encoding it first when needed). */
  decode(id: string, request: SamPredictRequest): Promise<SamPrediction>;
  /** The same, the decoder's low-res answer only (`SamPredictor.decode`: no upscaling). */
  decodeLowRes(id: string, request: SamPredictRequest): Promise<SamLowResPrediction>;
  /** Segment-everything (`generateMasks`) on the image, masks as COCO compressed RLE. */
  amg(id: string, options: Omit<AmgOptions, "outputMode">): Promise<AmgRecord[]>;
  progress(): EncoderProgress;
  /** Resolves when no image is queued or being encoded. */
  idle(): Promise<void>;
  /** Stops after the image being encoded and frees the model. */
  close(): Promise<void>;
}

interface Encoded {
  hash: string;
  originalSize: SamSize;
  inputSize: SamSize;
}

export async function createEncoderQueue(options: EncoderQueueOptions): Promise<EncoderQueue> {
  const { cacheDir, images, onChange } = options;
  const owned = typeof options.model === "string";
  const model =
    typeof options.model === "string"
      ? await loadSamModel(options.model, {
          ...(options.threads ? { threads: options.threads } : {}),
          ...(options.variant ? { variant: options.variant } : {}),
        })
      : options.model;
  const predictor = await createSamPredictor(model, { cacheDir, memoryCache: 2 });
  const cache = createEmbeddingCache(model, { memoryCache: 2, cacheDir });
  const byId = new Map(images.map((i) => [i.id, i]));
  const pending = images.map((i) => i.id);
  const encoded = new Map<string, Encoded>();
  const failed = new Map<string, SegkitError | Error>();
  let running: string | null = null;
  let closed = false;
  let lock: Promise<unknown> = Promise.resolve();
  let idleWaiters: (() => void)[] = [];

  /** Runs `fn` when the predictor is free. */
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const result = lock.then(fn);
    lock = result.catch(() => undefined);
    return result;
  };
  /** The image the predictor holds: a decode on it skips `setImage` (reading and hashing the file again). */
  let held: string | null = null;
  const setImage = async (id: string) => {
    const img = byId.get(id);
    if (!img) throw new Error(`no image ${id}`);
    held = null;
    const info = await predictor.setImage(img.path);
    held = id;
    encoded.set(id, { hash: info.hash, originalSize: info.originalSize, inputSize: info.inputSize });
  };
  /** Runs `fn` on the predictor holding image `id`. */
  const onImage = <T>(id: string, fn: () => Promise<T>) =>
    exclusive(async () => {
      if (closed) throw new Error("the encoder queue is closed");
      if (held !== id || !encoded.has(id)) await setImage(id);
      return fn();
    });
  const pump = async (): Promise<void> => {
    while (!closed && running === null) {
      const id = pending.shift();
      if (id === undefined) {
        for (const w of idleWaiters) w();
        idleWaiters = [];
        return;
      }
      if (encoded.has(id) || failed.has(id)) continue;
      running = id;
      onChange?.(id, "running");
      try {
        await exclusive(() => setImage(id));
        onChange?.(id, "ready");
      } catch (err) {
        failed.set(id, err as Error);
        onChange?.(id, "failed");
      } finally {
        running = null;
      }
    }
  };
  const status = (id: string): EmbeddingStatus =>
    encoded.has(id)
      ? "ready"
      : failed.has(id)
        ? "failed"
        : running === id
          ? "running"
          : pending.includes(id)
            ? "queued"
            : "none";
  void pump();

  return {
    model: {
      layout: model.layout,
      acceptsBox: model.layout !== "transformers" || model.acceptsBox, // split and SAM 2: a box as two points
      acceptsMaskInput: model.acceptsMaskInput,
      decoderFile: model.files.decoder,
      lowResOutputs: model.lowResOutputs,
    },
    status,
    async embedding(id) {
      const e = encoded.get(id);
      const hit = e ? await cache.get(e.hash) : undefined;
      if (e && hit) {
        const { originalSize, inputSize } = e;
        return {
          wire: encodeEmbeddingWire({ layout: model.layout, originalSize, inputSize, embeddings: hit.embeddings }),
        };
      }
      const why = failed.get(id);
      if (why) throw why;
      if (e) encoded.delete(id); // the cache file went away: encode again
      if (running === id) return { status: "running", position: 0 };
      const at = pending.indexOf(id);
      if (at >= 0) pending.splice(at, 1);
      pending.unshift(id);
      onChange?.(id, "queued");
      void pump();
      return running === id ? { status: "running", position: 0 } : { status: "queued", position: 1 };
    },
    decode: (id, request) => onImage(id, () => predictor.predict(request)),
    decodeLowRes: (id, request) => onImage(id, () => predictor.decode(request)),
    amg: (id, amgOptions) =>
      exclusive(async () => {
        if (closed) throw new Error("the encoder queue is closed");
        const img = byId.get(id);
        if (!img) throw new Error(`no image ${id}`);
        held = null; // generateMasks sets the image itself
        return generateMasks(predictor, img.path, { ...amgOptions, outputMode: "coco_rle" });
      }),
    progress: () => ({ done: encoded.size, total: images.length, current: running, failed: failed.size }),
    idle: () =>
      running === null && pending.every((id) => encoded.has(id) || failed.has(id))
        ? Promise.resolve()
        : new Promise((r) => idleWaiters.push(r)),
    async close() {
      if (closed) return;
      closed = true;
      await exclusive(async () => {
        await predictor.dispose();
        if (owned) await model.dispose();
      });
      for (const w of idleWaiters) w();
    },
  };
}
