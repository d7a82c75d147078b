/**
 * Prompt -> masks for the app, the one module that runs SAM. Three ways:
 * - a test decoder the page was given (`window.__segkitTestDecoder`, set by the browser tests before the app loads);
 * - segkit/web in the browser (onnxruntime-web loaded from /vendor/ort/, the decoder graph from the project's URL);
 * - the server's decode (POST /api/images/:id/decode, onnxruntime-node).
 * `?decode=browser` or `?decode=server` picks one. By default (`auto`) a page served from this machine (127.0.0.1,
 * localhost, [::1]) decodes on the server: there onnxruntime-node runs the same graph on the same CPU 2-3x faster than
 * wasm (bench/README.md, studio), and the page loads no wasm. A page from another host (`--host 0.0.0.0`) decodes in
 * the browser, so clicks cost no round trip and many labellers do not queue on one server. When the browser cannot
 * decode (no wasm, a failure), the server does.
 * Each waits for the image's embedding first (GET .../embedding answers 202 while the encoder works on it).
 */
import { orderByScore } from "../../sam/decoder-feeds.js";
import { SAM_LOW_RES_SIZE } from "../../sam/transforms.js";
import {
  createWebSamDecoder,
  decodeEmbeddingWire,
  decodeLowResWire,
  lowResMasks,
  type SamLayout,
  type WebSamPrediction as WebPrediction,
  type WebSamDecoderOptions,
  type WebSamRequest,
} from "../../web/index.js";
import type { Api, ImageEntry } from "./api.js";

/** A decoder's answer for the app: candidates best first; masks made on first use (upscaling is most of a click). */
export interface Prediction {
  readonly scores: readonly number[];
  /** 256 x 256 logits per candidate (the next click's mask input). */
  readonly lowRes: readonly Float32Array[];
  /** Candidate k's 0/1 mask at the image's size. */
  mask(k: number): Uint8Array | undefined;
  /** Where the time went, when the decoding side says (the decoder run; upscaling the best candidate). */
  readonly timings?: WebPrediction["timings"];
}

/** What a test decoder answers: every mask made, in any order. */
export type TestPrediction = Omit<WebPrediction, "timings">;

/** The candidates of `p` best first, copied (a decoder may reuse its buffers; masks kept by the app must not change). */
function bestFirst(p: TestPrediction): Prediction {
  const order = orderByScore([...p.scores.keys()], p.scores);
  const masks = order.map((i) => p.masks[i]?.slice());
  return {
    scores: order.map((i) => p.scores[i] ?? 0),
    lowRes: order.flatMap((i) => (p.lowRes[i] ? [p.lowRes[i].slice()] : [])),
    mask: (k) => masks[k],
  };
}

/** Masks made from the low-res logits (best first) one candidate at a time, as they are asked for. */
function lazyMasks(
  lowRes: readonly Float32Array[],
  size: { width: number; height: number },
  layout: SamLayout,
  made: Uint8Array[] = [],
): (k: number) => Uint8Array | undefined {
  return (k) => {
    const low = lowRes[k];
    if (!low) return undefined;
    made[k] ??= lowResMasks(low, size, undefined, layout)[0] as Uint8Array;
    return made[k];
  };
}

export type { WebSamRequest as PromptRequest };

/** The page-injected decoder of the browser tests: gets the embedding bytes as the server sent them. */
export interface TestDecoder {
  acceptsBox?: boolean;
  acceptsMaskInput?: boolean;
  predict(
    embedding: Uint8Array,
    image: { width: number; height: number },
    request: WebSamRequest,
  ): TestPrediction | Promise<TestPrediction>;
}

/** SAM bound to one image whose embedding is loaded. */
export interface ImageDecoder {
  predict(request: WebSamRequest): Promise<Prediction>;
}

export interface Segmenter {
  readonly kind: "test" | "browser" | "server";
  readonly acceptsBox: boolean;
  readonly acceptsMaskInput: boolean;
  /** Loads the image's embedding, waiting (and reporting through `onWait`) while the server computes it. */
  forImage(image: ImageEntry, onWait: (status: string) => void, signal: AbortSignal): Promise<ImageDecoder>;
}

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason);
    });
  });

async function embeddingBytes(
  api: Api,
  image: ImageEntry,
  onWait: (s: string) => void,
  signal: AbortSignal,
  statusOnly = false,
): Promise<Uint8Array> {
  for (;;) {
    signal.throwIfAborted();
    const answer = await api.embedding(image.id, statusOnly);
    if (answer.ready) return answer.bytes;
    if (answer.status === "failed") throw new Error(`the encoder failed on ${image.file}`);
    onWait(answer.position === undefined ? answer.status : `${answer.status}, ${answer.position} ahead`);
    await pause(400, signal);
  }
}

