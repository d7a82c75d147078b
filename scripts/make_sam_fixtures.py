#!/usr/bin/python3
"""Tiny Segment Anything-format ONNX models for segkit's tests, written to src/sam/fixtures/models/.

Run with Debian's interpreter (python3-torch; torch.onnx needs no `onnx` package):
    /usr/bin/python3 scripts/make_sam_fixtures.py
The output is deterministic for one torch version (seeded weights) and committed, so the tests need no Python.

The networks are not SAM: they are a few cheap operators with random weights behind EXACTLY the input/output names,
dtypes and shapes of the real exports, so that loading, layout detection and the plumbing of prompts can be tested.
Their outputs depend on the prompts in a way a test can check by hand: the low-res logit of every mask channel k at
low-res pixel (i, j) (centre (4j + 2, 4i + 2) in the 1024 frame) is

    logit_k = 8 * sum_p w(label_p) * exp(-|centre - point_p|^2 / (2 * sigma_k^2)) - 2 + 0.01 * e_k + mask_term

with sigma_k = 48, 64, 96, 128 (the first C channels), w = +1 for foreground (label 1) and box corners (2, 3),
-1 for background (0), 0 otherwise (padding -1, transformers.js padding -10), e_k a 1x1 convolution of the image
embedding (nearest-upsampled 64 -> 256), and mask_term = has_mask_input * mask_input (split layout only). So a
foreground point makes the masks positive around it (radius about sigma_k) and negative far from it; the predicted
IoU of channel k is sigmoid(mean of its low-res logits).

Layouts written:
  split/             encoder.onnx  `image` [1,3,1024,1024] float32 (normalised, padded) -> `image_embeddings`
                                   [1,256,64,64]: 16x16 average pool, then a 1x1 conv 3 -> 256
                     decoder.onnx  the official signature of segment-anything's scripts/export_onnx_model.py
                                   (SamOnnxModel): image_embeddings [1,256,64,64], point_coords [1,N,2],
                                   point_labels [1,N], mask_input [1,1,256,256], has_mask_input [1], orig_im_size [2]
                                   (all float32, N dynamic) -> masks [1,4,H,W] (upscaled, cropped and resized to
                                   orig_im_size as SamOnnxModel.mask_postprocessing does), iou_predictions [1,4],
                                   low_res_masks [1,4,256,256]
  split-hwc/         encoder.onnx  samexporter's `--use-preprocess` form: `input_image` [H,W,3] float32 RGB 0..255,
                                   already resized so the longest side is 1024 (H, W dynamic); normalises with SAM's
                                   pixel mean/std, pads bottom-right with zeros to 1024x1024, then the same network
                                   and weights as split/encoder.onnx -> `image_embeddings` [1,256,64,64]
                     decoder.onnx  the same decoder as split/
  transformers/      transformers.js (Xenova/sam-vit-base, Xenova/slimsam-*) layout:
                     onnx/vision_encoder.onnx  `pixel_values` [B,3,1024,1024] -> `image_embeddings` [B,256,64,64],
                                   `image_positional_embeddings` [B,256,64,64] (same encoder weights as split/)
                     onnx/prompt_encoder_mask_decoder.onnx  `input_points` [B,P,N,2] float32, `input_labels`
                                   [B,P,N] int64, `input_boxes` [B,nb,4] float32, `image_embeddings`,
                                   `image_positional_embeddings` -> `iou_scores` [B,P,3], `pred_masks`
                                   [B,P,3,256,256] (low-res, the 3 multimask candidates); a box adds +4 to the
                                   logits inside it
                     config.json, preprocessor_config.json  as in those repositories (SamModel / SamImageProcessor)
  broken/            decoder_without_point_labels.onnx  the split decoder with `point_labels` renamed `labels`
  edgesam/           EdgeSAM (chongzhou96/EdgeSAM scripts/export_onnx_model.py), named as in HF chongzhou/EdgeSAM:
                     edge_sam_encoder.onnx  a copy of split/encoder.onnx (`image` -> `image_embeddings`)
                     edge_sam_decoder.onnx  image_embeddings, point_coords [1,N,2], point_labels [1,N] -> scores
                                   [1,4], masks [1,4,256,256] (low-res): split/decoder.onnx's logits without the
                                   mask input term (same weights), no upscaling
  sam-hq/            SAM-HQ (SysCV/sam-hq scripts/export_onnx_model.py):
                     sam_hq_encoder.onnx  `image` [1,3,1024,1024] -> `image_embeddings` (split/'s encoder) and
                                   `interm_embeddings` [4,1,64,64,3] (C = 3 instead of 768..1280):
                                   interm_embeddings[k] = (k + 1) * the 16x16 average pool of the image, channels last
                     sam_hq_decoder.onnx  the official signature plus `interm_embeddings` [4,1,64,64,3], ONE mask:
                                   masks [1,1,H,W], iou_predictions [1,1], low_res_masks [1,1,256,256]; the logit is
                                   channel 0 of split/decoder.onnx (sigma 48) + 0.01 * the channel mean of
                                   interm_embeddings[0] (nearest-upsampled 64 -> 256); interm_embeddings[1:] unused
  slimsam/           SlimSAM (Xenova/slimsam-77-uniform): only onnx/prompt_encoder_mask_decoder_quantized.onnx, the
                     transformers/ decoder (same weights) WITHOUT `input_boxes` (Optimum's SamOnnxConfig); tests pair
                     it with a copy of transformers/onnx/vision_encoder.onnx (named vision_encoder_quantized.onnx)
"""
import json
import os
import shutil
import tempfile

