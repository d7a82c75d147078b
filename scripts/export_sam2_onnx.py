#!/usr/bin/env python3
"""Export an official SAM 2 / SAM 2.1 checkpoint to the 7-graph ONNX split segkit runs (image and video).

Usage (once, with PyTorch, onnx and onnxruntime installed, and a copy of facebookresearch/sam2):
    python scripts/export_sam2_onnx.py --sam2 /path/to/sam2-repo --checkpoint sam2.1_hiera_tiny.pt \
        --config sam2.1_hiera_t --out models/sam2.1-hiera-tiny [--tag hiera_t_2.1] [--no-check]

--sam2 is the repository root (the directory that holds the `sam2` package). --config is one of
sam2.1_hiera_{t,s,b+,l} or sam2_hiera_{t,s,b+,l} (a path such as configs/sam2.1/sam2.1_hiera_t.yaml is accepted too);
the model is built from Python constructors with the values of those configs and loaded strictly (a mismatching
config fails on load). --tag defaults to hiera_<size>[_2.1]. The directory gets:

  image_encoder_<tag>.onnx     input_image [1,3,S,S] -> vision_features [1,C,S/16,S/16], vision_pos_enc_0/1/2
                               [1,C,S/4..S/16], backbone_fpn_0 [1,C/8,S/4,S/4] (conv_s0 applied), backbone_fpn_1
                               [1,C/4,S/8,S/8] (conv_s1 applied), backbone_fpn_2 [1,C,S/16,S/16]
  prompt_encoder_<tag>.onnx    coords [1,n,2] float32 (S x S frame, no +0.5), labels [1,n] int32, masks [1,1,S/4,S/4]
                               float32 (rank 4; the legacy ailia file traced a rank-3 dummy), masks_enable [1] int32
                               -> sparse_embeddings [1,n+1,C] (padding point appended), dense_embeddings [1,C,S/16,S/16],
                               dense_pe [1,C,S/16,S/16]
  mask_decoder_<tag>.onnx      image_embeddings, image_pe, sparse_prompt_embeddings [1,n,C], dense_prompt_embeddings,
                               high_res_features1, high_res_features2 -> masks [1,4,S/4,S/4], iou_pred [1,4],
                               sam_tokens_out [1,4,C], object_score_logits [1,1] (all 4 tokens; selection is the caller's)
  memory_attention_<tag>.onnx  curr [HW,1,C], memory_1 [n1,1,M] (spatial memories, RoPE), memory_2 [n2,1,M] (object
                               pointer tokens, no RoPE), curr_pos [HW,1,C], memory_pos_1 [n1,1,M], memory_pos_2
                               [n2,1,M], attention_mask_1 [n1,1] bool, attention_mask_2 [n2,1] bool (true = attend)
                               -> pix_feat [HW,1,C]
  memory_encoder_<tag>.onnx    pix_feat [1,C,H,W], masks [1,1,S,S] (already sigmoid*scale+bias, skip_mask_sigmoid)
                               -> vision_features [1,M,H,W], vision_pos_enc [1,M,H,W]
  mlp_<tag>.onnx               x [n,C] -> x_out [n,C]          (obj_ptr_proj)
  obj_ptr_tpos_proj_<tag>.onnx x [n,C] -> x_out [n,M]          (identity for SAM 2.0 configs: x_out [n,C])
  constants_<tag>.json         learned tensors no graph holds, and the scalars the predictors use

RoPE is computed with real cos/sin arithmetic (ONNX has no complex type). Memory attention takes the queries in blocks
of QUERY_BLOCK (512) rows, so that onnxruntime holds one block's scores at a time rather than the whole
[HW, n x HW] matrix (Hiera-T with 7 memories: 0.8 GB peak instead of 4.5 GB, and twice as fast). Every graph is checked in onnxruntime
against the PyTorch module it came from on random inputs (max abs diff printed) unless --no-check.

Without hydra-core / iopath / a working torchvision (the official package imports them), stand-ins are put into
sys.modules before `sam2` is imported: hydra's initialize_config_module is a no-op (configs are not read), iopath's
g_pathmgr is `open`, tqdm is the identity, and torchvision.transforms gets ToTensor / Resize (bilinear, antialias,
as torchvision does on tensors) / Normalize. On torch 1.x (Debian's 1.13) F.scaled_dot_product_attention is a plain
softmax(q k^T / sqrt(d)) v; use --no-check there when onnxruntime is not installed.
"""

import argparse
import json
import math
import os
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------------------------
# Loading the official package


def _stub(name, **attrs):
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


