/**
 * SAM 2 as the 7-graph ONNX split (the ax Inc. / ailia layout, as `scripts/export_sam2_onnx.py` writes it): finding
 * and checking the graphs, reading `constants_<tag>.json` (the learned tensors no graph holds), and the image
 * model behind `loadSamModel` (image encoder -> prompt encoder -> mask decoder, as `SAM2ImagePredictor` runs them).
 * The video predictor (video.ts) runs the same graphs plus memory attention, memory encoder and the two
 * projections.
 *
 * Graphs (`<graph>_<tag>.onnx`; S the image size, C the hidden dim, M the memory dim):
 * - image_encoder: input_image [1,3,S,S] -> vision_features [1,C,S/16,S/16], vision_pos_enc_0/1/2, backbone_fpn_0
 *   [1,C/8,S/4,S/4] and backbone_fpn_1 [1,C/4,S/8,S/8] (the mask decoder's conv_s0 / conv_s1 applied), backbone_fpn_2;
 * - prompt_encoder: coords [1,n,2] (S frame), labels [1,n] int32, masks [1,1,S/4,S/4], masks_enable [1] int32 ->
 *   sparse_embeddings [1,n+1,C] (padding point appended), dense_embeddings, dense_pe;
 * - mask_decoder: image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
 *   high_res_features1, high_res_features2 -> masks [1,4,S/4,S/4], iou_pred [1,4], sam_tokens_out [1,4,C],
 *   object_score_logits [1,1];
 * - memory_attention: curr, memory_1, memory_2, curr_pos, memory_pos_1, memory_pos_2, attention_mask_1/2 -> pix_feat;
 * - memory_encoder: pix_feat [1,C,H,W], masks [1,1,S,S] -> vision_features [1,M,H,W], vision_pos_enc [1,M,H,W];
 * - mlp: x [n,C] -> x_out [n,C] (obj_ptr_proj); obj_ptr_tpos_proj: x [n,C] -> x_out [n,M].
 */
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { z } from "zod";
import { SegkitError } from "../core/errors.js";
import { listFiles } from "../io/fs.js";
import type { ExecutionProvider, OnnxInput, OnnxSession } from "../onnx/session.js";
import { listNames, type SamEmbeddings, type SamTensor } from "./decoder-feeds.js";
import { openGraph, runGraph } from "./graphs.js";
import { SAM_IMAGE_SIZE, SAM_LOW_RES_SIZE } from "./transforms.js";

export const SAM2_GRAPHS = [
  "image_encoder",
  "prompt_encoder",
  "mask_decoder",
  "memory_attention",
  "memory_encoder",
  "mlp",
  "obj_ptr_tpos_proj",
] as const;
export type Sam2Graph = (typeof SAM2_GRAPHS)[number];

/** Each graph's inputs, in the order the exporter declares them. */
const SAM2_INPUTS: Record<Sam2Graph, readonly string[]> = {
  image_encoder: ["input_image"],
  prompt_encoder: ["coords", "labels", "masks", "masks_enable"],
  mask_decoder: [
    "image_embeddings",
    "image_pe",
    "sparse_prompt_embeddings",
    "dense_prompt_embeddings",
    "high_res_features1",
    "high_res_features2",
  ],
  memory_attention: [
    "curr",
    "memory_1",
    "memory_2",
    "curr_pos",
    "memory_pos_1",
    "memory_pos_2",
    "attention_mask_1",
    "attention_mask_2",
  ],
  memory_encoder: ["pix_feat", "masks"],
  mlp: ["x"],
  obj_ptr_tpos_proj: ["x"],
};

