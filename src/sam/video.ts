/**
 * SAM 2 video object tracking on the 7-graph split, step by step as the official `SAM2VideoPredictor`
 * (facebookresearch/sam2 `sam2_video_predictor.py`, `modeling/sam2_base.py`) with the settings
 * `build_sam2_video_predictor` gives it: prompt an object on a frame (points, a box, a mask), then propagate it
 * through the clip with the streaming memory.
 *
 * What follows the official code exactly:
 * - frames: Pillow's default (bicubic) resize to S x S, / 255, ImageNet mean / std (`load_video_frames`);
 * - a prompt on a frame not yet tracked is a conditioning frame, run without memory (image features +
 *   `no_mem_embed`); on a tracked frame it is a correction, run with the memory and the frame's previous low-res
 *   logits as mask input, and kept as a non-conditioning output (`add_all_frames_to_correct_as_cond` False);
 * - multimask for one click (`multimask_min/max_pt_num` 0..1) and while tracking (best of tokens 1..3 by IoU, the
 *   object pointer from that token); otherwise the single mask by stability, the pointer from token 0;
 * - object-score gating: masks set to -1024 where the object score logit is <= 0, the pointer blended with
 *   `no_obj_ptr`, `no_obj_embed_spatial` added to the memory; each object tracked on its own;
 * - memory: every conditioning frame (t_pos 0) and the `num_maskmem - 1` frames before the current one in the
 *   tracking direction, with `maskmem_tpos_enc`; object pointers of the conditioning frames in the past and of up to
 *   15 frames before, with 1-D sine temporal encodings of their signed distance through `obj_ptr_tpos_proj`;
 * - memory features stored in bfloat16 (`maskmem_features.to(torch.bfloat16)`), masks for the memory encoder
 *   binarised on prompted frames, sigmoid * 20 - 10 elsewhere;
 * - propagation from the earliest conditioning frame (or `startFrame`), forward or in reverse, recomputing every
 *   frame that is not a conditioning frame; masks at frame size by one bilinear resize of the 256 x 256 logits.
 * `fill_hole_area` is not applied: the official code skips it without its CUDA extension, as on CPU. Mask prompts
 * (`add_new_mask`, `_use_mask_as_output`) follow the official code; no reference covers them yet.
 *
 * Memory stays bounded on long clips: frames are read when needed and only the last frame's image features are
 * kept (as the official cache); a tracked frame's memory features and logits (about 1.3 MB for a full-size model)
 * move to a temporary file once the tracking is more than `memoryFrames` frames away, and are read back if a later
 * pass attends to them (a backward pass over frames tracked forward, a correction click): the same values, so the
 * results do not change. Conditioning frames and the object pointers (C floats a frame) stay in memory.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SegkitError } from "../core/errors.js";
import type { Mask, RgbImage } from "../core/image.js";
import { createMask } from "../core/image.js";
import { resizeBilinear, resizeBilinearAntialias } from "../masks/resize.js";
import { DEFAULT_ONNX_SESSION_OPTIONS, type ExecutionProvider } from "../onnx/session.js";
import type { SamTensor } from "./decoder-feeds.js";
import { pillowResize } from "./pillow-resize.js";
import { upscaleMasks } from "./postprocess.js";
import { addPerChannel, findSam2Files, openSam2, type Sam2Constants, type Sam2Parts, sam2Decode } from "./sam2.js";
import { SAM_LOW_RES_SIZE, SAM2_PIXEL_MEAN, SAM2_PIXEL_STD, thresholdMasks } from "./transforms.js";
import { openVideoFrames, type VideoFrames } from "./video-frames.js";

/** `NO_OBJ_SCORE`: the logit of masks where the object is absent. */
export const NO_OBJ_SCORE = -1024;
const LOW = SAM_LOW_RES_SIZE;
const LOW_AREA = LOW * LOW;

/** One prompt on one frame for one object, in frame pixels. */
export interface VideoPrompt {
  frame: number;
  object: number;
  points?: readonly { x: number; y: number; label: 0 | 1 }[];
  box?: readonly [number, number, number, number];
  /** A 0/1 mask at frame size (replaces points on that frame). */
  mask?: Mask;
}

