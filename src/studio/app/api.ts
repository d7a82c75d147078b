/**
 * The studio's HTTP API as the app uses it (STUDIO.md "HTTP API"): the one module that talks to the server. Every
 * request carries the page's `?token=` as the `X-Segkit-Token` header; URLs handed to the browser itself (image
 * and model files, which cannot carry a header) get it as a query parameter instead.
 */
import type { CompressedRle } from "../../masks/rle.js";
import { LOW_RES_WIRE_TYPE, type SamLayout } from "../../web/index.js";

export type ImageState = "new" | "in-progress" | "done";
export type EmbeddingState = "none" | "queued" | "running" | "ready" | "failed";

export interface ProjectClass {
  readonly id: number;
  readonly name: string;
  readonly color: string;
}

export interface ProjectInfo {
  readonly name: string;
  readonly imagesDir: string;
  readonly outDir: string;
  readonly mode: "instance" | "semantic";
  readonly classes: readonly ProjectClass[];
  readonly model: null | {
    readonly layout: SamLayout;
    readonly acceptsBox: boolean;
    readonly acceptsMaskInput: boolean;
    readonly decoderUrl: string;
  };
  /** What pre-labels the server can make: `amg` with a SAM model, `model` with `--prelabel-model`. */
  readonly prelabel: { readonly amg: boolean; readonly model: boolean };
}

export interface ImageEntry {
  readonly id: string;
  readonly file: string;
  readonly width: number;
  readonly height: number;
  state: ImageState;
  instances: number;
  embedding: EmbeddingState;
}

export interface InstanceRecord {
  readonly id: string;
  readonly classId: number;
  readonly rle: CompressedRle;
  readonly source: "sam" | "manual" | "prelabel";
  readonly score?: number;
}

export interface Annotations {
  readonly revision: number;
  readonly state: ImageState;
  readonly instances: readonly InstanceRecord[];
}

export type PrelabelSource = "amg" | "model";

export interface EncoderStatus {
  readonly encoder: { done: number; total: number; current: string | null; failed: number };
  readonly revision: number;
}

export interface ServerDecodeRequest {
  points?: { x: number; y: number; label: 0 | 1 }[];
  box?: readonly [number, number, number, number];
  maskInput?: string;
  multimask?: boolean;
}

/** The server's decode as the app asks for it: the low-res answer's wire bytes and the decoder's ms (Server-Timing). */
export interface ServerDecodeAnswer {
  readonly bytes: Uint8Array;
  readonly decodeMs?: number;
}

/** A non-2xx answer: the status and the server's `{ error }` message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

/** Embedding of one image: the wire bytes when ready, else the queue state the server reported. */
export type EmbeddingAnswer =
  | { readonly ready: true; readonly bytes: Uint8Array }
  | { readonly ready: false; readonly status: string; readonly position?: number };

export interface Api {
  /** `path` with the token as a query parameter, for URLs the browser fetches by itself. */
  url(path: string): string;
  project(): Promise<ProjectInfo>;
  images(): Promise<ImageEntry[]>;
  imageUrl(id: string): string;
  annotations(id: string): Promise<Annotations>;
  /** Saves the image's annotations; throws an `ApiError` with status 409 when `baseRevision` is stale. */
  saveAnnotations(
    id: string,
    body: { baseRevision: number; state: ImageState; instances: readonly InstanceRecord[] },
  ): Promise<{ revision: number }>;
  /** With `statusOnly`, a ready answer carries no bytes (`?status`: the page decodes on the server). */
  embedding(id: string, statusOnly?: boolean): Promise<EmbeddingAnswer>;
  decode(id: string, request: ServerDecodeRequest): Promise<ServerDecodeAnswer>;
  status(): Promise<EncoderStatus>;
  /**
   * Appends pre-label suggestions to the image's annotations in one change (`from: "amg"`: segment-everything, each
   * mask of class `classId`; `"model"`: the server's pre-label model); 409 when `baseRevision` is stale.
   */
  prelabel(
    id: string,
    body: { baseRevision: number; from: PrelabelSource; classId?: number },
  ): Promise<{ revision: number; added: number }>;
  /** Writes the project's export under `<out>/export/<format>/`. */
  exportProject(format: "coco" | "png" | "yolo"): Promise<{ dir: string; files: string[] }>;
}

export function createApi(token: string | null, base = ""): Api {
  const headers: Record<string, string> = token ? { "X-Segkit-Token": token } : {};
  const image = (id: string) => `${base}/api/images/${encodeURIComponent(id)}`;
  const url = (path: string) =>
    token ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : path;

  async function request(path: string, init: RequestInit = {}): Promise<Response> {
    const res = await fetch(path, { ...init, headers: { ...headers, ...(init.headers as Record<string, string>) } });
    if (!res.ok) {
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {}
      const message = (body as { error?: unknown })?.error;
      throw new ApiError(res.status, typeof message === "string" ? message : `${res.status} ${res.statusText}`, body);
    }
    return res;
  }
  const json = async <T>(path: string, init?: RequestInit) => (await (await request(path, init)).json()) as T;
  const send = (method: string, body: unknown): RequestInit => ({
    method,
    body: JSON.stringify(body),
    headers: { "Content-Type": "application/json" },
  });

  return {
    url,
    project: () => json<ProjectInfo>(`${base}/api/project`),
    images: async () => (await json<{ images: ImageEntry[] }>(`${base}/api/images`)).images,
    imageUrl: (id) => url(`${image(id)}/file`),
    annotations: (id) => json<Annotations>(`${image(id)}/annotations`),
    saveAnnotations: (id, body) => json<{ revision: number }>(`${image(id)}/annotations`, send("PUT", body)),
    async embedding(id, statusOnly = false) {
      const res = await request(`${image(id)}/embedding${statusOnly ? "?status" : ""}`);
      if (statusOnly && res.status === 200) return { ready: true, bytes: new Uint8Array() };
      if (res.status === 202) {
        const body = (await res.json()) as { status: string; position?: number };
        return {
          ready: false,
          status: body.status,
          ...(body.position === undefined ? {} : { position: body.position }),
        };
      }
      return { ready: true, bytes: new Uint8Array(await res.arrayBuffer()) };
    },
    async decode(id, req) {
      const init = send("POST", req);
      const res = await request(`${image(id)}/decode`, {
        ...init,
        headers: { ...(init.headers as Record<string, string>), Accept: LOW_RES_WIRE_TYPE },
      });
      const timing = /decode;dur=([\d.]+)/.exec(res.headers.get("Server-Timing") ?? "");
      return { bytes: new Uint8Array(await res.arrayBuffer()), ...(timing ? { decodeMs: Number(timing[1]) } : {}) };
    },
    prelabel: (id, body) => json(`${image(id)}/prelabel`, send("POST", body)),
    status: () => json<EncoderStatus>(`${base}/api/status`),
    exportProject: (format) => json(`${base}/api/export`, send("POST", { format })),
  };
}