const vector = z.array(z.number());
const constantsSchema = z.object({
  no_mem_embed: vector,
  maskmem_tpos_enc: z.array(vector).min(1),
  no_obj_ptr: vector,
  no_obj_embed_spatial: vector.nullable(),
  mask_downsample_weight: z.array(vector).length(4),
  mask_downsample_bias: z.number(),
  hidden_dim: z.number().int().positive(),
  mem_dim: z.number().int().positive(),
  image_size: z.number().int().positive(),
  backbone_stride: z.number().int().positive().default(16),
  num_maskmem: z.number().int().positive(),
  max_obj_ptrs_in_encoder: z.number().int().positive(),
  max_cond_frames_in_attn: z.number().int().default(-1),
  memory_temporal_stride_for_eval: z.number().int().positive().default(1),
  sigmoid_scale_for_mem_enc: z.number(),
  sigmoid_bias_for_mem_enc: z.number(),
  dynamic_multimask_stability_delta: z.number(),
  dynamic_multimask_stability_thresh: z.number(),
  multimask_min_pt_num: z.number().int().default(0),
  multimask_max_pt_num: z.number().int().default(1),
  add_tpos_enc_to_obj_ptrs: z.boolean().default(true),
  proj_tpos_enc_in_obj_ptrs: z.boolean().default(true),
  use_signed_tpos_enc_to_obj_ptrs: z.boolean().default(true),
  only_obj_ptrs_in_the_past_for_eval: z.boolean().default(true),
  use_mask_input_as_output_without_sam: z.boolean().default(true),
  binarize_mask_from_pts_for_mem_enc: z.boolean().default(true),
  fill_hole_area: z.number().int().min(0).default(8),
});
/** `constants_<tag>.json`: the official state dict's tensors no graph holds, and the predictors' settings. */
export type Sam2Constants = z.infer<typeof constantsSchema>;

/** A 7-graph SAM 2 directory: the tag, each graph's file, the constants. */
export interface Sam2Files {
  tag: string;
  graphs: Record<Sam2Graph, string>;
  constants: string;
}

/** The 7-graph files of `dir` (undefined when it holds no `image_encoder_*.onnx`); a SegkitError when incomplete. */
export async function findSam2Files(dir: string): Promise<Sam2Files | undefined> {
  const names = await listFiles(dir).catch(() => [] as string[]);
  const encoders = names.filter((n) => /^image_encoder_.+\.onnx$/.test(n));
  if (encoders.length === 0) return undefined;
  if (encoders.length > 1) {
    throw new SegkitError(`${encoders.length} SAM 2 image encoders: ${encoders.join(", ")}`, {
      file: dir,
      hint: "keep one model (one tag) per directory",
    });
  }
  const tag = (encoders[0] as string).slice("image_encoder_".length, -".onnx".length);
  const graphs = {} as Record<Sam2Graph, string>;
  for (const g of SAM2_GRAPHS) {
    const name = `${g}_${tag}.onnx`;
    if (!names.includes(name)) {
      throw new SegkitError(`the SAM 2 graph ${name} is missing (a 7-graph split needs ${SAM2_GRAPHS.join(", ")})`, {
        file: dir,
        hint: "export the directory with scripts/export_sam2_onnx.py",
      });
    }
    graphs[g] = join(dir, name);
  }
  const own = new Set(Object.values(graphs).map((f) => basename(f)));
  const other = names.filter((n) => n.toLowerCase().endsWith(".onnx") && !own.has(n));
  if (other.length) {
    throw new SegkitError(`the directory mixes a SAM 2 7-graph split (${tag}) with other graphs: ${other.join(", ")}`, {
      file: dir,
      hint: "keep one model per directory",
    });
  }
  const constants = join(dir, `constants_${tag}.json`);
  if (!names.includes(basename(constants))) {
    throw new SegkitError(`constants_${tag}.json is missing beside the SAM 2 graphs`, {
      file: dir,
      hint:
        "the 7-graph split leaves learned tensors (no_mem_embed, maskmem_tpos_enc, no_obj_ptr, ...) out of every " +
        "graph; scripts/export_sam2_onnx.py writes them beside the graphs from the official checkpoint",
    });
  }
  return { tag, graphs, constants };
}

