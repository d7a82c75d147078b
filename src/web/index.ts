/**
 * `segkit/web`: Segment Anything's prompt decoder in the browser, on onnxruntime-web (wasm), with segkit's own prompt
 * packing, mask choice and upscaling (src/sam/decoder-feeds.ts, transforms.ts, postprocess.ts: the same code the
 * Node `SamPredictor` runs, so the same prompt on the same embeddings gives the same masks and scores).
 *
 * The image encoder does not run here: embeddings come from Node (`SamPredictor`, `segkit studio`), e.g. as
 * `application/x-segkit-embedding` bytes (`decodeEmbeddingWire`). The caller passes its onnxruntime-web module
 * (`import * as ort from "onnxruntime-web"`, resolved by a bundler or an import map): this module imports none, and
 * nothing from Node.
 */
import type * as Ort from "onnxruntime-web";
import { SegkitError } from "../core/errors.js";
import {
  chooseMaskChannels,
  decoderFeeds,
  decoderOutputs,
  describeDecoder,
  type GraphValueInfo,
  orderByScore,
  type SamDecoderGraph,
  type SamEmbeddings,
  type SamLayout,
  type SamTensor,
  samDecodePrompt,
} from "../sam/decoder-feeds.js";
import { upscaleMasks } from "../sam/postprocess.js";
import { SAM_IMAGE_SIZE, SAM_LOW_RES_SIZE, samInputShape, thresholdMasks } from "../sam/transforms.js";

export type { SamEmbeddings, SamLayout, SamTensor } from "../sam/decoder-feeds.js";
export type { SamSize } from "../sam/transforms.js";
export {
  decodeEmbeddingWire,
  decodeLowResWire,
  EMBEDDING_WIRE_TYPE,
  type EmbeddingWire,
  encodeEmbeddingWire,
  encodeLowResWire,
  LOW_RES_WIRE_TYPE,
  type LowResAnswer,
} from "../sam/wire.js";

export interface WebSamDecoderOptions {
  /** URL of the decoder .onnx (fetched), or its bytes. */
  decoder: string | ArrayBuffer | Uint8Array;
  /** The caller's onnxruntime-web module. */
  ort: typeof Ort;
  /**
   * `ort.env.wasm.numThreads`, set before the first session of the page (later changes are ignored by
   * onnxruntime-web). Default `navigator.hardwareConcurrency` when the page is cross-origin isolated (COOP/COEP
   * headers, needed for wasm threads), else 1.
   */
  threads?: number;
}

export interface WebSamRequest {
  /** Original-image pixel coordinates; label 1 foreground, 0 background. */
  points?: { x: number; y: number; label: 0 | 1 }[];
  /** x1, y1, x2, y2 in original-image pixels. */
  box?: readonly [number, number, number, number];
  /** 256 x 256 low-res logits of a previous prediction (decoders with `acceptsMaskInput`). */
  maskInput?: Float32Array;
  /**
   * The 3 candidates (true) or the single-mask answer (false; transformers.js decoders: the best candidate).
   * Default: true for a prompt of one point alone (ambiguous), else false.
   */
  multimask?: boolean;
  /**
   * Which masks to make at the image's size: every candidate's (default) or the best one's alone (upscaling is most
   * of a click's time; make the others with `lowResMasks` when they are wanted).
   */
  masks?: "all" | "best";
}

export interface WebSamPrediction {
  /** Each H * W (original image size), 0/1, row-major; ordered by score, best first (the best alone if asked). */
  masks: Uint8Array[];
  /** Predicted IoU, same order. */
  scores: number[];
  /** 256 x 256 logits, same order (feed one back as `maskInput` for the next click). */
  lowRes: Float32Array[];
  timings: { decodeMs: number; postprocessMs: number };
}

export interface WebSamDecoder {
  readonly layout: SamLayout;
  readonly acceptsBox: boolean;
  readonly acceptsMaskInput: boolean;
  /** Masks for one prompt on the image whose embeddings are given; calls run one at a time, in call order. */
  predict(
    embeddings: SamEmbeddings,
    image: { width: number; height: number },
    request: WebSamRequest,
  ): Promise<WebSamPrediction>;
  /** Releases the onnxruntime session; `predict` throws afterwards. */
  dispose(): Promise<void>;
}

const LOW_AREA = SAM_LOW_RES_SIZE * SAM_LOW_RES_SIZE;

/** Environment facts of a page (absent in Node). */
const page = globalThis as { crossOriginIsolated?: boolean; navigator?: { hardwareConcurrency?: number } };

/**
 * Opens a SAM decoder graph (official split, EdgeSAM or transformers.js form) on onnxruntime-web's wasm backend.
 * Throws a SegkitError naming the URL when it cannot be fetched, is not ONNX, or is not a SAM decoder.
 */
