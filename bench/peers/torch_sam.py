#!/usr/bin/env python3
"""PyTorch peer of bench/sam.ts: SAM's ViT-B image encoder and its prompt encoder + mask decoder, random weights.

The modules follow segment-anything's `modeling/image_encoder.py`, `prompt_encoder.py`, `mask_decoder.py`,
`transformer.py` and `utils/onnx.py` (`SamOnnxModel`), written out here because segment-anything is not installed:
ViT-B (patch 16, embed 768, depth 12, 12 heads, MLP ratio 4, window 14, global attention at blocks 2, 5, 8, 11,
decomposed relative positional embeddings, neck to 256 channels) and the ~4M-parameter decoder (two-way transformer,
depth 2, 8 heads, MLP 2048; 4 mask tokens; hypernetwork MLPs; IoU head). Speed does not depend on weight values.

With --export DIR, exports both (opset 17) in segkit's `split` layout: DIR/encoder.onnx (image [1,3,1024,1024] ->
image_embeddings [1,256,64,64]) and DIR/decoder.onnx with the official export's I/O (image_embeddings,
point_coords, point_labels, mask_input, has_mask_input, orig_im_size -> masks, iou_predictions, low_res_masks).
Then serves timing requests from bench/sam.ts (--serve, bench/peers/serve.py), with
torch.set_num_threads(--threads) and torch.no_grad(), so that its runs alternate with segkit's:
- {"op": "encoder", "runs": n}: the encoder forward on [1,3,1024,1024];
- {"op": "decoder", "mode": m, "runs": n}: one click on an --height x --width image, per mode m:
  `lowres` the low-res part (prompt encoding + `predict_masks`: 4 mask channels at 256 x 256 and IoU scores);
  `predictor` what `SamPredictor.predict(multimask_output=True)` does after the image is set: the low-res part, the
  3 multimask channels through `postprocess_masks` (bilinear to 1024 x 1024, crop, bilinear to the image) and
  thresholded at 0; `full` the whole `SamOnnxModel` forward (all 4 channels upscaled that way in graph, no
  threshold): the graph segkit runs as the official full-size path.
Each answer is the list of milliseconds per run. Without --export it builds the same modules (random weights) and
only times them: the second peer on a newer torch does that.

    /usr/bin/python3 bench/peers/torch_sam.py --serve --export /tmp/sam-vitb --threads 2
"""

import argparse
import inspect
import math
import os
import sys
import time

# OpenBLAS runs matrix products on its own threads; OpenMP's threads (torch's other ops) spin after each parallel
# region and steal their cores: per-click timings then swing between 60 and 300 ms. Passive waiting makes them steady.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve import serve, versions  # noqa: E402

IMG_SIZE = 1024
EMBED_SIZE = 64
PROMPT_DIM = 256


# ---------------------------------------------------------------- common.py


class MLPBlock(nn.Module):
    def __init__(self, embedding_dim, mlp_dim, act=nn.GELU):
        super().__init__()
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)
        self.act = act()

    def forward(self, x):
        return self.lin2(self.act(self.lin1(x)))


class LayerNorm2d(nn.Module):
    def __init__(self, num_channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


# ---------------------------------------------------------------- image_encoder.py


def window_partition(x, window_size):
    b, h, w, c = x.shape
    pad_h = (window_size - h % window_size) % window_size
    pad_w = (window_size - w % window_size) % window_size
    if pad_h > 0 or pad_w > 0:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window_size, window_size, wp // window_size, window_size, c)
    windows = x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window_size, window_size, c)
    return windows, (hp, wp)


def window_unpartition(windows, window_size, pad_hw, hw):
    hp, wp = pad_hw
    h, w = hw
    b = windows.shape[0] // (hp * wp // window_size // window_size)
    x = windows.view(b, hp // window_size, wp // window_size, window_size, window_size, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, hp, wp, -1)
    if hp > h or wp > w:
        x = x[:, :h, :w, :].contiguous()
    return x


def get_rel_pos(q_size, k_size, rel_pos):
    max_rel_dist = int(2 * max(q_size, k_size) - 1)
    if rel_pos.shape[0] != max_rel_dist:
        resized = F.interpolate(rel_pos.reshape(1, rel_pos.shape[0], -1).permute(0, 2, 1), size=max_rel_dist, mode="linear")
        rel_pos = resized.reshape(-1, max_rel_dist).permute(1, 0)
    q_coords = torch.arange(q_size)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size)[None, :] * max(q_size / k_size, 1.0)
    relative_coords = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return rel_pos[relative_coords.long()]