/** An object's result on a frame: its mask at frame size, the object score logit, the logits it came from. */
export interface VideoObjectResult {
  id: number;
  /** The object score logit (> 0: present). */
  score: number;
  mask: Mask;
  /** 256 x 256 low-res logits (after gating). */
  lowRes: Float32Array;
}

export interface VideoFrameResult {
  frame: number;
  objects: VideoObjectResult[];
}

/** One frame's output for one object, as the official `compact_current_out`. */
interface FrameOut {
  /** [H*W, M] bfloat16 values in float32, or null until the memory encoder runs (or while spilled). */
  maskmem: Float32Array | null;
  /** [256 * 256] low-res logits (empty while spilled). */
  predMasks: Float32Array;
  /** The file holding `maskmem` (when it has one) then `predMasks`, while they are out of memory. */
  spilled?: { file: string; maskmem: number };
  /** [C] */
  objPtr: Float32Array;
  objectScore: number;
}

interface ObjectState {
  id: number;
  points: Map<number, { coords: number[]; labels: number[] }>;
  cond: Map<number, FrameOut>;
  nonCond: Map<number, FrameOut>;
  tempCond: Map<number, FrameOut>;
  tempNonCond: Map<number, FrameOut>;
  tracked: Map<number, { reverse: boolean }>;
}

/** One frame's image features: the lowest-resolution level and its position encoding, and the two high levels. */
interface Features {
  vision: SamTensor;
  pos: SamTensor;
  highRes0: SamTensor;
  highRes1: SamTensor;
  /** `vision` and `pos` as [HW, C] rows, made once a frame for the memory attention of every object. */
  visionRows?: Float32Array;
  posRows?: Float32Array;
}

export type { VideoFrames };

/** Tracking on one clip (`trackVideo`). */
export interface VideoTracker {
  readonly frames: VideoFrames;
  /** Object ids in the order they were first prompted. */
  readonly objects: readonly number[];
  /**
   * Adds a prompt (`add_new_points_or_box`, replacing that object's points on that frame; or `add_new_mask`);
   * returns every object's result on that frame.
   */
  addPrompt(prompt: VideoPrompt): Promise<VideoFrameResult>;
  /** Tracks every object frame by frame (`propagate_in_video`). */
  propagate(options?: { reverse?: boolean; startFrame?: number; maxFrames?: number }): AsyncIterable<VideoFrameResult>;
  /** Forgets every prompt and result (`reset_state`). */
  reset(): void;
  dispose(): Promise<void>;
}

/** `f` on each element, one after another. */
async function mapAsync<T, U>(items: readonly T[], f: (item: T, i: number) => Promise<U>): Promise<U[]> {
  const out: U[] = [];
  for (const [i, item] of items.entries()) out.push(await f(item, i));
  return out;
}

/** `bf16(x)`: float32 rounded to bfloat16 (nearest, ties to even), as a float32 again. */
export function roundBfloat16(data: Float32Array): Float32Array {
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i] as number;
    if ((b & 0x7f800000) === 0x7f800000) continue; // inf / nan kept
    bits[i] = ((b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000) >>> 0;
  }
  return data;
}

/** `get_1d_sine_pe(pos / tMax, dim)` of sam2_utils in float32: [n, dim] (sines then cosines). */
export function sinePositions(positions: readonly number[], tMax: number, dim: number): Float32Array {
  const f = Math.fround;
  const half = dim / 2;
  const out = new Float32Array(positions.length * dim);
  positions.forEach((p, r) => {
    const x = f(p / tMax);
    for (let i = 0; i < half; i++) {
      const t = f(10000 ** f((2 * Math.floor(i / 2)) / half));
      const v = f(x / t);
      out[r * dim + i] = Math.sin(v);
      out[r * dim + half + i] = Math.cos(v);
    }
  });
  return out;
}

/** The frame as the official loader gives it: [1,3,S,S] float32, Pillow bicubic to S x S, / 255, mean / std. */
export function videoFrameInput(img: RgbImage, size: number): SamTensor {
  const r = pillowResize(img, size, size, "bicubic");
  const area = size * size;
  const out = new Float32Array(3 * area);
  for (let c = 0; c < 3; c++) {
    const mean = Math.fround(SAM2_PIXEL_MEAN[c] as number);
    const std = Math.fround(SAM2_PIXEL_STD[c] as number);
    for (let p = 0; p < area; p++) {
      out[c * area + p] = Math.fround(Math.fround((r.data[p * 3 + c] as number) / 255) - mean) / std;
    }
  }
  return { data: out, dims: [1, 3, size, size] };
}