/** Base64 of the float32 bytes (the native `Uint8Array.prototype.toBase64` where the browser has it). */
const toBase64 = (f: Float32Array) => {
  const bytes = new Uint8Array(f.buffer, f.byteOffset, f.byteLength) as Uint8Array & { toBase64?: () => string };
  if (bytes.toBase64) return bytes.toBase64();
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
};

const LOW_AREA = SAM_LOW_RES_SIZE * SAM_LOW_RES_SIZE;

function serverSegmenter(
  api: Api,
  model: { layout: SamLayout; acceptsBox: boolean; acceptsMaskInput: boolean },
): Segmenter {
  return {
    kind: "server",
    ...model,
    async forImage(image, onWait, signal) {
      await embeddingBytes(api, image, onWait, signal, true); // the server decodes from its cache: wait for it
      return {
        async predict(req) {
          const answer = await api.decode(image.id, {
            ...(req.points ? { points: req.points } : {}),
            ...(req.box ? { box: req.box } : {}),
            ...(req.maskInput ? { maskInput: toBase64(req.maskInput) } : {}),
            ...(req.multimask === undefined ? {} : { multimask: req.multimask }),
          });
          // the decoder's answer (best first); masks made here as segkit/web makes them
          const t0 = performance.now();
          const { scores, lowRes: low, originalSize } = decodeLowResWire(answer.bytes);
          const lowRes = [...scores].map((_, k) => low.subarray(k * LOW_AREA, (k + 1) * LOW_AREA));
          const mask = lazyMasks(lowRes, originalSize, model.layout);
          mask(0); // the best, shown at once: its upscaling counted
          return {
            scores: [...scores],
            lowRes,
            mask,
            timings: { decodeMs: answer.decodeMs ?? Number.NaN, postprocessMs: performance.now() - t0 },
          };
        },
      };
    },
  };
}

/** Host names of a page served by a studio on this machine (`auto` decodes there). */
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** Where a page decodes, from its `?decode=` (auto when absent or unknown) and its host name. */
export function decodeWhere(asked: string | null, hostname: string): "browser" | "server" {
  if (asked === "browser" || asked === "server") return asked;
  return LOOPBACK.has(hostname) ? "server" : "browser";
}

/** The segmenter for this page, or null when the project has no model. */
export async function createSegmenter(
  api: Api,
  project: { model: (Parameters<typeof serverSegmenter>[1] & { decoderUrl: string }) | null },
  where: "browser" | "server",
): Promise<Segmenter | null> {
  const test = (globalThis as { __segkitTestDecoder?: TestDecoder }).__segkitTestDecoder;
  if (test) {
    return {
      kind: "test",
      acceptsBox: test.acceptsBox ?? true,
      acceptsMaskInput: test.acceptsMaskInput ?? true,
      async forImage(image, onWait, signal) {
        const bytes = await embeddingBytes(api, image, onWait, signal);
        return { predict: async (req) => bestFirst(await test.predict(bytes, image, req)) };
      },
    };
  }
  const model = project.model;
  if (!model) return null;
  const server = serverSegmenter(api, model);
  if (where === "server") return server;
  try {
    return await browserSegmenter(api, model.decoderUrl);
  } catch (err) {
    console.warn("segkit studio: browser decoding unavailable, decoding on the server:", err);
    return server;
  }
}

async function browserSegmenter(api: Api, decoderUrl: string): Promise<Segmenter> {
  const ort = (await import(/* @vite-ignore */ api.url("/vendor/ort/ort.wasm.min.mjs"))) as {
    env: { wasm: { wasmPaths?: unknown } };
  };
  ort.env.wasm.wasmPaths = {
    mjs: api.url("/vendor/ort/ort-wasm-simd-threaded.mjs"),
    wasm: api.url("/vendor/ort/ort-wasm-simd-threaded.wasm"),
  };
  const dec = await createWebSamDecoder({
    decoder: api.url(decoderUrl),
    ort: ort as unknown as WebSamDecoderOptions["ort"],
  });
  return {
    kind: "browser",
    acceptsBox: dec.acceptsBox,
    acceptsMaskInput: dec.acceptsMaskInput,
    async forImage(image, onWait, signal) {
      const { embeddings } = decodeEmbeddingWire(await embeddingBytes(api, image, onWait, signal));
      return {
        async predict(req) {
          const p = await dec.predict(embeddings, image, { ...req, masks: "best" }); // best first
          return { ...p, mask: lazyMasks(p.lowRes, image, dec.layout, p.masks) };
        },
      };
    },
  };
}