def _shim_missing_modules():
    """Stand-ins for the official package's config/IO helpers when they are not installed."""
    try:
        import hydra  # noqa: F401
    except ImportError:

        class GlobalHydra:
            @staticmethod
            def instance():
                return types.SimpleNamespace(is_initialized=lambda: True)

        def unavailable(*_a, **_k):
            raise RuntimeError("hydra is not installed: models are built from Python constructors here")

        _stub("hydra", initialize_config_module=lambda *a, **k: None, compose=unavailable)
        _stub("hydra.core")
        _stub("hydra.core.global_hydra", GlobalHydra=GlobalHydra)
        _stub("hydra.utils", instantiate=unavailable)
    try:
        import omegaconf  # noqa: F401
    except ImportError:
        _stub("omegaconf", OmegaConf=None)
    try:
        import iopath.common.file_io  # noqa: F401
    except ImportError:
        _stub("iopath")
        _stub("iopath.common")
        _stub("iopath.common.file_io", g_pathmgr=types.SimpleNamespace(open=open))
    try:
        import tqdm  # noqa: F401
    except ImportError:
        _stub("tqdm", tqdm=lambda it=None, *a, **k: it)
    try:
        import torchvision.transforms  # noqa: F401
    except Exception:  # missing, or built for another torch ("operator torchvision::nms does not exist")
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        _stub("torchvision")
        _stub("torchvision.transforms", ToTensor=_ToTensor, Resize=_Resize, Normalize=_Normalize)


class _ToTensor:
    """torchvision.transforms.ToTensor for HWC uint8 numpy arrays and PIL images: CHW float32 in [0, 1]."""

    def __call__(self, pic):
        arr = np.array(pic, copy=True)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        t = torch.from_numpy(arr).permute(2, 0, 1).contiguous()
        return t.float().div(255) if t.dtype == torch.uint8 else t.float()


class _Resize(torch.nn.Module):
    """torchvision.transforms.Resize((h, w)) on a CHW float tensor: bilinear, antialias=True (its default)."""

    def __init__(self, size: tuple[int, int]):
        super().__init__()
        self.size = [int(size[0]), int(size[1])]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(x.unsqueeze(0), size=self.size, mode="bilinear", align_corners=False, antialias=True)
        return y.squeeze(0)


class _Normalize(torch.nn.Module):
    def __init__(self, mean: list[float], std: list[float]):
        super().__init__()
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """A plain scaled dot-product attention for torch < 2.0 (eval only: no dropout, no causal mask)."""
    assert dropout_p == 0.0 and not is_causal, "the stand-in attention is for inference"
    s = (q @ k.transpose(-2, -1)) * (scale if scale is not None else q.shape[-1] ** -0.5)
    if attn_mask is not None:
        s = s.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else s + attn_mask
    return torch.softmax(s, dim=-1) @ v


def import_sam2(sam2_dir):
    """Make the official `sam2` package importable from the repository root `sam2_dir`."""
    if not os.path.isfile(os.path.join(sam2_dir, "sam2", "modeling", "sam2_base.py")):
        sys.exit(f"--sam2 {sam2_dir}: no sam2/modeling/sam2_base.py there (give the facebookresearch/sam2 root)")
    _shim_missing_modules()
    if not hasattr(F, "scaled_dot_product_attention"):  # torch 1.x (e.g. Debian's 1.13)
        F.scaled_dot_product_attention = _sdpa
        # Hiera's window position embedding uses Tensor.tile, which torch 1.x cannot export; repeat is the same
        # when every dimension is given
        torch.Tensor.tile = lambda self, dims: self.repeat(*dims) if len(dims) == self.dim() else NotImplemented
    sys.path.insert(0, os.path.abspath(sam2_dir))
    import sam2.modeling.sam2_base  # noqa: F401


# ---------------------------------------------------------------------------------------------------------------
# Building models from constructors (the values of the official configs)

HIERA = {  # trunk arguments and the neck's backbone_channel_list, per size
    "t": dict(embed_dim=96, num_heads=1, stages=[1, 2, 7, 2], global_att_blocks=[5, 7, 9],
              window_pos_embed_bkg_spatial_size=[7, 7]),
    "s": dict(embed_dim=96, num_heads=1, stages=[1, 2, 11, 2], global_att_blocks=[7, 10, 13],
              window_pos_embed_bkg_spatial_size=[7, 7]),
    "b+": dict(embed_dim=112, num_heads=2),
    "l": dict(embed_dim=144, num_heads=2, stages=[2, 6, 36, 4], global_att_blocks=[23, 33, 43],
              window_pos_embed_bkg_spatial_size=[7, 7], window_spec=[8, 4, 16, 8]),
}