import torch
import torch.nn.functional as F
from torch import nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "sam", "fixtures", "models")
OPSET = 17
SIGMAS = [48.0, 64.0, 96.0, 128.0]
PIXEL_MEAN = [123.675, 116.28, 103.53]
PIXEL_STD = [58.395, 57.12, 57.375]


class Encoder(nn.Module):
    """[B,3,1024,1024] normalised, padded image -> [B,256,64,64]."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, 256, 1)

    def forward(self, image):
        return self.proj(F.avg_pool2d(image, 16))


class HwcEncoder(nn.Module):
    """[H,W,3] RGB 0..255, longest side 1024 -> normalise, pad bottom-right to 1024, encode."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        self.register_buffer("mean", torch.tensor(PIXEL_MEAN).view(3, 1, 1))
        self.register_buffer("std", torch.tensor(PIXEL_STD).view(3, 1, 1))

    def forward(self, input_image):
        x = (input_image.permute(2, 0, 1) - self.mean) / self.std
        h, w = x.shape[1], x.shape[2]
        x = F.pad(x, (0, 1024 - w, 0, 1024 - h))
        return self.encoder(x.unsqueeze(0))


class VisionEncoder(nn.Module):
    """transformers.js vision_encoder: pixel_values -> (image_embeddings, image_positional_embeddings)."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, pixel_values):
        emb = self.encoder(pixel_values)
        # a sine/cosine grid computed in the graph (a stored [256,64,64] table would weigh 4 MB)
        # (grids are cumsums of data * 0 + 1: tracing would freeze arange or ones_like into large constants)
        ones = emb[0, 0] * 0 + 1  # [64,64]
        xs, ys = ones.cumsum(1) - 1, ones.cumsum(0) - 1
        freqs = (emb[0, :64, :1, :1] * 0 + 1).cumsum(0) * (3.14159265 / 64)  # [64,1,1]: 1..64 * pi/64
        pe = torch.cat([torch.sin(xs * freqs), torch.cos(xs * freqs), torch.sin(ys * freqs), torch.cos(ys * freqs)])
        return emb, pe.unsqueeze(0).expand(pixel_values.shape[0], -1, -1, -1)


def low_res_centres(plane):
    """[65536, 2] (x, y) centres of the 256x256 low-res pixels in the 1024 frame, row-major; plane: any [256,256]."""
    ones = plane * 0 + 1  # (ones_like would be traced as a constant)
    xs, ys = ones.cumsum(1) - 1, ones.cumsum(0) - 1
    return torch.stack([xs * 4 + 2, ys * 4 + 2], dim=-1).view(-1, 2)


def bumps(coords, labels, sigmas, plane):
    """coords [B,N,2], labels [B,N] float -> [B,C,256,256]: 8 * sum_p w(label_p) * gaussian_k(centre - point_p)."""
    w = (labels == 1).float() + (labels == 2).float() + (labels == 3).float() - (labels == 0).float()  # [B,N]
    grid = low_res_centres(plane)  # [P,2]
    d2 = ((grid.view(1, 1, -1, 2) - coords.unsqueeze(2)) ** 2).sum(-1)  # [B,N,P]
    g = torch.exp(-d2.unsqueeze(1) / (2 * sigmas.view(1, -1, 1, 1) ** 2))  # [B,C,N,P]
    out = 8 * (g * w.view(w.shape[0], 1, -1, 1)).sum(2)  # [B,C,P]
    return out.view(out.shape[0], -1, 256, 256)


class OfficialDecoder(nn.Module):
    """segment-anything's SamOnnxModel signature (return_single_mask=False)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(256, 4, 1)
        self.register_buffer("sigmas", torch.tensor(SIGMAS))

    def low_res(self, image_embeddings, point_coords, point_labels):
        """[1,4,256,256]: the logits without the mask input term."""
        e = F.interpolate(self.embed(image_embeddings), scale_factor=4.0, mode="nearest")
        return bumps(point_coords, point_labels, self.sigmas, e[0, 0]) - 2 + 0.01 * e

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input, orig_im_size):
        low = self.low_res(image_embeddings, point_coords, point_labels) + has_mask_input * mask_input
        iou = torch.sigmoid(low.mean(dim=(2, 3)))
        return mask_postprocessing(low, orig_im_size), iou, low


