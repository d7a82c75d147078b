/**
 * `segkit/web` as the app uses it (STUDIO.md "segkit/web API"): the browser decoder and the embedding wire format,
 * behind the app's own narrow types so that the test decoder and the server's decode fit the same interface.
 */
import { createWebSamDecoder, decodeEmbeddingWire } from "../../web/index.js";

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

export const webSam: WebSam | null = { createWebSamDecoder, decodeEmbeddingWire };