# The tiny test model (scripts/fixtures/make_sam2.py): same classes, small widths.
TINY = dict(
    trunk_args=dict(embed_dim=8, num_heads=1, stages=[1, 2, 2, 1], global_att_blocks=[4],
               window_pos_embed_bkg_spatial_size=[7, 7]),
    hidden_dim=32, mem_dim=8, mem_attn_layers=2, mem_attn_ffn=64, fuser_layers=1,
    # widths _build_sam_heads fixes (TwoWayTransformer mlp_dim 2048, iou head 256) and the mask downsampler's
    # stride (4 instead of 2: fewer, narrower convs), reduced to keep the committed graphs small
    sam_heads=dict(mlp_dim=64, iou_head_hidden_dim=32), mask_downsampler=dict(kernel_size=4, stride=4, padding=0),
)


def parse_config(name):
    """'sam2.1_hiera_t' (or a path ending in it, with or without .yaml) -> (version '2.1' | '2', size)."""
    base = os.path.basename(name).removesuffix(".yaml")
    for version in ("2.1", "2"):
        prefix = f"sam{version}_hiera_"
        if base.startswith(prefix) and base[len(prefix):] in HIERA:
            return version, base[len(prefix):]
    sys.exit(f"--config {name}: expected one of " + ", ".join(
        f"sam{v}_hiera_{s}" for v in ("2.1", "2") for s in HIERA))


def build_model(version, trunk_args, hidden_dim=256, mem_dim=64, image_size=1024, mem_attn_layers=4,
                mem_attn_ffn=2048, fuser_layers=2, sam_heads=None, mask_downsampler=None, video=False):
    """SAM2Base (or SAM2VideoPredictor when video) with the arguments of the official configs and the overrides
    build_sam2 / build_sam2_video_predictor apply (apply_postprocessing=True). sam_heads (mlp_dim,
    iou_head_hidden_dim) and mask_downsampler (kernel_size, stride, padding) override the official widths."""
    import sam2.modeling.sam2_base as base
    from sam2.modeling.backbones.hieradet import Hiera
    from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
    from sam2.modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
    from sam2.modeling.memory_encoder import CXBlock, Fuser, MaskDownSampler, MemoryEncoder
    from sam2.modeling.position_encoding import PositionEmbeddingSine
    from sam2.modeling.sam.transformer import RoPEAttention

    trunk = Hiera(**trunk_args)
    e = trunk_args["embed_dim"]
    feat = image_size // 16

    def sine(n):
        return PositionEmbeddingSine(num_pos_feats=n, normalize=True, scale=None, temperature=10000,
                                     image_size=image_size)

    neck = FpnNeck(position_encoding=sine(hidden_dim), d_model=hidden_dim,
                   backbone_channel_list=[8 * e, 4 * e, 2 * e, e], fpn_top_down_levels=[2, 3],
                   fpn_interp_model="nearest")
    image_encoder = ImageEncoder(trunk=trunk, neck=neck, scalp=1)

    def rope(**kw):
        return RoPEAttention(rope_theta=10000.0, feat_sizes=[feat, feat], embedding_dim=hidden_dim, num_heads=1,
                             downsample_rate=1, dropout=0.1, **kw)

    layer = MemoryAttentionLayer(activation="relu", dim_feedforward=mem_attn_ffn, dropout=0.1,
                                 pos_enc_at_attn=False, self_attention=rope(), d_model=hidden_dim,
                                 pos_enc_at_cross_attn_keys=True, pos_enc_at_cross_attn_queries=False,
                                 cross_attention=rope(rope_k_repeat=True, kv_in_dim=mem_dim))
    memory_attention = MemoryAttention(d_model=hidden_dim, pos_enc_at_input=True, layer=layer,
                                       num_layers=mem_attn_layers)
    memory_encoder = MemoryEncoder(
        out_dim=mem_dim, in_dim=hidden_dim, position_encoding=sine(mem_dim),
        mask_downsampler=MaskDownSampler(embed_dim=hidden_dim,
                                         **(mask_downsampler or dict(kernel_size=3, stride=2, padding=1))),
        fuser=Fuser(CXBlock(dim=hidden_dim, kernel_size=7, padding=3, layer_scale_init_value=1e-6,
                            use_dwconv=True), num_layers=fuser_layers))
    v21 = version == "2.1"
    kwargs = dict(
        image_encoder=image_encoder, memory_attention=memory_attention, memory_encoder=memory_encoder,
        num_maskmem=7, image_size=image_size, sigmoid_scale_for_mem_enc=20.0, sigmoid_bias_for_mem_enc=-10.0,
        use_mask_input_as_output_without_sam=True, directly_add_no_mem_embed=True, no_obj_embed_spatial=v21,
        use_high_res_features_in_sam=True, multimask_output_in_sam=True, iou_prediction_use_sigmoid=True,
        use_obj_ptrs_in_encoder=True, add_tpos_enc_to_obj_ptrs=v21, proj_tpos_enc_in_obj_ptrs=v21,
        use_signed_tpos_enc_to_obj_ptrs=v21, only_obj_ptrs_in_the_past_for_eval=True, pred_obj_scores=True,
        pred_obj_scores_mlp=True, fixed_no_obj_ptr=True, multimask_output_for_tracking=True,
        use_multimask_token_for_obj_ptr=True, multimask_min_pt_num=0, multimask_max_pt_num=1,
        use_mlp_for_obj_ptr_proj=True, compile_image_encoder=False,
        sam_mask_decoder_extra_args=dict(dynamic_multimask_via_stability=True,
                                         dynamic_multimask_stability_delta=0.05,
                                         dynamic_multimask_stability_thresh=0.98),
    )
    from sam2.sam2_video_predictor import SAM2VideoPredictor

    two_way, mask_decoder = base.TwoWayTransformer, base.MaskDecoder
    if sam_heads:  # _build_sam_heads passes these as literals: override them while it runs
        base.TwoWayTransformer = lambda **kw: two_way(**{**kw, "mlp_dim": sam_heads["mlp_dim"]})
        base.MaskDecoder = lambda **kw: mask_decoder(**{**kw, "iou_head_hidden_dim": sam_heads["iou_head_hidden_dim"]})
    try:
        if video:
            model = SAM2VideoPredictor(binarize_mask_from_pts_for_mem_enc=True, fill_hole_area=8, **kwargs)
        else:
            model = base.SAM2Base(**kwargs)
    finally:
        base.TwoWayTransformer, base.MaskDecoder = two_way, mask_decoder
    return model.eval()