def mask_postprocessing(low, orig_im_size):
    """SamOnnxModel.mask_postprocessing, with the crop kept dynamic (tensor slice ends)."""
    up = F.interpolate(low, size=(1024, 1024), mode="bilinear", align_corners=False)
    scale = 1024 / torch.max(orig_im_size)
    pre = torch.floor(scale * orig_im_size + 0.5).to(torch.int64)
    up = up[..., : pre[0], : pre[1]]
    size = orig_im_size.to(torch.int64)
    return F.interpolate(up, size=(size[0], size[1]), mode="bilinear", align_corners=False)


class EdgeSamDecoder(nn.Module):
    """EdgeSAM's decoder export (SamCoreMLModel): no mask input, no upscaling; the official decoder's logits."""

    def __init__(self, official):
        super().__init__()
        self.official = official

    def forward(self, image_embeddings, point_coords, point_labels):
        low = self.official.low_res(image_embeddings, point_coords, point_labels)
        return torch.sigmoid(low.mean(dim=(2, 3))), low


class HqEncoder(nn.Module):
    """A SAM-HQ encoder export: image -> image_embeddings and interm_embeddings [4,1,64,64,C], here C = 3 and
    interm_embeddings[k] = (k + 1) * the 16x16 average pool of the image, channels last."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, image):
        pooled = F.avg_pool2d(image, 16).permute(0, 2, 3, 1)  # [1,64,64,3]
        return self.encoder(image), torch.stack([pooled * (k + 1) for k in range(4)])


class HqDecoder(nn.Module):
    """SysCV/sam-hq's decoder export: the official inputs plus interm_embeddings, ONE mask: channel 0 of the
    official decoder + 0.01 * the channel mean of interm_embeddings[0] (nearest-upsampled 64 -> 256); the other
    three interm planes are unused, as in SAM-HQ."""

    def __init__(self, official):
        super().__init__()
        self.official = official

    def forward(
        self, image_embeddings, interm_embeddings, point_coords, point_labels, mask_input, has_mask_input, orig_im_size
    ):
        vit = interm_embeddings[0].permute(0, 3, 1, 2).mean(1, keepdim=True)  # [1,1,64,64]
        low = self.official.low_res(image_embeddings, point_coords, point_labels)[:, :1]
        low = low + 0.01 * F.interpolate(vit, scale_factor=4.0, mode="nearest") + has_mask_input * mask_input
        iou = torch.sigmoid(low.mean(dim=(2, 3)))
        return mask_postprocessing(low, orig_im_size), iou, low


class PromptEncoderMaskDecoder(nn.Module):
    """transformers.js prompt_encoder_mask_decoder: 3 multimask candidates, low-res only."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(256, 3, 1)
        self.pos = nn.Conv2d(256, 3, 1)
        self.register_buffer("sigmas", torch.tensor(SIGMAS[1:]))

    def forward(self, input_points, input_labels, input_boxes, image_embeddings, image_positional_embeddings):
        b, p, n = input_labels.shape[0], input_labels.shape[1], input_labels.shape[2]
        e = self.embed(image_embeddings) + self.pos(image_positional_embeddings)
        e = F.interpolate(e, scale_factor=4.0, mode="nearest").unsqueeze(1)  # [B,1,3,256,256]
        plane = e[0, 0, 0]
        low = bumps(input_points.reshape(b * p, n, 2), input_labels.reshape(b * p, n).float(), self.sigmas, plane)
        low = low.view(b, p, 3, 256, 256)
        c = low_res_centres(plane)
        x, y = c[:, 0].view(1, 1, -1), c[:, 1].view(1, 1, -1)
        bx = input_boxes.unsqueeze(-1)  # [B,nb,4,1]
        inside = (x >= bx[:, :, 0]) & (x <= bx[:, :, 2]) & (y >= bx[:, :, 1]) & (y <= bx[:, :, 3])  # [B,nb,P]
        box = 4 * inside.float().sum(1).view(b, 1, 1, 256, 256)
        pred_masks = low - 2 + 0.01 * e + box
        iou_scores = torch.sigmoid(pred_masks.mean(dim=(3, 4)))
        return iou_scores, pred_masks