def add_decomposed_rel_pos(attn, q, rel_pos_h, rel_pos_w, q_size, k_size):
    q_h, q_w = q_size
    k_h, k_w = k_size
    rh = get_rel_pos(q_h, k_h, rel_pos_h)
    rw = get_rel_pos(q_w, k_w, rel_pos_w)
    b, _, dim = q.shape
    r_q = q.reshape(b, q_h, q_w, dim)
    rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, rh)
    rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, rw)
    attn = attn.view(b, q_h, q_w, k_h, k_w) + rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]
    return attn.view(b, q_h * q_w, k_h * k_w)


class ViTAttention(nn.Module):
    def __init__(self, dim, num_heads, input_size):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))

    def forward(self, x):
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.reshape(3, b * self.num_heads, h * w, -1).unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = add_decomposed_rel_pos(attn, q, self.rel_pos_h, self.rel_pos_w, (h, w), (h, w))
        attn = attn.softmax(dim=-1)
        x = (attn @ v).view(b, self.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
        return self.proj(x)


class ViTBlock(nn.Module):
    def __init__(self, dim, num_heads, window_size, input_size):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = ViTAttention(dim, num_heads, input_size if window_size == 0 else (window_size, window_size))
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, dim * 4)
        self.window_size = window_size

    def forward(self, x):
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            h, w = x.shape[1], x.shape[2]
            x, pad_hw = window_partition(x, self.window_size)
        x = self.attn(x)
        if self.window_size > 0:
            x = window_unpartition(x, self.window_size, pad_hw, (h, w))
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class ImageEncoderViT(nn.Module):
    """ViT-B as build_sam_vit_b: embed 768, depth 12, 12 heads, global attention at 2, 5, 8, 11."""

    def __init__(self, embed_dim=768, depth=12, num_heads=12, global_attn=(2, 5, 8, 11), window_size=14):
        super().__init__()
        self.img_size = IMG_SIZE
        self.patch_embed = nn.Conv2d(3, embed_dim, kernel_size=16, stride=16)
        self.pos_embed = nn.Parameter(torch.zeros(1, EMBED_SIZE, EMBED_SIZE, embed_dim))
        self.blocks = nn.ModuleList(
            ViTBlock(embed_dim, num_heads, 0 if i in global_attn else window_size, (EMBED_SIZE, EMBED_SIZE))
            for i in range(depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dim, PROMPT_DIM, kernel_size=1, bias=False),
            LayerNorm2d(PROMPT_DIM),
            nn.Conv2d(PROMPT_DIM, PROMPT_DIM, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(PROMPT_DIM),
        )

    def forward(self, x):
        x = self.patch_embed(x).permute(0, 2, 3, 1)
        x = x + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.neck(x.permute(0, 3, 1, 2))


# ---------------------------------------------------------------- prompt_encoder.py


class PositionEmbeddingRandom(nn.Module):
    def __init__(self, num_pos_feats=64, scale=1.0):
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats)))

    def _pe_encoding(self, coords):
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size):
        h, w = size
        grid = torch.ones((h, w), dtype=torch.float32)
        y_embed = (grid.cumsum(dim=0) - 0.5) / h
        x_embed = (grid.cumsum(dim=1) - 0.5) / w
        pe = self._pe_encoding(torch.stack([x_embed, y_embed], dim=-1))
        return pe.permute(2, 0, 1)


class PromptEncoder(nn.Module):
    def __init__(self, embed_dim=PROMPT_DIM, mask_in_chans=16):
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = (EMBED_SIZE, EMBED_SIZE)
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.num_point_embeddings = 4
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self):
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)


# ---------------------------------------------------------------- transformer.py


class Attention(nn.Module):
    def __init__(self, embedding_dim, num_heads, downsample_rate=1):
        super().__init__()
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _separate_heads(self, x):
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def _recombine_heads(self, x):
        b, n_heads, n_tokens, c_per_head = x.shape
        return x.transpose(1, 2).reshape(b, n_tokens, n_heads * c_per_head)

    def forward(self, q, k, v):
        q = self._separate_heads(self.q_proj(q))
        k = self._separate_heads(self.k_proj(k))
        v = self._separate_heads(self.v_proj(v))
        _, _, _, c_per_head = q.shape
        attn = q @ k.permute(0, 1, 3, 2) / math.sqrt(c_per_head)
        attn = torch.softmax(attn, dim=-1)
        return self.out_proj(self._recombine_heads(attn @ v))