def build_from_checkpoint(config, checkpoint, video=False):
    version, size = parse_config(config)
    trunk = HIERA[size]
    e = trunk["embed_dim"]
    model = build_model(version, trunk, video=video)
    assert model.image_encoder.neck.backbone_channel_list == [8 * e, 4 * e, 2 * e, e]
    sd = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    model.load_state_dict(sd, strict=True)
    return model, version, size


# ---------------------------------------------------------------------------------------------------------------
# The 7 graphs


class ImageEncoderGraph(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_image):
        out = self.model.forward_image(input_image)  # applies conv_s0 / conv_s1 to levels 0 / 1
        pos, fpn = out["vision_pos_enc"], out["backbone_fpn"]
        return out["vision_features"], pos[0], pos[1], pos[2], fpn[0], fpn[1], fpn[2]


class PromptEncoderGraph(torch.nn.Module):
    """Points (boxes as label 2/3 corner points, as the predictors pass them) and a rank-4 mask input."""

    def __init__(self, model):
        super().__init__()
        self.pe = model.sam_prompt_encoder

    def forward(self, coords, labels, masks, masks_enable):
        sparse = self.pe._embed_points(coords, labels, pad=True)  # the predictors always pad (boxes come as points)
        h, w = self.pe.image_embedding_size
        no_mask = self.pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(coords.shape[0], -1, h, w)
        dense = torch.where(masks_enable[0] == 1, self.pe._embed_masks(masks), no_mask)
        return sparse, dense, self.pe.get_dense_pe()


