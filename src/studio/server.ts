/**
 * The studio's HTTP server (node:http): the app, the images, the SAM decoder graph, onnxruntime-web's files and the
 * JSON API of README "Studio API" over a `ProjectStore` and, with a model, an `EncoderQueue`.
 *
 * Safety, stated once:
 * - Binds to 127.0.0.1 unless told otherwise. On another host a token is required (generated when not given): every
 *   request carries `?token=T`, the header `X-Segkit-Token: T` or the cookie a request with `?token=` sets
 *   (`SameSite=Strict; HttpOnly`: the page's own `<img>`, script and wasm loads cannot add a header). Tokens are
 *   compared in constant time. Without a token, the `Host` header must name a loopback address (no DNS rebinding).
 * - Files are served only by lookup, never by joining a request path: the app's three files, the listed images by
 *   id (each re-checked to resolve inside the images directory at the time it is served), the decoder graph, and
 *   the onnxruntime-web `.mjs` / `.wasm` files present at start. Anything else is a 404.
 * - Request bodies are JSON (`Content-Type: application/json`, which also keeps cross-site forms out), at most
 *   `maxBodyBytes` for annotations and 1 MiB for the rest, checked with zod; bad input is a 4xx `{ error }`, a
 *   handler's failure a 500 `{ error }`, never a crash. Every response carries COOP / COEP / CORP (the browser's
 *   threaded wasm needs cross-origin isolation) and `X-Content-Type-Options: nosniff`.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, readFile, realpath, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { errorMessage, SegkitError } from "../core/errors.js";
import type { Mask } from "../core/image.js";
import { EXPORT_TARGETS } from "../export/dataset.js";
import type { Predictor } from "../infer/predict.js";
import { rleEncode, rleToString } from "../masks/rle.js";
import { pruneOnnx } from "../onnx/prune.js";
import { orderByScore } from "../sam/decoder-feeds.js";
import { SAM_LOW_RES_SIZE } from "../sam/transforms.js";
import { EMBEDDING_WIRE_TYPE, encodeLowResWire, LOW_RES_WIRE_TYPE } from "../sam/wire.js";
import type { EncoderQueue } from "./encoder-queue.js";
import { exportProject } from "./export.js";
import { modelPrelabels } from "./prelabel.js";
import { isInside, type ProjectStore, StudioConflict, zodProblem } from "./store.js";

/** The app's files, served at `/`, `/app.js` and `/style.css`. */
export const STUDIO_APP_FILES = ["index.html", "app.js", "style.css"] as const;
export type StudioAppFile = (typeof STUDIO_APP_FILES)[number];

/** Default limit of an annotations body (64 MiB). */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;
const SMALL_BODY_BYTES = 1024 * 1024;
/** How long `close` waits for requests under way before cutting them. */
const CLOSE_GRACE_MS = 5000;
/** Most points in one server-side decode. */
export const MAX_DECODE_POINTS = 64;

export interface StudioServerOptions {
  store: ProjectStore;
  /** The encoder of the SAM model; without it the SAM endpoints answer 409 and `model` is null. */
  encoder?: EncoderQueue;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Required on a non-loopback host (generated when absent); optional on loopback. */
  token?: string;
  /** Where the app's files are (default: the package's `dist/studio`). */
  appDir?: string;
  /** The app's files from elsewhere (tests bundle them from src); undefined falls back to `appDir`. */
  appFile?: (name: StudioAppFile) => Promise<Uint8Array | string | undefined>;
  /** onnxruntime-web's `dist` directory (default: resolved from node_modules). */
  ortDir?: string;
  /** A trained segkit model for `POST /api/images/:id/prelabel` with `from: "model"` (`loadPredictor`). */
  prelabelModel?: Predictor;
  /** Segment-everything settings of `from: "amg"` pre-labels when the request gives none (default: `generateMasks`'). */
  prelabelAmg?: PrelabelAmgOptions;
  /** Largest annotations body in bytes (default `DEFAULT_MAX_BODY_BYTES`). */
  maxBodyBytes?: number;
}

export interface StudioServer {
  /** `http://host:port/`, with `?token=` when there is a token. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly token: string | undefined;
  close(): Promise<void>;
}

/** Content types of the files the studio (and the tests' static servers) send. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".onnx": "application/octet-stream",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".jpe": "image/jpeg",
  ".png": "image/png",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".tif": "image/tiff",
  ".tiff": "image/tiff",
  ".json": "application/json",
  ".map": "application/json",
};
/** The content type of `file` by its extension. */
export const contentType = (file: string) => CONTENT_TYPES[extname(file).toLowerCase()] ?? "application/octet-stream";

/** The headers that make a page cross-origin isolated (COOP/COEP, needed for wasm threads) and keep files same-origin. */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
};