class TwoWayAttentionBlock(nn.Module):
    def __init__(self, embedding_dim, num_heads, mlp_dim=2048, attention_downsample_rate=2, skip_first_layer_pe=False):
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim, nn.ReLU)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries, keys, query_pe, key_pe):
        if self.skip_first_layer_pe:
            queries = self.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q=q, k=q, v=queries)
        queries = self.norm1(queries)
        q = queries + query_pe
        k = keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q=q, k=k, v=keys))
        queries = self.norm3(queries + self.mlp(queries))
        q = queries + query_pe
        k = keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(q=k, k=q, v=queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(self, depth=2, embedding_dim=PROMPT_DIM, num_heads=8, mlp_dim=2048, attention_downsample_rate=2):
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(embedding_dim, num_heads, mlp_dim, attention_downsample_rate, i == 0)
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads, attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(self, image_embedding, image_pe, point_embedding):
        image_embedding = image_embedding.flatten(2).permute(0, 2, 1)
        image_pe = image_pe.flatten(2).permute(0, 2, 1)
        queries = point_embedding
        keys = image_embedding
        for layer in self.layers:
            queries, keys = layer(queries=queries, keys=keys, query_pe=point_embedding, key_pe=image_pe)
        q = queries + point_embedding
        k = keys + image_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q=q, k=k, v=keys))
        return queries, keys


# ---------------------------------------------------------------- mask_decoder.py


class MLP(nn.Module):
    def __init__(self, input_dim, hidden_dim, output_dim, num_layers):
        super().__init__()
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip([input_dim] + h, h + [output_dim]))
        self.num_layers = num_layers

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        return x


class MaskDecoder(nn.Module):
    def __init__(self, transformer_dim=PROMPT_DIM, num_multimask_outputs=3, mlp_dim=2048, num_heads=8, iou_hidden=256):
        super().__init__()
        self.transformer = TwoWayTransformer(embedding_dim=transformer_dim, num_heads=num_heads, mlp_dim=mlp_dim)
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(transformer_dim, iou_hidden, self.num_mask_tokens, 3)

    def predict_masks(self, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings):
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        output_tokens = output_tokens.unsqueeze(0).expand(sparse_prompt_embeddings.size(0), -1, -1)
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)
        src = torch.repeat_interleave(image_embeddings, tokens.shape[0], dim=0)
        src = src + dense_prompt_embeddings
        pos_src = torch.repeat_interleave(image_pe, tokens.shape[0], dim=0)
        b, c, h, w = src.shape
        hs, src = self.transformer(src, pos_src, tokens)
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1 : (1 + self.num_mask_tokens), :]
        src = src.transpose(1, 2).view(b, c, h, w)
        upscaled = self.output_upscaling(src)
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )
        b, c, h, w = upscaled.shape
        masks = (hyper_in @ upscaled.view(b, c, h * w)).view(b, -1, h, w)
        return masks, self.iou_prediction_head(iou_token_out)


# ---------------------------------------------------------------- utils/onnx.py


class SamOnnxModel(nn.Module):
    """`SamOnnxModel(sam, return_single_mask=False)`: 4 mask channels, low-res masks upscaled in graph."""

    def __init__(self, prompt_encoder, mask_decoder):
        super().__init__()
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.img_size = IMG_SIZE

    @staticmethod
    def resize_longest_image_size(input_image_size, longest_side):
        input_image_size = input_image_size.to(torch.float32)
        scale = longest_side / torch.max(input_image_size)
        return torch.floor(scale * input_image_size + 0.5).to(torch.int64)

    def _embed_points(self, point_coords, point_labels):
        point_coords = (point_coords + 0.5) / self.img_size
        point_embedding = self.prompt_encoder.pe_layer._pe_encoding(point_coords)
        point_labels = point_labels.unsqueeze(-1).expand_as(point_embedding)
        point_embedding = point_embedding * (point_labels != -1)
        point_embedding = point_embedding + self.prompt_encoder.not_a_point_embed.weight * (point_labels == -1)
        for i in range(self.prompt_encoder.num_point_embeddings):
            point_embedding = point_embedding + self.prompt_encoder.point_embeddings[i].weight * (point_labels == i)
        return point_embedding

    def _embed_masks(self, input_mask, has_mask_input):
        mask_embedding = has_mask_input * self.prompt_encoder.mask_downscaling(input_mask)
        return mask_embedding + (1 - has_mask_input) * self.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)

    def mask_postprocessing(self, masks, orig_im_size):
        masks = F.interpolate(masks, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False)
        prepadded_size = self.resize_longest_image_size(orig_im_size, self.img_size).to(torch.int64)
        masks = masks[..., : prepadded_size[0], : prepadded_size[1]]
        orig_im_size = orig_im_size.to(torch.int64)
        h, w = orig_im_size[0], orig_im_size[1]
        return F.interpolate(masks, size=(h, w), mode="bilinear", align_corners=False)

    def low_res(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
        sparse = self._embed_points(point_coords, point_labels)
        dense = self._embed_masks(mask_input, has_mask_input)
        return self.mask_decoder.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
        )

    def predictor(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input, orig_im_size):
        """SamPredictor.predict(multimask_output=True) after set_image: the 3 multimask channels upscaled and
        thresholded (`predict_torch` + `postprocess_masks` + `> mask_threshold`)."""
        masks, scores = self.low_res(image_embeddings, point_coords, point_labels, mask_input, has_mask_input)
        masks, scores = masks[:, 1:], scores[:, 1:]
        return self.mask_postprocessing(masks, orig_im_size) > 0.0, scores, masks

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input, orig_im_size):
        masks, scores = self.low_res(image_embeddings, point_coords, point_labels, mask_input, has_mask_input)
        upscaled = self.mask_postprocessing(masks, orig_im_size)
        return upscaled, scores, masks