export async function createWebSamDecoder(options: WebSamDecoderOptions): Promise<WebSamDecoder> {
  const { ort, decoder } = options;
  const file = typeof decoder === "string" ? decoder : "the decoder bytes";
  const isolated = page.crossOriginIsolated === true;
  const threads = options.threads ?? (isolated ? (page.navigator?.hardwareConcurrency ?? 1) : 1);
  if (!Number.isInteger(threads) || threads < 1) {
    throw new SegkitError(`threads must be a positive integer, got ${threads}`);
  }
  ort.env.wasm.numThreads = threads;
  const bytes = typeof decoder === "string" ? await fetchGraph(decoder) : toBytes(decoder);
  let session: Ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    });
  } catch (err) {
    throw new SegkitError(`${file} is not a loadable ONNX model (${firstLine(err)})`, { file, cause: err });
  }
  let graph: SamDecoderGraph;
  try {
    graph = describeDecoder(
      { inputs: declared(session.inputMetadata), outputs: declared(session.outputMetadata) },
      file,
    );
  } catch (err) {
    await session.release();
    throw err;
  }
  let disposed = false;
  let queue: Promise<unknown> = Promise.resolve();

  const predictNow = async (
    embeddings: SamEmbeddings,
    image: { width: number; height: number },
    request: WebSamRequest,
  ): Promise<WebSamPrediction> => {
    if (disposed) throw new SegkitError("this WebSamDecoder was disposed");
    const { points = [], box, maskInput } = request;
    if (!points.length && !box && !maskInput) {
      throw new SegkitError("an empty prompt: give points, a box or a mask input");
    }
    const multimask = request.multimask ?? (points.length === 1 && !box && !maskInput);
    const originalSize = { height: image.height, width: image.width };
    const prompt = samDecodePrompt(
      graph.layout,
      { points, ...(box ? { box } : {}), ...(maskInput ? { maskInput } : {}) },
      originalSize,
      SAM_IMAGE_SIZE,
    );
    const { feeds, fetch } = decoderFeeds(graph, embeddings, prompt);
    const tensors: Record<string, Ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      tensors[name] =
        t.data instanceof BigInt64Array
          ? new ort.Tensor("int64", t.data, t.dims)
          : new ort.Tensor("float32", t.data, t.dims);
    }
    const t0 = performance.now();
    let results: Ort.InferenceSession.OnnxValueMapType;
    try {
      results = await session.run(tensors, fetch);
    } catch (err) {
      throw new SegkitError(`onnxruntime-web could not run the decoder (${firstLine(err)})`, { file, cause: err });
    }
    const decodeMs = performance.now() - t0;
    const out: Record<string, SamTensor> = {};
    for (const [name, t] of Object.entries(results)) {
      if (t.type !== "float32") throw new SegkitError(`output \`${name}\` is ${t.type}, expected float32`, { file });
      out[name] = { data: t.data as Float32Array, dims: [...t.dims] };
    }
    const decoded = decoderOutputs(graph, out);
    const count = decoded.lowRes.dims[0] ?? 0;
    const chosen = chooseMaskChannels(graph, count, multimask, decoded.scores);
    const order = orderByScore(chosen, decoded.scores);
    const masks = lowResMasks(
      decoded.lowRes.data,
      image,
      request.masks === "best" ? order.slice(0, 1) : order,
      graph.layout,
    );
    const postprocessMs = performance.now() - t0 - decodeMs;
    return {
      masks,
      scores: order.map((c) => decoded.scores[c] as number),
      lowRes: order.map((c) => decoded.lowRes.data.slice(c * LOW_AREA, (c + 1) * LOW_AREA)),
      timings: { decodeMs, postprocessMs },
    };
  };

  return {
    layout: graph.layout,
    acceptsBox: graph.acceptsBox,
    acceptsMaskInput: graph.acceptsMaskInput,
    predict(embeddings, image, request) {
      const run = queue.then(() => predictNow(embeddings, image, request));
      queue = run.catch(() => {});
      return run;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await queue;
      await session.release();
    },
  };
}

/**
 * Masks at the image's size from 256 x 256 low-res logits (planes back to back), as `predict` makes them: each plane
 * upscaled as SAM does (through the 1024 frame; SAM 2: straight to the image's size) and thresholded at 0.
 * `channels`: the planes to take, in this order (default all); `layout`: the decoder's (default SAM's split).
 */
export function lowResMasks(
  lowRes: Float32Array,
  image: { width: number; height: number },
  channels?: readonly number[],
  layout: SamLayout = "split",
): Uint8Array[] {
  const originalSize = { height: image.height, width: image.width };
  const order = channels ?? Array.from({ length: lowRes.length / LOW_AREA }, (_, c) => c);
  const frame = layout === "sam2" ? "stretch" : samInputShape(originalSize, SAM_IMAGE_SIZE);
  const up = upscaleMasks(lowRes, frame, originalSize, {
    channels: order,
  }).data;
  const area = originalSize.height * originalSize.width;
  return order.map((_, k) => thresholdMasks(up.subarray(k * area, (k + 1) * area)));
}

async function fetchGraph(url: string): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new SegkitError(`could not fetch the SAM decoder ${url} (${firstLine(err)})`, { file: url, cause: err });
  }
  if (!res.ok) {
    throw new SegkitError(`could not fetch the SAM decoder ${url}: HTTP ${res.status} ${res.statusText}`.trim(), {
      file: url,
    });
  }
  return new Uint8Array(await res.arrayBuffer());
}

function toBytes(b: ArrayBuffer | Uint8Array): Uint8Array {
  return b instanceof Uint8Array ? b : new Uint8Array(b);
}

/** onnxruntime's declared inputs or outputs in segkit's form (as onnx/session.ts reads them in Node). */
function declared(meta: readonly Ort.InferenceSession.ValueMetadata[]): GraphValueInfo[] {
  return meta.map((m) =>
    m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: "non-tensor", shape: [] },
  );
}

function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split("\n")[0] ?? "";
}