/** Whether `host` is a loopback address or name. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || h === "::ffff:127.0.0.1";
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const DecodeSchema = z
  .object({
    points: z
      .array(
        z
          .object({ x: z.number().finite(), y: z.number().finite(), label: z.union([z.literal(0), z.literal(1)]) })
          .strict(),
      )
      .max(MAX_DECODE_POINTS)
      .optional(),
    box: z.tuple([z.number().finite(), z.number().finite(), z.number().finite(), z.number().finite()]).optional(),
    maskInput: z.string().max(400_000).optional(),
    multimask: z.boolean().optional(),
  })
  .strict();
const PrelabelSchema = z
  .object({
    baseRevision: z.number().int().min(0),
    from: z.enum(["amg", "model"]).optional(),
    classId: z.number().int().min(1).optional(),
    pointsPerSide: z.number().int().min(1).max(64).optional(),
    predIouThresh: z.number().min(0).max(1).optional(),
    stabilityScoreThresh: z.number().min(0).max(1).optional(),
    minMaskRegionArea: z.number().int().min(0).optional(),
  })
  .strict();
/** The segment-everything settings a pre-label request may give. */
export type PrelabelAmgOptions = Partial<
  Pick<z.infer<typeof PrelabelSchema>, "pointsPerSide" | "predIouThresh" | "stabilityScoreThresh" | "minMaskRegionArea">
>;
const ExportSchema = z.object({ format: z.enum(EXPORT_TARGETS) }).strict();