# ---------------------------------------------------------------- bench


def params(module):
    return sum(p.numel() for p in module.parameters())


def times_ms(fn, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return times


def export(model, args, path, input_names, output_names, dynamic_axes=None):
    t = time.perf_counter()
    with torch.no_grad():
        torch.onnx.export(
            model,
            args,
            path,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=17,
            do_constant_folding=True,
            # torch >= 2.9 exports through dynamo by default; the TorchScript exporter is the one 1.13 has
            **({"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}),
        )
    print(f"exported {path} ({os.path.getsize(path)} bytes) in {time.perf_counter() - t:.1f} s", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", action="store_true", required=True)
    ap.add_argument("--export", help="directory to write encoder.onnx and decoder.onnx into")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=640)
    a = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    encoder = ImageEncoderViT().eval()
    decoder = SamOnnxModel(PromptEncoder(), MaskDecoder()).eval()
    # Random weights everywhere (zero-initialised position tables included): speed does not depend on values.
    with torch.no_grad():
        for p in list(encoder.parameters()) + list(decoder.parameters()):
            if p.dim() > 1 and not p.abs().sum():
                p.normal_(0, 0.02)

    image = torch.randn(1, 3, IMG_SIZE, IMG_SIZE)
    scale = IMG_SIZE / max(a.height, a.width)
    # One click plus the padding point, as SamPredictor / the official ONNX example feed it.
    dec_args = (
        torch.randn(1, PROMPT_DIM, EMBED_SIZE, EMBED_SIZE),
        torch.tensor([[[0.4 * a.width * scale, 0.6 * a.height * scale], [0.0, 0.0]]]),
        torch.tensor([[1.0, -1.0]]),
        torch.zeros(1, 1, 256, 256),
        torch.zeros(1),
        torch.tensor([float(a.height), float(a.width)]),
    )
    if a.export:
        os.makedirs(a.export, exist_ok=True)
        export(encoder, (image,), os.path.join(a.export, "encoder.onnx"), ["image"], ["image_embeddings"])
        export(
            decoder,
            dec_args,
            os.path.join(a.export, "decoder.onnx"),
            ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size"],
            ["masks", "iou_predictions", "low_res_masks"],
            {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
        )

    modes = {
        "full": lambda: decoder(*dec_args),
        "lowres": lambda: decoder.low_res(*dec_args[:5]),
        "predictor": lambda: decoder.predictor(*dec_args),
    }

    def timed(fn, runs):
        with torch.no_grad():
            return {"ms": times_ms(fn, runs)}

    with torch.no_grad():
        masks, _, low = decoder(*dec_args)
        picked, _, _ = decoder.predictor(*dec_args)
    serve(
        {
            "encoder": lambda req: timed(lambda: encoder(image), req["runs"]),
            "decoder": lambda req: timed(modes[req["mode"]], req["runs"]),
        },
        {
            "versions": versions(),
            "threads": torch.get_num_threads(),
            "params": {
                "encoder": params(encoder),
                "decoder": params(decoder.prompt_encoder) + params(decoder.mask_decoder),
            },
            "imageSize": [a.height, a.width],
            "outputs": {"masks": list(masks.shape), "lowResMasks": list(low.shape), "predictor": list(picked.shape)},
        },
    )


if __name__ == "__main__":
    main()