/** Reads and checks `constants_<tag>.json` (tensor widths against the dims it states). */
export async function readSam2Constants(file: string): Promise<Sam2Constants> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, "utf8"));
  } catch (err) {
    throw new SegkitError(`not valid JSON (${(err as Error).message})`, { file, cause: err });
  }
  const parsed = constantsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SegkitError(`${issue?.path.join(".") || "the file"}: ${issue?.message}`, {
      file,
      hint: "write it with scripts/export_sam2_onnx.py",
    });
  }
  const k = parsed.data;
  if (k.image_size !== SAM_IMAGE_SIZE) {
    throw new SegkitError(`image_size ${k.image_size}: segkit runs SAM 2 at ${SAM_IMAGE_SIZE} (every official model)`, {
      file,
    });
  }
  const widths: [string, number, number][] = [
    ["no_mem_embed", k.no_mem_embed.length, k.hidden_dim],
    ["no_obj_ptr", k.no_obj_ptr.length, k.hidden_dim],
    ["maskmem_tpos_enc rows", k.maskmem_tpos_enc.length, k.num_maskmem],
    ...k.maskmem_tpos_enc.map((r, i): [string, number, number] => [`maskmem_tpos_enc[${i}]`, r.length, k.mem_dim]),
    ...(k.no_obj_embed_spatial
      ? [["no_obj_embed_spatial", k.no_obj_embed_spatial.length, k.mem_dim] as [string, number, number]]
      : []),
    ...k.mask_downsample_weight.map((r, i): [string, number, number] => [`mask_downsample_weight[${i}]`, r.length, 4]),
  ];
  for (const [name, got, want] of widths) {
    if (got !== want) throw new SegkitError(`${name} has ${got} values, expected ${want}`, { file });
  }
  return k;
}

/** The open graphs of a 7-graph directory (each checked for its inputs) and its constants. */
export interface Sam2Parts {
  files: Sam2Files;
  constants: Sam2Constants;
  sessions: Record<Sam2Graph, OnnxSession>;
  /** Runs one graph; an onnxruntime failure is a SegkitError naming its file. */
  run(
    graph: Sam2Graph,
    feeds: Record<string, OnnxInput>,
    fetch?: readonly string[],
  ): Promise<Record<string, SamTensor>>;
  dispose(): Promise<void>;
}

/** Opens the graphs of `files` (only `only` when given) and checks their inputs. */
export async function openSam2(
  files: Sam2Files,
  options: { threads: number; executionProviders?: readonly ExecutionProvider[] },
  only: readonly Sam2Graph[] = SAM2_GRAPHS,
): Promise<Sam2Parts> {
  const constants = await readSam2Constants(files.constants);
  const sessions = {} as Record<Sam2Graph, OnnxSession>;
  const dispose = async () => {
    for (const s of Object.values(sessions)) await s.dispose();
  };
  try {
    for (const g of only) {
      const file = files.graphs[g];
      const session = await openGraph(file, options);
      sessions[g] = session;
      const want = SAM2_INPUTS[g];
      if (session.inputNames.length !== want.length || want.some((n) => !session.inputNames.includes(n))) {
        throw new SegkitError(`the SAM 2 ${g} graph has inputs ${listNames(session.inputNames)}`, {
          file,
          hint: `expected ${listNames(want)} (scripts/export_sam2_onnx.py's names)`,
        });
      }
    }
  } catch (err) {
    await dispose();
    throw err;
  }
  return {
    files,
    constants,
    sessions,
    async run(graph, feeds, fetch) {
      const session = sessions[graph];
      const file = files.graphs[graph];
      if (!session) throw new SegkitError(`the ${graph} graph is not open`, { file });
      return runGraph(session, file, feeds, fetch);
    },
    dispose,
  };
}

const LOW_AREA = SAM_LOW_RES_SIZE * SAM_LOW_RES_SIZE;
const NO_MASK = new Float32Array(LOW_AREA);