class SlimSamDecoder(nn.Module):
    """Xenova/slimsam-77-uniform's prompt_encoder_mask_decoder (Optimum's SamOnnxConfig): the transformers.js
    signature without input_boxes; PromptEncoderMaskDecoder's weights and logits (no box term)."""

    def __init__(self, pemd):
        super().__init__()
        self.pemd = pemd

    def forward(self, image_positional_embeddings, image_embeddings, input_points, input_labels):
        b, p, n = input_labels.shape[0], input_labels.shape[1], input_labels.shape[2]
        e = self.pemd.embed(image_embeddings) + self.pemd.pos(image_positional_embeddings)
        e = F.interpolate(e, scale_factor=4.0, mode="nearest").unsqueeze(1)  # [B,1,3,256,256]
        labels = input_labels.reshape(b * p, n).float()
        low = bumps(input_points.reshape(b * p, n, 2), labels, self.pemd.sigmas, e[0, 0, 0]).view(b, p, 3, 256, 256)
        pred_masks = low - 2 + 0.01 * e
        return torch.sigmoid(pred_masks.mean(dim=(3, 4))), pred_masks


def export(model, args, path, input_names, output_names, dynamic_axes=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    model.eval()
    with torch.no_grad():
        torch.onnx.export(
            model,
            args,
            path,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            do_constant_folding=True,
        )
    print(f"{os.path.relpath(path)}: {os.path.getsize(path)} bytes")


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def main():
    torch.manual_seed(0)
    encoder = Encoder()
    decoder = OfficialDecoder()
    pemd = PromptEncoderMaskDecoder()
    # everything is written into a fresh directory beside OUT, which then replaces it: an interrupted run leaves the
    # committed fixtures as they were
    out = tempfile.mkdtemp(prefix=".models-", dir=os.path.dirname(OUT))
    os.chmod(out, 0o755)

    image = torch.randn(1, 3, 1024, 1024)
    export(encoder, (image,), f"{out}/split/encoder.onnx", ["image"], ["image_embeddings"])
    dec_args = (
        torch.randn(1, 256, 64, 64),
        torch.tensor([[[500.0, 375.0], [0.0, 0.0]]]),
        torch.tensor([[1.0, -1.0]]),
        torch.zeros(1, 1, 256, 256),
        torch.zeros(1),
        torch.tensor([1500.0, 2250.0]),
    )
    dec_in = ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size"]
    dec_out = ["masks", "iou_predictions", "low_res_masks"]
    dec_axes = {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}}
    export(decoder, dec_args, f"{out}/split/decoder.onnx", dec_in, dec_out, dec_axes)

    # a decoder whose `point_labels` is called `labels`: the loader must name the missing input
    renamed = ["labels" if n == "point_labels" else n for n in dec_in]
    axes = {"point_coords": {1: "num_points"}, "labels": {1: "num_points"}}
    export(decoder, dec_args, f"{out}/broken/decoder_without_point_labels.onnx", renamed, dec_out, axes)

    hwc = torch.rand(683, 1024, 3) * 255
    hwc_axes = {"input_image": {0: "image_height", 1: "image_width"}}
    export(HwcEncoder(encoder), (hwc,), f"{out}/split-hwc/encoder.onnx", ["input_image"], ["image_embeddings"], hwc_axes)
    shutil.copyfile(f"{out}/split/decoder.onnx", f"{out}/split-hwc/decoder.onnx")

    emb_names = ["image_embeddings", "image_positional_embeddings"]
    export(
        VisionEncoder(encoder),
        (image,),
        f"{out}/transformers/onnx/vision_encoder.onnx",
        ["pixel_values"],
        emb_names,
        {"pixel_values": {0: "batch_size"}, **{n: {0: "batch_size"} for n in emb_names}},
    )
    pemd_args = (
        torch.tensor([[[[500.0, 375.0]]]]),
        torch.tensor([[[1]]], dtype=torch.int64),
        torch.tensor([[[100.0, 100.0, 400.0, 300.0]]]),
        torch.randn(1, 256, 64, 64),
        torch.randn(1, 256, 64, 64),
    )
    points_axes = {0: "batch_size", 1: "point_batch_size", 2: "nb_points_per_image"}
    export(
        pemd,
        pemd_args,
        f"{out}/transformers/onnx/prompt_encoder_mask_decoder.onnx",
        ["input_points", "input_labels", "input_boxes", *emb_names],
        ["iou_scores", "pred_masks"],
        {
            "input_points": points_axes,
            "input_labels": points_axes,
            "input_boxes": {0: "batch_size", 1: "nb_boxes"},
            **{n: {0: "batch_size"} for n in emb_names},
            "iou_scores": {0: "batch_size", 1: "point_batch_size"},
            "pred_masks": {0: "batch_size", 1: "point_batch_size"},
        },
    )
    # The two JSON files as transformers' SamConfig / SamImageProcessor write them (trimmed to what a loader reads).
    write_json(
        f"{out}/transformers/config.json",
        {
            "_name_or_path": "segkit/tiny-sam-fixture",
            "architectures": ["SamModel"],
            "model_type": "sam",
            "initializer_range": 0.02,
            "mask_decoder_config": {"model_type": "", "num_multimask_outputs": 3, "hidden_size": 256},
            "prompt_encoder_config": {"model_type": "", "image_size": 1024, "patch_size": 16, "hidden_size": 256},
            "vision_config": {"model_type": "", "image_size": 1024, "patch_size": 16, "output_channels": 256},
        },
    )
    write_json(
        f"{out}/transformers/preprocessor_config.json",
        {
            "do_convert_rgb": True,
            "do_normalize": True,
            "do_pad": True,
            "do_rescale": True,
            "do_resize": True,
            "image_mean": [0.485, 0.456, 0.406],
            "image_processor_type": "SamImageProcessor",
            "image_std": [0.229, 0.224, 0.225],
            "pad_size": {"height": 1024, "width": 1024},
            "processor_class": "SamProcessor",
            "resample": 2,
            "rescale_factor": 0.00392156862745098,
            "size": {"longest_edge": 1024},
        },
    )

    # EdgeSAM (chongzhou96/EdgeSAM scripts/export_onnx_model.py; names as in HF chongzhou/EdgeSAM)
    export(
        EdgeSamDecoder(decoder),
        dec_args[:3],
        f"{out}/edgesam/edge_sam_decoder.onnx",
        dec_in[:3],
        ["scores", "masks"],
        dec_axes,
    )
    shutil.copyfile(f"{out}/split/encoder.onnx", f"{out}/edgesam/edge_sam_encoder.onnx")

    # SAM-HQ (SysCV/sam-hq scripts/export_onnx_model.py; interm_embeddings with C = 3 instead of 768..1280)
    hq_enc_out = ["image_embeddings", "interm_embeddings"]
    export(HqEncoder(encoder), (image,), f"{out}/sam-hq/sam_hq_encoder.onnx", ["image"], hq_enc_out)
    hq_args = (dec_args[0], torch.randn(4, 1, 64, 64, 3), *dec_args[1:])
    hq_in = [dec_in[0], "interm_embeddings", *dec_in[1:]]
    export(HqDecoder(decoder), hq_args, f"{out}/sam-hq/sam_hq_decoder.onnx", hq_in, dec_out, dec_axes)

    # SlimSAM (Xenova/slimsam-77-uniform): only the decoder; tests pair it with transformers/onnx/vision_encoder.onnx
    export(
        SlimSamDecoder(pemd),
        (pemd_args[4], pemd_args[3], pemd_args[0], pemd_args[1]),
        f"{out}/slimsam/onnx/prompt_encoder_mask_decoder_quantized.onnx",
        [emb_names[1], emb_names[0], "input_points", "input_labels"],
        ["iou_scores", "pred_masks"],
        {
            "input_points": points_axes,
            "input_labels": points_axes,
            **{n: {0: "batch_size"} for n in emb_names},
            "iou_scores": {0: "batch_size", 1: "point_batch_size"},
            "pred_masks": {0: "batch_size", 1: "point_batch_size"},
        },
    )

    old = OUT + ".old"
    if os.path.isdir(OUT):
        os.replace(OUT, old)
    os.replace(out, OUT)
    shutil.rmtree(old, ignore_errors=True)


if __name__ == "__main__":
    main()
