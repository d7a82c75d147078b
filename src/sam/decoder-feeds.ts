/**
 * The pure part of running a SAM prompt decoder, shared by Node (`model.ts` on onnxruntime-node, `predictor.ts`)
 * and the browser (`segkit/web` on onnxruntime-web): no Node modules, no onnxruntime.
 */

export type SamLayout = "split" | "transformers";

/** Row-major float32 data and its dims. */
export interface SamTensor {
  data: Float32Array;
  dims: number[];
}

/** The encoder's outputs by the decoder input names they feed (always `image_embeddings` [1,256,64,64]). */
export type SamEmbeddings = Readonly<Record<string, SamTensor>>;