const LOW_BYTES = 4 * SAM_LOW_RES_SIZE * SAM_LOW_RES_SIZE;
const toBase64 = (f: Float32Array) => Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString("base64");
function fromBase64Plane(s: string): Float32Array {
  const bytes = Buffer.from(s, "base64");
  if (bytes.length !== LOW_BYTES) {
    throw new HttpError(
      400,
      `maskInput must be ${SAM_LOW_RES_SIZE}x${SAM_LOW_RES_SIZE} float32 (${LOW_BYTES} bytes) in base64, got ${bytes.length} bytes`,
    );
  }
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** The token a server on `host` requires: `token` when given, else a new random one unless `host` is loopback. */
export function accessToken(host: string, token?: string): string | undefined {
  return token ?? (isLoopback(host) ? undefined : randomBytes(18).toString("base64url"));
}

export async function startStudioServer(options: StudioServerOptions): Promise<StudioServer> {
  const { store, encoder } = options;
  const host = options.host ?? "127.0.0.1";
  const token = accessToken(host, options.token);
  const tokenDigest = token === undefined ? undefined : digest(token);
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const appDir = options.appDir ?? fileURLToPath(new URL("../../dist/studio/", import.meta.url));
  const ortDir = options.ortDir ?? dirname(fileURLToPath(import.meta.resolve("onnxruntime-web")));
  const ortFiles = new Set(
    (await readdir(ortDir).catch(() => [] as string[])).filter((f) => /^ort[\w.-]*\.(mjs|wasm)$/.test(f)),
  );
  const imagesTop = await realpath(store.imagesDir);

  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store" });
    res.end(text);
  };
  const sendBytes = (res: ServerResponse, type: string, bytes: Uint8Array | string) => {
    res.writeHead(200, { "Content-Type": type, "Cache-Control": "no-cache" });
    res.end(bytes);
  };
  /**
   * The decoder graph pages run: the official export without its full-size `masks`, which segkit/web does not fetch
   * and onnxruntime-web would compute on every click (`pruneOnnx`); other decoders as they are. Read once.
   */
  let pageDecoderBytes: Promise<Uint8Array> | undefined;
  const pageDecoder = ({ decoderFile: file, lowResOutputs }: EncoderQueue["model"]) => {
    pageDecoderBytes ??= readFile(file).then(
      (bytes) => {
        try {
          return pruneOnnx(bytes, lowResOutputs, file) ?? bytes;
        } catch (err) {
          if (err instanceof SegkitError) return bytes; // a graph pruneOnnx cannot cut runs whole
          throw err;
        }
      },
      (err: unknown) => {
        pageDecoderBytes = undefined; // read again on the next request
        throw err;
      },
    );
    return pageDecoderBytes;
  };
  const sendFile = async (res: ServerResponse, file: string) => {
    const s = await stat(file).catch(() => undefined);
    if (!s?.isFile()) throw new HttpError(404, "not found");
    res.writeHead(200, { "Content-Type": contentType(file), "Content-Length": s.size, "Cache-Control": "no-cache" });
    await new Promise<void>((done, fail) => {
      const stream = createReadStream(file);
      stream.on("error", fail);
      res.on("close", () => {
        stream.destroy();
        done();
      });
      stream.pipe(res);
    });
  };

  /** The token given with the request (query, header or cookie), and whether it came in the query. */
  const given = (req: IncomingMessage, query: URLSearchParams): { value?: string; fromQuery: boolean } => {
    const q = query.get("token");
    if (q !== null) return { value: q, fromQuery: true };
    const h = req.headers["x-segkit-token"];
    if (typeof h === "string") return { value: h, fromQuery: false };
    const cookie = /(?:^|;\s*)segkit_token=([^;]*)/.exec(req.headers.cookie ?? "")?.[1];
    let value: string | undefined;
    try {
      value = cookie === undefined ? undefined : decodeURIComponent(cookie);
    } catch {
      value = undefined; // a malformed cookie is no token
    }
    return { ...(value !== undefined ? { value } : {}), fromQuery: false };
  };

  const readBody = async (req: IncomingMessage, limit: number): Promise<unknown> => {
    const type = req.headers["content-type"] ?? "";
    if (!/^application\/json\s*(;|$)/i.test(type)) throw new HttpError(415, "the body must be application/json");
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > limit) throw new HttpError(413, `the body is ${declared} bytes, more than the ${limit} accepted`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > limit) throw new HttpError(413, `the body is more than the ${limit} bytes accepted`);
      chunks.push(chunk as Buffer);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch (err) {
      throw new HttpError(400, `the body is not JSON (${(err as Error).message})`);
    }
  };

  const needEncoder = (): EncoderQueue => {
    if (!encoder) throw new HttpError(409, "no SAM model: start the studio with --model DIR");
    return encoder;
  };

  const imageRoute = async (req: IncomingMessage, res: ServerResponse, id: string, action: string) => {
    const img = store.image(id);
    if (!img) throw new HttpError(404, `no image ${JSON.stringify(id)}`);
    const method = req.method ?? "GET";
    const allow = (m: string) => {
      if (method !== m) throw new HttpError(405, `${method} is not allowed here (${m})`);
    };
    switch (action) {
      case "file": {
        allow("GET");
        if (!(await isInside(imagesTop, img.path))) throw new HttpError(404, "not found");
        return sendFile(res, img.path);
      }
      case "annotations": {
        if (method === "PUT") {
          const body = await readBody(req, maxBody);
          return send(res, 200, await store.put(id, body));
        }
        allow("GET");
        return send(res, 200, store.annotations(id));
      }
      case "embedding": {
        allow("GET");
        // `?status`: whether it is ready, without the bytes (a page decoding on the server only waits for it)
        const q = needEncoder();
        if (/[?&]status(=|&|$)/.test(req.url ?? "") && q.status(id) === "ready") {
          return send(res, 200, { status: "ready" });
        }
        const e = await q.embedding(id).catch((err: unknown) => {
          throw new HttpError(500, `the encoder failed on this image: ${errorMessage(err)}`);
        });
        if ("wire" in e) return sendBytes(res, EMBEDDING_WIRE_TYPE, e.wire);
        return send(res, 202, e);
      }
      case "decode": {
        allow("POST");
        const q = needEncoder();
        const parsed = DecodeSchema.safeParse(await readBody(req, SMALL_BODY_BYTES));
        if (!parsed.success) throw new HttpError(400, zodProblem(parsed.error));
        const { points, box, maskInput, multimask } = parsed.data;
        const request = {
          ...(points ? { points } : {}),
          ...(box ? { box } : {}),
          ...(maskInput !== undefined ? { maskInput: fromBase64Plane(maskInput) } : {}),
          ...(multimask !== undefined ? { multimask } : {}),
        };
        const area = SAM_LOW_RES_SIZE * SAM_LOW_RES_SIZE;
        // best first, as segkit/web answers (the predictor keeps the decoder's order)
        const best = (scores: Float32Array) => orderByScore([...scores.keys()], scores);
        const plane = (data: Float32Array, i: number) => data.subarray(i * area, (i + 1) * area);
        const accepts = (req.headers.accept ?? "").split(",").map((t) => t.split(";")[0]?.trim());
        if (accepts.includes(LOW_RES_WIRE_TYPE)) {
          // the decoder's answer alone, in binary: the page upscales (what the app asks for)
          const p = await q.decodeLowRes(id, request);
          const order = best(p.scores);
          const low = new Float32Array(order.length * area);
          for (const [k, i] of order.entries()) low.set(plane(p.lowResLogits.data, i), k * area);
          const scores = Float32Array.from(order, (i) => p.scores[i] as number);
          const { originalSize, inputSize } = p;
          res.setHeader("Server-Timing", `decode;dur=${p.timings.decodeMs.toFixed(1)}`);
          const wire = encodeLowResWire({ layout: q.model.layout, originalSize, inputSize, scores, lowRes: low });
          return sendBytes(res, LOW_RES_WIRE_TYPE, wire);
        }
        const p = await q.decode(id, request);
        const order = best(p.scores);
        return send(res, 200, {
          scores: order.map((i) => p.scores[i] as number),
          masks: order.map((i) => rleToString(rleEncode(p.masks[i] as Mask))),
          lowRes: order.map((i) => toBase64(plane(p.lowResLogits.data, i))),
        });
      }
      case "prelabel": {
        allow("POST");
        const parsed = PrelabelSchema.safeParse(await readBody(req, SMALL_BODY_BYTES));
        if (!parsed.success) throw new HttpError(400, zodProblem(parsed.error));
        const { baseRevision, classId, from = "amg", ...amgOptions } = parsed.data;
        const before = store.annotations(id);
        if (before && before.revision !== baseRevision) throw new StudioConflict(id, before.revision, baseRevision);
        let found: { classId: number; rle: unknown; score?: number }[];
        if (from === "model") {
          if (!options.prelabelModel)
            throw new HttpError(409, "no pre-label model: start the studio with --prelabel-model DIR");
          found = await modelPrelabels(options.prelabelModel, img, store.classes);
        } else {
          if (classId === undefined) throw new HttpError(400, "classId: the class of the suggestions is required");
          if (!store.classes.some((c) => c.id === classId)) throw new HttpError(400, `class ${classId} does not exist`);
          const records = await needEncoder().amg(id, { ...options.prelabelAmg, ...amgOptions });
          found = records.map((r) => ({ classId, rle: r.segmentation, score: r.predicted_iou }));
        }
        const now = store.annotations(id) ?? { revision: 0, state: "new", instances: [] };
        if (found.length === 0) return send(res, 200, { revision: now.revision, added: 0 }); // nothing changes
        const added = found.map((f, k) => ({
          id: `prelabel-${baseRevision + 1}-${k}`,
          ...f,
          source: "prelabel" as const,
        }));
        const state = now.state === "new" ? "in-progress" : now.state;
        const result = await store.put(id, { baseRevision, state, instances: [...now.instances, ...added] });
        return send(res, 200, { ...result, added: added.length });
      }
      default:
        throw new HttpError(404, "not found");
    }
  };

  const route = async (req: IncomingMessage, res: ServerResponse, parts: string[]) => {
    const method = req.method ?? "GET";
    const [a, b, c, d, ...rest] = parts;
    const get = () => {
      if (method !== "GET") throw new HttpError(405, `${method} is not allowed here`);
    };
    if (parts.length === 1 && (a === "" || a === "app.js" || a === "style.css")) {
      get();
      const name: StudioAppFile = a === "" ? "index.html" : (a as StudioAppFile);
      const bytes = (await options.appFile?.(name)) ?? (await readFile(join(appDir, name)).catch(() => undefined));
      if (bytes === undefined) {
        throw new HttpError(404, `the studio app is not built (${join(appDir, name)} missing): run npm run build`);
      }
      return sendBytes(res, contentType(name), bytes);
    }
    if (a === "vendor" && b === "ort" && parts.length === 3 && c !== undefined && ortFiles.has(c)) {
      get();
      return sendFile(res, join(ortDir, c));
    }
    if (a === "model" && b === "decoder.onnx" && parts.length === 2) {
      get();
      return sendBytes(res, "application/octet-stream", await pageDecoder(needEncoder().model));
    }
    if (a !== "api") throw new HttpError(404, "not found");
    if (b === "images" && c !== undefined && d !== undefined && rest.length === 0) return imageRoute(req, res, c, d);
    if (parts.length !== 2) throw new HttpError(404, "not found");
    switch (b) {
      case "project": {
        get();
        const m = encoder?.model;
        return send(res, 200, {
          name: store.name,
          imagesDir: store.imagesDir,
          outDir: store.outDir,
          mode: store.mode,
          classes: store.classes,
          model: m
            ? {
                layout: m.layout,
                acceptsBox: m.acceptsBox,
                acceptsMaskInput: m.acceptsMaskInput,
                decoderUrl: "/model/decoder.onnx",
              }
            : null,
          prelabel: { amg: encoder !== undefined, model: options.prelabelModel !== undefined },
        });
      }
      case "images": {
        get();
        return send(res, 200, {
          images: store.images.map((img) => {
            const ann = store.annotations(img.id);
            return {
              id: img.id,
              file: img.id,
              width: img.width,
              height: img.height,
              state: ann?.state ?? "new",
              instances: ann?.instances.length ?? 0,
              embedding: encoder ? encoder.status(img.id) : "none",
            };
          }),
        });
      }
      case "status": {
        get();
        const encoderProgress = encoder?.progress() ?? { done: 0, total: 0, current: null, failed: 0 };
        return send(res, 200, { encoder: encoderProgress, revision: store.revision });
      }
      case "export": {
        if (method !== "POST") throw new HttpError(405, `${method} is not allowed here (POST)`);
        const parsed = ExportSchema.safeParse(await readBody(req, SMALL_BODY_BYTES));
        if (!parsed.success) throw new HttpError(400, zodProblem(parsed.error));
        const { dir, files } = await exportProject(store, parsed.data.format);
        return send(res, 200, { dir, files });
      }
      default:
        throw new HttpError(404, "not found");
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    for (const [name, value] of Object.entries(ISOLATION_HEADERS)) res.setHeader(name, value);
    res.setHeader("X-Content-Type-Options", "nosniff");
    try {
      const raw = req.url ?? "/";
      const q = raw.indexOf("?");
      const path = q < 0 ? raw : raw.slice(0, q);
      const query = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
      if (tokenDigest) {
        const t = given(req, query);
        if (t.value === undefined || !timingSafeEqual(digest(t.value), tokenDigest)) {
          throw new HttpError(401, "a valid token is required (?token=..., header X-Segkit-Token)");
        }
        if (t.fromQuery)
          res.setHeader("Set-Cookie", `segkit_token=${encodeURIComponent(t.value)}; Path=/; HttpOnly; SameSite=Strict`);
      } else if (!isLoopback((req.headers.host ?? "").replace(/:\d+$/, ""))) {
        throw new HttpError(403, "the Host header must name this machine (127.0.0.1, localhost)");
      }
      if (!path.startsWith("/")) throw new HttpError(400, "bad request path");
      const parts = path
        .slice(1)
        .split("/")
        .map((s) => {
          try {
            return decodeURIComponent(s);
          } catch {
            throw new HttpError(400, "bad percent-encoding in the path");
          }
        });
      await route(req, res, parts);
    } catch (err) {
      const [status, body] =
        err instanceof HttpError
          ? [err.status, { error: err.message, ...err.extra }]
          : err instanceof StudioConflict
            ? [409, { error: err.describe(), revision: err.revision }]
            : err instanceof SegkitError
              ? [400, { error: err.describe() }]
              : [500, { error: errorMessage(err) }];
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (status === 413 || status === 415) res.setHeader("Connection", "close");
      send(res, status, body);
    }
  };

  const inFlight = new Set<Promise<void>>();
  const server = createServer((req, res) => {
    const p = handle(req, res).catch(() => {
      res.destroy();
    });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  });
  server.on("clientError", (_err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    else socket.destroy();
  });
  await new Promise<void>((resolveListen, fail) => {
    server.once("error", fail);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", fail);
      resolveListen();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/${token ? `?token=${encodeURIComponent(token)}` : ""}`,
    host,
    port,
    token,
    async close() {
      // no new connections; requests under way finish (a change being written is written), then the rest is cut
      const closed = new Promise<void>((done) => server.close(() => done()));
      server.closeIdleConnections();
      const cut = new Promise<void>((done) => setTimeout(done, CLOSE_GRACE_MS).unref());
      await Promise.race([Promise.allSettled([...inFlight]), cut]);
      await store.idle();
      server.closeAllConnections();
      await closed;
    },
  };
}