/** `t` with `add[c]` added to every value of channel c (`[1,C,H,W]`). */
export function addPerChannel(t: SamTensor, add: readonly number[]): SamTensor {
  const channels = t.dims[1] as number;
  const plane = t.data.length / channels;
  const data = new Float32Array(t.data.length);
  for (let c = 0; c < channels; c++) {
    const a = Math.fround(add[c] as number);
    for (let i = c * plane; i < (c + 1) * plane; i++) data[i] = (t.data[i] as number) + a;
  }
  return { data, dims: [...t.dims] };
}

/**
 * `SAM2ImagePredictor.set_image` on the encoder graph: the image features with `no_mem_embed` added (the image
 * embedding) and the two high-resolution levels, named as samexporter's decoder takes them.
 */
export async function sam2ImageEmbeddings(parts: Sam2Parts, image: SamTensor): Promise<SamEmbeddings> {
  const out = await parts.run("image_encoder", { input_image: image }, [
    "vision_features",
    "backbone_fpn_0",
    "backbone_fpn_1",
  ]);
  const need = (name: string) => {
    const t = out[name];
    if (!t) throw new SegkitError(`output \`${name}\` missing`, { file: parts.files.graphs.image_encoder });
    return t;
  };
  return {
    image_embed: addPerChannel(need("vision_features"), parts.constants.no_mem_embed),
    high_res_feats_0: need("backbone_fpn_0"),
    high_res_feats_1: need("backbone_fpn_1"),
  };
}

/** What the mask decoder gives for one prompt: all 4 tokens' low-res logits and scores, and the rest. */
export interface Sam2Decoded {
  /** [4] predicted IoU of tokens 0..3. */
  scores: Float32Array;
  /** [4,256,256] low-res logits. */
  lowRes: SamTensor;
  /** [4,C] output tokens (object pointers come from these). */
  tokens: SamTensor;
  objectScoreLogit: number;
}

/**
 * Prompt encoder then mask decoder on one image's features: `points` [n,2] in the S frame with `labels` (1, 0,
 * 2 / 3 box corners; the graph appends the padding point), `maskInput` a 256 x 256 logit plane or none.
 */
export async function sam2Decode(
  parts: Sam2Parts,
  features: { imageEmbed: SamTensor; highRes0: SamTensor; highRes1: SamTensor },
  prompt: { points: Float32Array; labels: ArrayLike<number>; maskInput?: Float32Array | undefined },
): Promise<Sam2Decoded> {
  const n = prompt.labels.length;
  const pe = await parts.run("prompt_encoder", {
    coords: { data: prompt.points, dims: [1, n, 2] },
    labels: { data: Int32Array.from(prompt.labels), dims: [1, n] },
    masks: { data: prompt.maskInput ?? NO_MASK, dims: [1, 1, SAM_LOW_RES_SIZE, SAM_LOW_RES_SIZE] },
    masks_enable: { data: Int32Array.of(prompt.maskInput ? 1 : 0), dims: [1] },
  });
  const file = parts.files.graphs.mask_decoder;
  const need = (t: SamTensor | undefined, name: string) => {
    if (!t) throw new SegkitError(`output \`${name}\` missing`, { file });
    return t;
  };
  const out = await parts.run("mask_decoder", {
    image_embeddings: features.imageEmbed,
    image_pe: need(pe.dense_pe, "dense_pe"),
    sparse_prompt_embeddings: need(pe.sparse_embeddings, "sparse_embeddings"),
    dense_prompt_embeddings: need(pe.dense_embeddings, "dense_embeddings"),
    high_res_features1: features.highRes0,
    high_res_features2: features.highRes1,
  });
  const masks = need(out.masks, "masks");
  const tokens = need(out.sam_tokens_out, "sam_tokens_out");
  return {
    scores: need(out.iou_pred, "iou_pred").data,
    lowRes: { data: masks.data, dims: masks.dims.slice(1) },
    tokens: { data: tokens.data, dims: tokens.dims.slice(1) },
    objectScoreLogit: need(out.object_score_logits, "object_score_logits").data[0] as number,
  };
}