class MaskDecoderGraph(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.decoder = model.sam_mask_decoder

    def forward(self, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
                high_res_features1, high_res_features2):
        return self.decoder.predict_masks(
            image_embeddings=image_embeddings, image_pe=image_pe,
            sparse_prompt_embeddings=sparse_prompt_embeddings, dense_prompt_embeddings=dense_prompt_embeddings,
            repeat_image=False, high_res_features=[high_res_features1, high_res_features2])


def _rope_tables(attn):
    """cos/sin [L, D/2] of the official complex freqs_cis (compute_axial_cis) of a RoPEAttention."""
    f = attn.freqs_cis
    return f.real.float().contiguous(), f.imag.float().contiguous()


def _rotate(x, cos, sin):
    """x [B,H,N,D] with N a multiple of L = cos.shape[0] (keys repeat the query table, rope_k_repeat)."""
    b, h, n, d = x.shape
    x = x.reshape(b, h, -1, cos.shape[0], d // 2, 2)
    a, c = x[..., 0], x[..., 1]
    return torch.stack([a * cos - c * sin, a * sin + c * cos], dim=-1).reshape(b, h, n, d)


QUERY_BLOCK = 512


class MemoryAttentionGraph(torch.nn.Module):
    """The official MemoryAttention.forward, with RoPE in real arithmetic, memories split into the RoPE part
    (memory_1) and the object pointer tokens (memory_2, num_k_exclude_rope), and boolean key masks."""

    def __init__(self, model):
        super().__init__()
        self.ma = model.memory_attention
        assert self.ma.batch_first and self.ma.pos_enc_at_input
        cos, sin = _rope_tables(self.ma.layers[0].self_attn)
        for layer in self.ma.layers:  # every attention has the same table: store it once in the graph
            for attn in (layer.self_attn, layer.cross_attn_image):
                c, s = _rope_tables(attn)
                assert torch.equal(c, cos) and torch.equal(s, sin)
        self.register_buffer("rope_cos", cos)
        self.register_buffer("rope_sin", sin)

    def _attn(self, attn, q, k_rope, k_plain, v, mask=None):
        q = attn._separate_heads(attn.q_proj(q), attn.num_heads)
        k1 = attn._separate_heads(attn.k_proj(k_rope), attn.num_heads)
        v = attn._separate_heads(attn.v_proj(v), attn.num_heads)
        q = _rotate(q, self.rope_cos, self.rope_sin)
        k = _rotate(k1, self.rope_cos, self.rope_sin)
        if k_plain is not None:
            k = torch.cat([k, attn._separate_heads(attn.k_proj(k_plain), attn.num_heads)], dim=2)
        # Queries in blocks of QUERY_BLOCK rows: each block's scores [B,H,QUERY_BLOCK,nk] are freed before the next,
        # so onnxruntime never holds the whole [HW, nk] matrix (on a full-size Hiera-T with 7 memories, the
        # unblocked graph peaks at 4.5 GB in onnxruntime, the blocked one at 0.8 GB, and runs twice as fast)
        bias = None if mask is None else torch.zeros(mask.shape, dtype=q.dtype).masked_fill(~mask, float("-inf"))
        kt, scale = k.transpose(-2, -1), q.shape[-1] ** -0.5
        outs = []
        for qb in torch.split(q, QUERY_BLOCK, dim=2):
            s = (qb * scale) @ kt
            outs.append(torch.softmax(s if bias is None else s + bias, dim=-1) @ v)
        return attn.out_proj(attn._recombine_heads(torch.cat(outs, dim=2)))

    def forward(self, curr, memory_1, memory_2, curr_pos, memory_pos_1, memory_pos_2, attention_mask_1,
                attention_mask_2):
        output = (curr + 0.1 * curr_pos).transpose(0, 1)
        curr_pos = curr_pos.transpose(0, 1)
        m1, m2 = memory_1.transpose(0, 1), memory_2.transpose(0, 1)
        p1, p2 = memory_pos_1.transpose(0, 1), memory_pos_2.transpose(0, 1)
        memory = torch.cat([m1, m2], dim=1)
        key_mask = torch.cat([attention_mask_1, attention_mask_2], dim=0).transpose(0, 1)[:, None, None, :]
        for layer in self.ma.layers:
            assert not layer.pos_enc_at_attn and layer.pos_enc_at_cross_attn_keys
            assert not layer.pos_enc_at_cross_attn_queries
            t = layer.norm1(output)
            output = output + self._attn(layer.self_attn, t, t, None, t)
            t = layer.norm2(output)
            output = output + self._attn(layer.cross_attn_image, t, m1 + p1, m2 + p2, memory, key_mask)
            t = layer.norm3(output)
            output = output + layer.linear2(layer.activation(layer.linear1(t)))
        # a constant shape (batch 1): the graph declares pix_feat [HW,1,C] rather than a symbolic batch
        return self.ma.norm(output).transpose(0, 1).reshape(self.rope_cos.shape[0], 1, curr.shape[-1])


class MemoryEncoderGraph(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.me = model.memory_encoder

    def forward(self, pix_feat, masks):
        out = self.me(pix_feat, masks, skip_mask_sigmoid=True)
        return out["vision_features"], out["vision_pos_enc"][0]


def graph_specs(model):
    """name -> (module, example inputs, input names, output names, dynamic axes)."""
    s = model.image_size
    c, m, hw = model.hidden_dim, model.mem_dim, model.sam_image_embedding_size
    r = torch.randn
    n = 3
    feats = dict(image_embeddings=r(1, c, hw, hw), image_pe=r(1, c, hw, hw),
                 high_res_features1=r(1, c // 8, 4 * hw, 4 * hw), high_res_features2=r(1, c // 4, 2 * hw, 2 * hw))
    n1, n2 = 2 * hw * hw, 2 * (c // m)
    return {
        "image_encoder": (ImageEncoderGraph(model), (r(1, 3, s, s),), ["input_image"],
                          ["vision_features", "vision_pos_enc_0", "vision_pos_enc_1", "vision_pos_enc_2",
                           "backbone_fpn_0", "backbone_fpn_1", "backbone_fpn_2"], None),
        "prompt_encoder": (PromptEncoderGraph(model),
                           (torch.rand(1, n, 2) * s, torch.tensor([[1, 0, 2]], dtype=torch.int32),
                            r(1, 1, 4 * hw, 4 * hw), torch.tensor([1], dtype=torch.int32)),
                           ["coords", "labels", "masks", "masks_enable"],
                           ["sparse_embeddings", "dense_embeddings", "dense_pe"],
                           {"coords": {1: "n"}, "labels": {1: "n"}, "sparse_embeddings": {1: "n_plus_1"}}),
        "mask_decoder": (MaskDecoderGraph(model),
                         (feats["image_embeddings"], feats["image_pe"], r(1, n + 1, c), r(1, c, hw, hw),
                          feats["high_res_features1"], feats["high_res_features2"]),
                         ["image_embeddings", "image_pe", "sparse_prompt_embeddings", "dense_prompt_embeddings",
                          "high_res_features1", "high_res_features2"],
                         ["masks", "iou_pred", "sam_tokens_out", "object_score_logits"],
                         {"sparse_prompt_embeddings": {1: "n"}}),
        "memory_attention": (MemoryAttentionGraph(model),
                             (r(hw * hw, 1, c), r(n1, 1, m), r(n2, 1, m), r(hw * hw, 1, c), r(n1, 1, m),
                              r(n2, 1, m), torch.ones(n1, 1, dtype=torch.bool), torch.ones(n2, 1, dtype=torch.bool)),
                             ["curr", "memory_1", "memory_2", "curr_pos", "memory_pos_1", "memory_pos_2",
                              "attention_mask_1", "attention_mask_2"], ["pix_feat"],
                             {"memory_1": {0: "n_1"}, "memory_2": {0: "n_2"}, "memory_pos_1": {0: "n_1"},
                              "memory_pos_2": {0: "n_2"}, "attention_mask_1": {0: "n_1"},
                              "attention_mask_2": {0: "n_2"}}),
        "memory_encoder": (MemoryEncoderGraph(model), (r(1, c, hw, hw), r(1, 1, s, s)), ["pix_feat", "masks"],
                           ["vision_features", "vision_pos_enc"], None),
        "mlp": (model.obj_ptr_proj, (r(2, c),), ["x"], ["x_out"], {"x": {0: "n"}, "x_out": {0: "n"}}),
        "obj_ptr_tpos_proj": (model.obj_ptr_tpos_proj, (r(2, c),), ["x"], ["x_out"],
                              {"x": {0: "n"}, "x_out": {0: "n"}}),
    }


def export_onnx(module, inputs, path, input_names, output_names, dynamic_axes=None):
    # eval first: the exporter restores the module's own training flag on the whole tree afterwards
    module.eval()
    with torch.no_grad():
        # torch >= 2.9 defaults to the dynamo exporter; these graphs are traced (torch 1.x has no such argument)
        legacy = {"dynamo": False} if int(torch.__version__.split(".")[0]) >= 2 else {}
        torch.onnx.export(module, inputs, path, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=17, do_constant_folding=True, **legacy)


def _flat(x):
    if isinstance(x, (tuple, list)):
        return [t for y in x for t in _flat(y)]
    return [x]


def check_graph(module, path, inputs_list, input_names):
    """Max abs diff between onnxruntime and the PyTorch module over several input sets."""
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    worst = 0.0
    for inputs in inputs_list:
        with torch.no_grad():
            ref = _flat(module(*inputs))
        got = sess.run(None, {k: v.numpy() for k, v in zip(input_names, inputs)})
        for a, b in zip(ref, got):
            assert tuple(a.shape) == b.shape, (path, tuple(a.shape), b.shape)
            worst = max(worst, float(np.abs(a.float().numpy() - b).max()) if b.size else 0.0)
    return worst


def official_memory_attention(model):
    """The unmodified official module with the graph's signature (the reference for the check)."""

    def run(curr, memory_1, memory_2, curr_pos, memory_pos_1, memory_pos_2, mask_1, mask_2):
        assert bool(mask_1.all()) and bool(mask_2.all())
        return model.memory_attention(curr=curr, memory=torch.cat([memory_1, memory_2]), curr_pos=curr_pos,
                                      memory_pos=torch.cat([memory_pos_1, memory_pos_2]),
                                      num_obj_ptr_tokens=memory_2.shape[0])

    return run


def check_inputs(model, name, example):
    """The example inputs plus variants with other dynamic sizes."""
    c, m, hw = model.hidden_dim, model.mem_dim, model.sam_image_embedding_size
    r = torch.randn
    out = [example]
    if name == "prompt_encoder":
        out.append((torch.rand(1, 1, 2) * model.image_size, torch.tensor([[0]], dtype=torch.int32),
                    r(1, 1, 4 * hw, 4 * hw), torch.tensor([0], dtype=torch.int32)))
        out.append((torch.rand(1, 5, 2) * model.image_size, torch.tensor([[2, 3, 1, 0, -1]], dtype=torch.int32),
                    r(1, 1, 4 * hw, 4 * hw) * 5, torch.tensor([1], dtype=torch.int32)))
    elif name == "mask_decoder":
        out.append(tuple(r(1, 2, c) if i == 2 else t for i, t in enumerate(example)))
    elif name == "memory_attention":
        k = c // m
        for frames, ptrs in ((1, 1), (7, 16)):
            n1, n2 = frames * hw * hw, ptrs * k
            out.append((r(hw * hw, 1, c), r(n1, 1, m), r(n2, 1, m), r(hw * hw, 1, c), r(n1, 1, m), r(n2, 1, m),
                        torch.ones(n1, 1, dtype=torch.bool), torch.ones(n2, 1, dtype=torch.bool)))
    elif name in ("mlp", "obj_ptr_tpos_proj"):
        out.append((r(16, c),))
    return out


def export_ailia(model, out_dir, tag, check=True, log=print):
    """Write the 7 graphs and constants_<tag>.json into out_dir; returns {graph: max abs diff} when check."""
    os.makedirs(out_dir, exist_ok=True)
    diffs = {}
    for name, (module, example, in_names, out_names, dyn) in graph_specs(model).items():
        path = os.path.join(out_dir, f"{name}_{tag}.onnx")
        export_onnx(module, example, path, in_names, out_names, dyn)
        if check:
            ref = official_memory_attention(model) if name == "memory_attention" else module
            diffs[name] = check_graph(ref, path, check_inputs(model, name, example), in_names)
            log(f"{os.path.basename(path)}: onnxruntime vs PyTorch max abs diff {diffs[name]:.3g}")
    write_constants(model, os.path.join(out_dir, f"constants_{tag}.json"))
    return diffs


def _values(t):
    return None if t is None else t.detach().float().numpy().tolist()


def write_constants(model, path):
    d = model.sam_mask_decoder
    consts = {
        "no_mem_embed": _values(model.no_mem_embed.reshape(-1)),  # [C]
        "no_mem_pos_enc": _values(model.no_mem_pos_enc.reshape(-1)),  # [C] (unused: directly_add_no_mem_embed)
        "maskmem_tpos_enc": _values(model.maskmem_tpos_enc.reshape(model.num_maskmem, -1)),  # [num_maskmem][M]
        "no_obj_ptr": _values(model.no_obj_ptr.reshape(-1)),  # [C]
        "no_obj_embed_spatial": _values(None if model.no_obj_embed_spatial is None
                                        else model.no_obj_embed_spatial.reshape(-1)),  # [M] or null (SAM 2.0)
        "mask_downsample_weight": _values(model.mask_downsample.weight.reshape(4, 4)),  # Conv2d(1,1,4,stride 4)
        "mask_downsample_bias": _values(model.mask_downsample.bias)[0],
        "hidden_dim": model.hidden_dim,
        "mem_dim": model.mem_dim,
        "image_size": model.image_size,
        "backbone_stride": model.backbone_stride,
        "num_maskmem": model.num_maskmem,
        "max_obj_ptrs_in_encoder": model.max_obj_ptrs_in_encoder,
        "max_cond_frames_in_attn": model.max_cond_frames_in_attn,  # -1: every conditioning frame
        "memory_temporal_stride_for_eval": model.memory_temporal_stride_for_eval,
        "sigmoid_scale_for_mem_enc": model.sigmoid_scale_for_mem_enc,
        "sigmoid_bias_for_mem_enc": model.sigmoid_bias_for_mem_enc,
        "dynamic_multimask_stability_delta": d.dynamic_multimask_stability_delta,
        "dynamic_multimask_stability_thresh": d.dynamic_multimask_stability_thresh,
        "multimask_min_pt_num": model.multimask_min_pt_num,
        "multimask_max_pt_num": model.multimask_max_pt_num,
        "add_tpos_enc_to_obj_ptrs": model.add_tpos_enc_to_obj_ptrs,
        "proj_tpos_enc_in_obj_ptrs": model.proj_tpos_enc_in_obj_ptrs,
        "use_signed_tpos_enc_to_obj_ptrs": model.use_signed_tpos_enc_to_obj_ptrs,
        "only_obj_ptrs_in_the_past_for_eval": model.only_obj_ptrs_in_the_past_for_eval,
        "use_mask_input_as_output_without_sam": model.use_mask_input_as_output_without_sam,
        "binarize_mask_from_pts_for_mem_enc": True,  # build_sam2_video_predictor's override
        "fill_hole_area": 8,  # idem; the official code skips it when its CUDA extension is missing
    }
    with open(path, "w") as f:
        json.dump(consts, f)


# ---------------------------------------------------------------------------------------------------------------
# samexporter's 2-graph image split (vietanhdev/samexporter export_sam2.py): same names and I/O


class SamexporterEncoder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        out = self.model.forward_image(image)
        fpn = out["backbone_fpn"]
        return fpn[0], fpn[1], fpn[2] + self.model.no_mem_embed.reshape(1, -1, 1, 1)


class SamexporterDecoder(torch.nn.Module):
    """Multimask tokens 1..3 only, logits clamped to [-32, 32], float labels; coords in the S x S frame."""

    def __init__(self, model):
        super().__init__()
        self.pe = model.sam_prompt_encoder
        self.decoder = model.sam_mask_decoder

    def forward(self, image_embed, high_res_feats_0, high_res_feats_1, point_coords, point_labels, mask_input,
                has_mask_input):
        sparse = self.pe._embed_points(point_coords, point_labels, pad=True)
        dense = has_mask_input * self.pe.mask_downscaling(mask_input)
        dense = dense + (1 - has_mask_input) * self.pe.no_mask_embed.weight.reshape(1, -1, 1, 1)
        masks, iou, _, _ = self.decoder.predict_masks(
            image_embeddings=image_embed, image_pe=self.pe.get_dense_pe(), sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense, repeat_image=False, high_res_features=[high_res_feats_0, high_res_feats_1])
        return torch.clamp(masks[:, 1:], -32.0, 32.0), iou[:, 1:]


def export_samexporter(model, encoder_path, decoder_path, check=True, log=print):
    s, c, hw = model.image_size, model.hidden_dim, model.sam_image_embedding_size
    enc = SamexporterEncoder(model)
    image = torch.randn(1, 3, s, s)
    export_onnx(enc, (image,), encoder_path, ["image"], ["high_res_feats_0", "high_res_feats_1", "image_embed"])
    with torch.no_grad():
        f0, f1, emb = enc(image)
    dec = SamexporterDecoder(model)
    names = ["image_embed", "high_res_feats_0", "high_res_feats_1", "point_coords", "point_labels", "mask_input",
             "has_mask_input"]
    example = (emb, f0, f1, torch.rand(1, 3, 2) * s, torch.tensor([[1.0, 0.0, 1.0]]), torch.randn(1, 1, 4 * hw, 4 * hw),
               torch.tensor([1.0]))
    export_onnx(dec, example, decoder_path, names, ["masks", "iou_predictions"],
                {"point_coords": {0: "num_labels", 1: "num_points"}, "point_labels": {0: "num_labels", 1: "num_points"},
                 "mask_input": {0: "num_labels"}, "has_mask_input": {0: "num_labels"}})
    diffs = {}
    if check:
        diffs["encoder"] = check_graph(enc, encoder_path, [(image,)], ["image"])
        other = (emb, f0, f1, torch.rand(1, 1, 2) * s, torch.tensor([[1.0]]), torch.zeros(1, 1, 4 * hw, 4 * hw),
                 torch.tensor([0.0]))
        diffs["decoder"] = check_graph(dec, decoder_path, [example, other], names)
        for k, v in diffs.items():
            log(f"samexporter {k}: onnxruntime vs PyTorch max abs diff {v:.3g}")
    return diffs


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sam2", required=True, help="facebookresearch/sam2 repository root")
    p.add_argument("--checkpoint", required=True, help="official checkpoint, e.g. sam2.1_hiera_tiny.pt")
    p.add_argument("--config", required=True, help="sam2.1_hiera_t | sam2.1_hiera_s | ... | sam2_hiera_l")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--tag", help="file name tag (default hiera_<size>[_2.1])")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime vs PyTorch comparison")
    a = p.parse_args()
    import_sam2(a.sam2)
    model, version, size = build_from_checkpoint(a.config, a.checkpoint)
    tag = a.tag or f"hiera_{size}" + ("_2.1" if version == "2.1" else "")
    export_ailia(model, a.out, tag, check=not a.no_check)
    print(f"wrote {a.out}/*_{tag}.onnx and constants_{tag}.json")


if __name__ == "__main__":
    main()