/** Tracking on `frames` with open 7-graph SAM 2 parts (left open by `dispose`). */
export function trackVideo(
  parts: Sam2Parts,
  frames: VideoFrames,
  options: { memoryFrames?: number } = {},
): VideoTracker {
  const window = options.memoryFrames ?? 16;
  if (!Number.isInteger(window) || window < 0) throw new SegkitError(`memoryFrames must be >= 0, got ${window}`);
  let spillDir: string | undefined;
  let spills = 0;
  /** Moves an output's large arrays to disk. */
  const spill = async (out: FrameOut) => {
    if (out.spilled) return;
    spillDir ??= await mkdtemp(join(tmpdir(), "segkit-video-"));
    const file = join(spillDir, `${spills++}.f32`);
    const mem = out.maskmem ?? new Float32Array(0);
    const data = new Float32Array(mem.length + out.predMasks.length);
    data.set(mem);
    data.set(out.predMasks, mem.length);
    await writeFile(file, new Uint8Array(data.buffer));
    out.spilled = { file, maskmem: out.maskmem ? mem.length : -1 };
    out.maskmem = null;
    out.predMasks = new Float32Array(0);
  };
  /** An output with its arrays in memory (read back from disk when spilled; the file stays). */
  const loaded = async (out: FrameOut): Promise<{ maskmem: Float32Array | null; predMasks: Float32Array }> => {
    if (!out.spilled) return out;
    const bytes = await readFile(out.spilled.file);
    const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    const n = out.spilled.maskmem;
    return { maskmem: n < 0 ? null : data.slice(0, n), predMasks: data.slice(Math.max(0, n)) };
  };
  /** Spills every object's non-conditioning outputs further than `window` frames from `frame`. */
  const spillAround = async (frame: number) => {
    for (const st of states) {
      for (const [t, out] of st.nonCond) if (Math.abs(t - frame) > window) await spill(out);
    }
  };
  const k: Sam2Constants = parts.constants;
  const S = k.image_size;
  const C = k.hidden_dim;
  const M = k.mem_dim;
  const hw = S / k.backbone_stride;
  const HW = hw * hw;
  const states: ObjectState[] = [];
  let cache: { frame: number; features: Features } | undefined;
  let maskmemPos: Float32Array | undefined; // [M, H*W], the same for every frame and object

  const need = (t: SamTensor | undefined, name: string, graph: keyof Sam2Parts["files"]["graphs"]) => {
    if (!t) throw new SegkitError(`output \`${name}\` missing`, { file: parts.files.graphs[graph] });
    return t;
  };

  const checkFrame = (i: number) => {
    if (!Number.isInteger(i) || i < 0 || i >= frames.count) {
      throw new SegkitError(`frame ${i} does not exist: the clip has frames 0..${frames.count - 1}`);
    }
  };

  /** `_get_image_feature`: the last frame's features are kept (as the official cache). */
  async function features(frame: number): Promise<Features> {
    if (cache?.frame === frame) return cache.features;
    const input = videoFrameInput(await frames.read(frame), S);
    const out = await parts.run("image_encoder", { input_image: input }, [
      "vision_features",
      "vision_pos_enc_2",
      "backbone_fpn_0",
      "backbone_fpn_1",
    ]);
    const f = {
      vision: need(out.vision_features, "vision_features", "image_encoder"),
      pos: need(out.vision_pos_enc_2, "vision_pos_enc_2", "image_encoder"),
      highRes0: need(out.backbone_fpn_0, "backbone_fpn_0", "image_encoder"),
      highRes1: need(out.backbone_fpn_1, "backbone_fpn_1", "image_encoder"),
    };
    cache = { frame, features: f };
    return f;
  }

  /** [C, HW] (NCHW) as [HW, C] rows (the official flatten(2).permute(2, 0, 1)). */
  const toRows = (t: Float32Array, channels: number): Float32Array => {
    const out = new Float32Array(t.length);
    const n = t.length / channels;
    for (let c = 0; c < channels; c++) for (let p = 0; p < n; p++) out[p * channels + c] = t[c * n + p] as number;
    return out;
  };
  const fromRows = (t: Float32Array, channels: number): Float32Array => {
    const out = new Float32Array(t.length);
    const n = t.length / channels;
    for (let c = 0; c < channels; c++) for (let p = 0; p < n; p++) out[c * n + p] = t[p * channels + c] as number;
    return out;
  };

  /** `_prepare_memory_conditioned_features` for one object. */
  async function conditioned(
    st: ObjectState,
    frame: number,
    initCond: boolean,
    f: Features,
    reverse: boolean,
  ): Promise<SamTensor> {
    if (initCond) return addPerChannel(f.vision, k.no_mem_embed); // directly_add_no_mem_embed
    if (st.cond.size === 0) throw new SegkitError(`object ${st.id} has no conditioning frame`);
    // spatial memories: conditioning frames (t_pos 0), then the num_maskmem - 1 frames before
    const mems: { feats: Float32Array; tpos: number }[] = [];
    for (const out of st.cond.values()) mems.push({ feats: out.maskmem as Float32Array, tpos: 0 });
    for (let tPos = 1; tPos < k.num_maskmem; tPos++) {
      const tRel = k.num_maskmem - tPos;
      const prev = reverse ? frame + tRel : frame - tRel; // stride 1
      const out = st.nonCond.get(prev);
      const feats = out && (await loaded(out)).maskmem;
      if (feats) mems.push({ feats, tpos: tPos });
    }
    // object pointers: conditioning frames in the past, then up to max - 1 frames before
    const maxPtrs = Math.min(frames.count, k.max_obj_ptrs_in_encoder);
    const sign = reverse ? -1 : 1;
    const ptrs: { pos: number; ptr: Float32Array }[] = [];
    for (const [t, out] of st.cond) {
      if (k.only_obj_ptrs_in_the_past_for_eval && (reverse ? t < frame : t > frame)) continue;
      ptrs.push({ pos: k.use_signed_tpos_enc_to_obj_ptrs ? (frame - t) * sign : Math.abs(frame - t), ptr: out.objPtr });
    }
    for (let d = 1; d < maxPtrs; d++) {
      const t = reverse ? frame + d : frame - d;
      if (t < 0 || t >= frames.count) break;
      const out = st.nonCond.get(t);
      if (out) ptrs.push({ pos: d, ptr: out.objPtr });
    }
    const n1 = mems.length * HW;
    const memory1 = new Float32Array(n1 * M);
    const pos1 = new Float32Array(n1 * M);
    const posRows = maskmemPos as Float32Array;
    mems.forEach((m, j) => {
      memory1.set(m.feats, j * HW * M);
      const tpos = k.maskmem_tpos_enc[k.num_maskmem - m.tpos - 1] as number[];
      for (let p = 0; p < HW; p++) {
        for (let c = 0; c < M; c++) {
          pos1[(j * HW + p) * M + c] = (posRows[p * M + c] as number) + Math.fround(tpos[c] as number);
        }
      }
    });
    const split = C / M;
    // no pointer (an object first prompted on a later frame, tracked before that frame): the graph takes no empty
    // input, so one pointer's tokens of zeros go in masked out of the attention, which leaves the result unchanged
    const noPtrs = ptrs.length === 0;
    const n2 = Math.max(1, ptrs.length) * split;
    const memory2 = new Float32Array(n2 * M);
    const pos2 = new Float32Array(n2 * M);
    if (ptrs.length) {
      const sine = sinePositions(
        ptrs.map((p) => p.pos),
        maxPtrs - 1,
        C,
      );
      const proj = need(
        (await parts.run("obj_ptr_tpos_proj", { x: { data: sine, dims: [ptrs.length, C] } })).x_out,
        "x_out",
        "obj_ptr_tpos_proj",
      ).data;
      ptrs.forEach((p, j) => {
        for (let s = 0; s < split; s++) {
          memory2.set(p.ptr.subarray(s * M, (s + 1) * M), (j * split + s) * M);
          pos2.set(proj.subarray(j * M, (j + 1) * M), (j * split + s) * M);
        }
      });
    }
    f.visionRows ??= toRows(f.vision.data, C);
    f.posRows ??= toRows(f.pos.data, C);
    const out = await parts.run("memory_attention", {
      curr: { data: f.visionRows, dims: [HW, 1, C] },
      memory_1: { data: memory1, dims: [n1, 1, M] },
      memory_2: { data: memory2, dims: [n2, 1, M] },
      curr_pos: { data: f.posRows, dims: [HW, 1, C] },
      memory_pos_1: { data: pos1, dims: [n1, 1, M] },
      memory_pos_2: { data: pos2, dims: [n2, 1, M] },
      attention_mask_1: { type: "bool", data: new Uint8Array(n1).fill(1), dims: [n1, 1] },
      attention_mask_2: { type: "bool", data: new Uint8Array(n2).fill(noPtrs ? 0 : 1), dims: [n2, 1] },
    });
    const pix = need(out.pix_feat, "pix_feat", "memory_attention");
    return { data: fromRows(pix.data, C), dims: [1, C, hw, hw] };
  }

  /** `_forward_sam_heads` (+ object pointer): the chosen low-res mask, its high-res logits' source, the pointer. */
  async function samHeads(
    pix: SamTensor,
    f: Features,
    points: { coords: number[]; labels: number[] } | undefined,
    maskInput: Float32Array | undefined,
    multimask: boolean,
  ): Promise<{ lowRes: Float32Array; objPtr: Float32Array; objectScore: number }> {
    const coords = points ? Float32Array.from(points.coords) : new Float32Array(2);
    const labels = points ? points.labels : [-1];
    const d = await sam2Decode(
      parts,
      { imageEmbed: pix, highRes0: f.highRes0, highRes1: f.highRes1 },
      {
        points: coords,
        labels,
        maskInput,
      },
    );
    let token = 0;
    let plane = 0;
    if (multimask) {
      plane = 1;
      for (let i = 2; i < 4; i++) if ((d.scores[i] as number) > (d.scores[plane] as number)) plane = i;
      token = plane;
    } else {
      // _dynamic_multimask_via_stability; the pointer comes from token 0 all the same
      let inter = 0;
      let union = 0;
      for (let i = 0; i < LOW_AREA; i++) {
        const v = d.lowRes.data[i] as number;
        if (v > k.dynamic_multimask_stability_delta) inter++;
        if (v > -k.dynamic_multimask_stability_delta) union++;
      }
      if ((union > 0 ? inter / union : 1) < k.dynamic_multimask_stability_thresh) {
        plane = 1;
        for (let i = 2; i < 4; i++) if ((d.scores[i] as number) > (d.scores[plane] as number)) plane = i;
      }
    }
    const appearing = d.objectScoreLogit > 0;
    const lowRes = appearing
      ? d.lowRes.data.slice(plane * LOW_AREA, (plane + 1) * LOW_AREA)
      : new Float32Array(LOW_AREA).fill(NO_OBJ_SCORE);
    const tokenIn = d.tokens.data.slice(token * C, (token + 1) * C);
    const proj = need(
      (await parts.run("mlp", { x: { data: tokenIn, dims: [1, C] } })).x_out,
      "x_out",
      "mlp",
    ).data.slice(0, C);
    // fixed_no_obj_ptr: the pointer of an absent object is no_obj_ptr
    const objPtr = appearing ? proj : Float32Array.from(k.no_obj_ptr, (v) => Math.fround(v));
    return { lowRes, objPtr, objectScore: d.objectScoreLogit };
  }

  /** `_encode_new_memory` on a frame's low-res logits: bfloat16 memory features [HW, M]. */
  async function encodeMemory(f: Features, lowRes: Float32Array, objectScore: number, fromPoints: boolean) {
    const high = resizeBilinear(lowRes, LOW, LOW, 1, S, S, { precision: "float32" });
    const binarize = k.binarize_mask_from_pts_for_mem_enc && fromPoints;
    const scale = k.sigmoid_scale_for_mem_enc;
    const bias = k.sigmoid_bias_for_mem_enc;
    for (let i = 0; i < high.length; i++) {
      const v = high[i] as number;
      const m = binarize ? (v > 0 ? 1 : 0) : Math.fround(1 / (1 + Math.exp(-v)));
      high[i] = Math.fround(Math.fround(m * scale) + bias);
    }
    const out = await parts.run("memory_encoder", {
      pix_feat: f.vision,
      masks: { data: high, dims: [1, 1, S, S] },
    });
    const feats = need(out.vision_features, "vision_features", "memory_encoder").data;
    if (!maskmemPos) maskmemPos = toRows(need(out.vision_pos_enc, "vision_pos_enc", "memory_encoder").data, M);
    if (objectScore <= 0 && k.no_obj_embed_spatial) {
      for (let c = 0; c < M; c++) {
        const add = Math.fround(k.no_obj_embed_spatial[c] as number);
        for (let p = c * HW; p < (c + 1) * HW; p++) feats[p] = (feats[p] as number) + add;
      }
    }
    return roundBfloat16(toRows(feats, M));
  }

  /** `_run_single_frame_inference` for one object. */
  async function runFrame(
    st: ObjectState,
    frame: number,
    initCond: boolean,
    points: { coords: number[]; labels: number[] } | undefined,
    reverse: boolean,
    runMemEncoder: boolean,
    prevLogits?: Float32Array,
  ): Promise<FrameOut> {
    const f = await features(frame);
    const pix = await conditioned(st, frame, initCond, f, reverse);
    const n = points ? points.labels.length : 0;
    // multimask_output_in_sam and multimask_output_for_tracking (every released SAM 2 config): by point count alone
    const multimask = n >= k.multimask_min_pt_num && n <= k.multimask_max_pt_num;
    const maskInput = prevLogits?.map((v) => Math.min(32, Math.max(-32, v)));
    const heads = await samHeads(pix, f, points, maskInput, multimask);
    const maskmem = runMemEncoder ? await encodeMemory(f, heads.lowRes, heads.objectScore, points !== undefined) : null;
    return { maskmem, predMasks: heads.lowRes, objPtr: heads.objPtr, objectScore: heads.objectScore };
  }

  /**
   * `_use_mask_as_output` for a mask prompt (`use_mask_input_as_output_without_sam`): the mask itself as logits
   * (+10 / -10, antialiased down to 256 x 256), the pointer from the SAM heads on the frame's own features with
   * `mask_downsample` of the mask as mask input; present when the mask has a pixel.
   */
  async function maskOutput(frame: number, mask: Float32Array): Promise<FrameOut> {
    const f = await features(frame);
    const high = Float32Array.from(mask, (v) => Math.fround(v * 20 - 10));
    const lowRes = resizeBilinearAntialias(high, S, S, 1, LOW, LOW);
    const w = k.mask_downsample_weight;
    const down = new Float32Array(LOW_AREA);
    const step = S / LOW;
    for (let i = 0; i < LOW; i++) {
      for (let j = 0; j < LOW; j++) {
        let acc = k.mask_downsample_bias;
        for (let a = 0; a < step; a++) {
          for (let b = 0; b < step; b++) acc += (w[a]?.[b] ?? 0) * (mask[(i * step + a) * S + j * step + b] as number);
        }
        down[i * LOW + j] = acc;
      }
    }
    const heads = await samHeads(f.vision, f, undefined, down, false);
    const present = mask.some((v) => v > 0);
    return {
      maskmem: null,
      predMasks: lowRes,
      objPtr: present ? heads.objPtr : Float32Array.from(k.no_obj_ptr, (v) => Math.fround(v)),
      objectScore: present ? 10 : -10,
    };
  }

  /** A frame-size 0/1 mask in the S x S frame, as `add_new_mask` resizes it (antialiased bilinear, >= 0.5). */
  const maskInFrame = (mask: Mask): Float32Array => {
    if (mask.width !== frames.width || mask.height !== frames.height) {
      throw new SegkitError(`a ${mask.width}x${mask.height} mask for ${frames.width}x${frames.height} frames`);
    }
    const unit = Float32Array.from(mask.data, (v) => (v ? 1 : 0));
    if (mask.width === S && mask.height === S) return unit;
    return resizeBilinearAntialias(unit, mask.width, mask.height, 1, S, S).map((v) => (v >= 0.5 ? 1 : 0));
  };

  const result = async (frame: number, outs: (FrameOut | undefined)[]): Promise<VideoFrameResult> => ({
    frame,
    objects: await mapAsync(states, async (st, i) => {
      const out = outs[i];
      const lowRes = out ? (await loaded(out)).predMasks : new Float32Array(LOW_AREA).fill(NO_OBJ_SCORE);
      const size = { height: frames.height, width: frames.width };
      const logits = upscaleMasks(lowRes, "stretch", size).data;
      return {
        id: st.id,
        score: out?.objectScore ?? NO_OBJ_SCORE,
        mask: createMask(frames.width, frames.height, thresholdMasks(logits)),
        lowRes,
      };
    }),
  });

  const stateOf = (id: number): ObjectState => {
    let st = states.find((s) => s.id === id);
    if (!st) {
      st = {
        id,
        points: new Map(),
        cond: new Map(),
        nonCond: new Map(),
        tempCond: new Map(),
        tempNonCond: new Map(),
        tracked: new Map(),
      };
      states.push(st);
    }
    return st;
  };

  /** Per object (`_consolidate_temp_output_across_obj`): its temporary output of that kind, else its stored one. */
  const outputOn = (st: ObjectState, frame: number, cond: boolean) =>
    (cond ? st.tempCond : st.tempNonCond).get(frame) ?? st.cond.get(frame) ?? st.nonCond.get(frame);

  /** `propagate_in_video_preflight`: prompted frames get their memory, temporary outputs join the stored ones. */
  async function preflight(): Promise<void> {
    if (states.length === 0) throw new SegkitError("no prompts: add a point, box or mask for an object first");
    for (const st of states) {
      for (const [temp, stored] of [
        [st.tempNonCond, st.nonCond],
        [st.tempCond, st.cond],
      ] as const) {
        for (const [frame, out] of temp) {
          if (!out.maskmem)
            out.maskmem = await encodeMemory(await features(frame), out.predMasks, out.objectScore, true);
          stored.set(frame, out);
        }
        temp.clear();
      }
      if (st.cond.size === 0) {
        throw new SegkitError(`object ${st.id} has no prompt on any frame: add one before propagating`);
      }
      for (const frame of st.cond.keys()) st.nonCond.delete(frame);
    }
  }

  return {
    frames,
    get objects() {
      return states.map((s) => s.id);
    },

    async addPrompt(prompt) {
      checkFrame(prompt.frame);
      const { frame } = prompt;
      const pts = prompt.points ?? [];
      if (!pts.length && !prompt.box && !prompt.mask) {
        throw new SegkitError(`frame ${frame}, object ${prompt.object}: a prompt needs points, a box or a mask`);
      }
      if (prompt.mask && (pts.length || prompt.box)) {
        throw new SegkitError(`frame ${frame}, object ${prompt.object}: give points / a box, or a mask, not both`);
      }
      const maskS = prompt.mask ? maskInFrame(prompt.mask) : undefined;
      const st = stateOf(prompt.object);
      if (maskS) {
        st.points.delete(frame);
        const initCond = !st.tracked.has(frame);
        (initCond ? st.tempCond : st.tempNonCond).set(frame, await maskOutput(frame, maskS));
        return result(
          frame,
          states.map((s) => outputOn(s, frame, initCond)),
        );
      }
      const coords: number[] = [];
      const labels: number[] = [];
      const f = Math.fround;
      const add = (x: number, y: number, label: number) => {
        if (!Number.isFinite(x) || !Number.isFinite(y)) throw new SegkitError(`point (${x}, ${y}) is not finite`);
        coords.push(f(f(x / frames.width) * S), f(f(y / frames.height) * S));
        labels.push(label);
      };
      if (prompt.box) {
        const [x1, y1, x2, y2] = prompt.box;
        add(x1, y1, 2);
        add(x2, y2, 3);
      }
      for (const p of pts) add(p.x, p.y, p.label);
      const points = { coords, labels };
      st.points.set(frame, points);
      const initCond = !st.tracked.has(frame);
      const reverse = initCond ? false : (st.tracked.get(frame)?.reverse ?? false);
      const temp = initCond ? st.tempCond : st.tempNonCond;
      const prev = temp.get(frame) ?? st.cond.get(frame) ?? st.nonCond.get(frame);
      const prevLogits = prev && (await loaded(prev)).predMasks;
      const out = await runFrame(st, frame, initCond, points, reverse, false, prevLogits);
      temp.set(frame, out);
      return result(
        frame,
        states.map((s) => outputOn(s, frame, initCond)),
      );
    },

    async *propagate(options = {}) {
      await preflight();
      const reverse = options.reverse ?? false;
      const start = options.startFrame ?? Math.min(...states.flatMap((s) => [...s.cond.keys()]));
      checkFrame(start);
      const max = options.maxFrames ?? frames.count;
      const order: number[] = [];
      if (reverse) {
        const end = Math.max(start - max, 0);
        if (start > 0) for (let i = start; i >= end; i--) order.push(i);
      } else {
        const end = Math.min(start + max, frames.count - 1);
        for (let i = start; i <= end; i++) order.push(i);
      }
      for (const frame of order) {
        const outs: FrameOut[] = [];
        for (const st of states) {
          let out = st.cond.get(frame);
          if (!out) {
            out = await runFrame(st, frame, false, undefined, reverse, true);
            st.nonCond.set(frame, out);
          }
          st.tracked.set(frame, { reverse });
          outs.push(out);
        }
        yield await result(frame, outs);
        await spillAround(frame);
      }
    },

    reset() {
      states.length = 0;
    },

    async dispose() {
      states.length = 0;
      cache = undefined;
      if (spillDir) await rm(spillDir, { recursive: true, force: true });
      spillDir = undefined;
    },
  };
}

