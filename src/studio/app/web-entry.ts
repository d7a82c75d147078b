/**
 * `segkit/web` as the app uses it (STUDIO.md "segkit/web API"). Helper WEB builds src/web/ in a parallel branch;
 * until it is merged this is null and the app decodes prompts on the server (POST /api/images/:id/decode). At the
 * merge this file becomes:
 *
 *   import { createWebSamDecoder, decodeEmbeddingWire } from "../../web/index.js";
 *   export const webSam: WebSam | null = { createWebSamDecoder, decodeEmbeddingWire };
 */

type Embeddings = Record<string, { data: Float32Array; dims: number[] }>;

export interface WebSamRequest {
  points?: { x: number; y: number; label: 0 | 1 }[];
  box?: readonly [number, number, number, number];
  maskInput?: Float32Array;
  multimask?: boolean;
}

export interface WebSamPrediction {
  masks: Uint8Array[];
  scores: number[];
  lowRes: Float32Array[];
}

export interface WebSam {
  createWebSamDecoder(options: {
    decoder: string | ArrayBuffer | Uint8Array;
    ort: unknown;
    threads?: number;
  }): Promise<{
    readonly acceptsBox: boolean;
    readonly acceptsMaskInput: boolean;
    predict(
      embeddings: Embeddings,
      image: { width: number; height: number },
      request: WebSamRequest,
    ): Promise<WebSamPrediction>;
    dispose(): Promise<void>;
  }>;
  decodeEmbeddingWire(bytes: Uint8Array): { embeddings: Embeddings };
}

export const webSam: WebSam | null = null;