/** `SAM2VideoPredictor`'s interface: a model, a clip at a time. */
export interface SamVideoPredictor {
  /**
   * Opens a clip (a directory of JPEG / PNG frames in name order, a video file through a system ffmpeg, or frames
   * given) and forgets the previous clip's prompts (`init_state`).
   */
  init(frames: string | VideoFrames): Promise<VideoFrames>;
  addPrompt(prompt: VideoPrompt): Promise<VideoFrameResult>;
  propagate(options?: { reverse?: boolean; startFrame?: number; maxFrames?: number }): AsyncIterable<VideoFrameResult>;
  reset(): void;
  dispose(): Promise<void>;
}

/**
 * A video predictor on the 7-graph SAM 2 directory `dir` (scripts/export_sam2_onnx.py's layout). A directory without
 * those graphs, or with a graph or `constants_<tag>.json` missing, is a SegkitError naming it.
 */
export async function createVideoPredictor(
  dir: string,
  options: {
    threads?: number;
    executionProviders?: readonly ExecutionProvider[];
    /** Frames around the tracking whose memory stays in RAM (`trackVideo`; default 16). */
    memoryFrames?: number;
  } = {},
): Promise<SamVideoPredictor> {
  const files = await findSam2Files(dir);
  if (!files) {
    throw new SegkitError("no SAM 2 7-graph split here (image_encoder_<tag>.onnx and six more graphs)", {
      file: dir,
      hint: "video tracking runs the graphs scripts/export_sam2_onnx.py writes; a 2-graph export is for images only",
    });
  }
  const { memoryFrames, ...sessionOptions } = options;
  const parts = await openSam2(files, {
    ...sessionOptions,
    threads: options.threads ?? DEFAULT_ONNX_SESSION_OPTIONS.threads,
  });
  let tracker: VideoTracker | undefined;
  let close: (() => Promise<void>) | undefined;
  const current = () => {
    if (!tracker) throw new SegkitError("no clip: call init(frames) first");
    return tracker;
  };
  const closeClip = async () => {
    await tracker?.dispose();
    await close?.();
    tracker = undefined;
    close = undefined;
  };
  return {
    async init(frames) {
      await closeClip();
      const opened = typeof frames === "string" ? await openVideoFrames(frames) : undefined;
      close = opened?.close;
      tracker = trackVideo(
        parts,
        opened ?? (frames as VideoFrames),
        memoryFrames === undefined ? {} : { memoryFrames },
      );
      return tracker.frames;
    },
    addPrompt: async (prompt) => current().addPrompt(prompt),
    propagate: (o) => current().propagate(o),
    reset: () => current().reset(),
    async dispose() {
      await closeClip();
      await parts.dispose();
    },
  };
}
