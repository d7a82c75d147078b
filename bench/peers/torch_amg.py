#!/usr/bin/env python3
"""PyTorch peer of bench/amg.ts: segment-anything's automatic mask generator, reference pipeline, on SAM's standard
~4M-parameter prompt encoder + mask decoder (bench/peers/torch_sam.py's modules) with random weights.

The image encoder is not part of the comparison: both sides get the same image embeddings from a constant
"encoder" graph (DIR/encoder.onnx: image [1,3,1024,1024] -> image_embeddings [1,256,64,64], the stored tensor).
The weights are random, set so that the masks and scores look like a trained model's and the reference thresholds
keep some of them (speed does not depend on weight values, but the work after the decoder depends on the masks):
- embeddings piecewise constant over --regions Voronoi cells of the 64 x 64 grid (one random vector per cell), and
  the two output-upscaling transposed convolutions with the same kernel at their 2 x 2 positions, so that masks are
  unions of smooth blobs rather than per-pixel noise;
- the hypernetwork output layers scaled so that logits spread over about +-20 (stability scores near SAM's), with a
  logit offset per mask token that leaves about --mask-fraction of the image inside a mask, and the IoU head centred
  on 0.9 (so that the 0.88 threshold keeps part of the candidates).

With --export DIR writes DIR/encoder.onnx and DIR/decoder.onnx (the official decoder export's I/O, opset 17), the
layout segkit's `loadSamModel` reads, and the weights and embeddings to --weights FILE; without --export it loads
them from --weights FILE (so that a second peer on another torch runs the very same decoder). Then serves requests
from bench/amg.ts (--serve, bench/peers/serve.py): {"op": "generate", "prefilter": false|true} runs
`SamAutomaticMaskGenerator.generate` as the reference does it (`_process_crop` / `_process_batch`, written out from
segment-anything's automatic_mask_generator.py and utils/amg.py; box NMS from torchvision, or where torchvision
does not load, the same greedy NMS in torch, named in the answer): a --points-per-side grid in batches of
--points-per-batch, each batch through the decoder with `multimask_output=True`, masks upscaled to the image
(`postprocess_masks`), filters predicted IoU > 0.88, stability >= 0.95 (offset 1), crop-edge, then RLE and box
NMS 0.7; the whole image only (crop_n_layers 0). With "prefilter": true the predicted-IoU filter runs BEFORE the
upscaling (segkit's order: only the candidates that pass it are upscaled), nothing else changes, so the records
are the same. Answers one JSON line: timings (decoder, upscaling, filters + RLE, NMS), peak memory (the peak RSS
during generation over the RSS before it) and the records (area, bbox, predicted_iou, stability_score, point) for
bench/amg.ts to compare with segkit's.

    /usr/bin/python3 bench/peers/torch_amg.py --serve --export /tmp/amg/model --weights /tmp/amg/weights.pt
"""

import argparse
import os
import sys
import time

# OpenBLAS runs matrix products on its own threads; OpenMP's threads (torch's other ops) spin after each parallel
# region and steal their cores: per-click timings then swing between 60 and 300 ms. Passive waiting makes them steady.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve import serve, versions  # noqa: E402
from torch_sam import EMBED_SIZE, IMG_SIZE, PROMPT_DIM, MaskDecoder, PromptEncoder, SamOnnxModel, export  # noqa: E402

try:
    from torchvision.ops import batched_nms

    NMS = "torchvision.ops.batched_nms"
except Exception:  # noqa: BLE001 - a torchvision build that does not match torch fails in many ways

    def batched_nms(boxes, scores, idxs, iou_threshold):
        """torchvision's batched_nms for one category (idxs all equal, as here): greedy by descending score, a box
        suppressed when its IoU with a kept box is > iou_threshold; torchvision's box area (x1 - x0) * (y1 - y0)."""
        order = scores.argsort(descending=True)
        boxes = boxes[order]
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        lt = torch.max(boxes[:, None, :2], boxes[None, :, :2])
        rb = torch.min(boxes[:, None, 2:], boxes[None, :, 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[..., 0] * wh[..., 1]
        iou = inter / (area[:, None] + area[None, :] - inter)
        suppressed = torch.zeros(len(boxes), dtype=torch.bool)
        keep = []
        for i in range(len(boxes)):
            if suppressed[i]:
                continue
            keep.append(i)
            suppressed |= iou[i] > iou_threshold
        return order[torch.tensor(keep, dtype=torch.long)]

    NMS = "greedy NMS in torch (torchvision did not load)"

MASK_THRESHOLD = 0.0


class ConstantEncoder(nn.Module):
    """The image encoder stand-in: returns the stored embeddings whatever the image."""

    def __init__(self, embeddings):
        super().__init__()
        self.register_buffer("embeddings", embeddings)

    def forward(self, image):
        return self.embeddings + 0 * image.mean()


def voronoi_embeddings(regions, generator):
    seeds = torch.rand(regions, 2, generator=generator) * EMBED_SIZE
    ys, xs = torch.meshgrid(torch.arange(EMBED_SIZE) + 0.5, torch.arange(EMBED_SIZE) + 0.5, indexing="ij")
    d = (xs[None] - seeds[:, 0, None, None]) ** 2 + (ys[None] - seeds[:, 1, None, None]) ** 2
    cell = d.argmin(0)
    vectors = torch.randn(regions, PROMPT_DIM, generator=generator)
    return vectors[cell].permute(2, 0, 1).unsqueeze(0).contiguous()


def shape_weights(decoder):
    md = decoder.mask_decoder
    with torch.no_grad():
        for p in decoder.parameters():
            if p.dim() > 1 and not p.abs().sum():
                p.normal_(0, 0.02)
        for conv in (md.output_upscaling[0], md.output_upscaling[3]):
            conv.weight.copy_(conv.weight[:, :, :1, :1].expand_as(conv.weight))
        # channel 0 of the upscaled features a constant 10 and the hypernetworks' weights on it zero: their bias on
        # it is a logit offset per mask token, set by `calibrate`
        up = md.output_upscaling[3]
        up.weight[:, 0].zero_()
        up.bias[0] = 10.0
        for mlp in md.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(320)
            mlp.layers[-1].weight[0].zero_()
            mlp.layers[-1].bias[0] = 0.0
        head = md.iou_prediction_head.layers[-1]
        head.weight.mul_(0.2)
        head.bias.fill_(0.9)


def calibrate(decoder, embeddings, fraction):
    """Per mask token, the logit offset that leaves about `fraction` of the image inside its masks (objects, not
    halves of the image), measured on a 4 x 4 grid of clicks."""
    n = 16
    coords = torch.as_tensor(build_point_grid(4) * IMG_SIZE, dtype=torch.float)
    pc = torch.cat([coords[:, None, :], torch.zeros(n, 1, 2)], dim=1)
    pl = torch.cat([torch.ones(n, 1), -torch.ones(n, 1)], dim=1)
    md = decoder.mask_decoder
    with torch.no_grad():
        dense = decoder.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, EMBED_SIZE, EMBED_SIZE)
        low, _ = md.predict_masks(embeddings, decoder.prompt_encoder.get_dense_pe(), decoder._embed_points(pc, pl), dense)
        for c, mlp in enumerate(md.output_hypernetworks_mlps):
            mlp.layers[-1].bias[0] = -torch.quantile(low[:, c].flatten(), 1 - fraction) / 10.0


# ---------------------------------------------------------------- utils/amg.py, automatic_mask_generator.py


def build_point_grid(n):
    offset = 1 / (2 * n)
    side = np.linspace(offset, 1 - offset, n)
    xs = np.tile(side[None, :], (n, 1))
    ys = np.tile(side[:, None], (1, n))
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def apply_coords(coords, original_size):
    old_h, old_w = original_size
    scale = IMG_SIZE / max(old_h, old_w)
    new_h, new_w = int(old_h * scale + 0.5), int(old_w * scale + 0.5)
    coords = coords.copy().astype(float)
    coords[..., 0] = coords[..., 0] * (new_w / old_w)
    coords[..., 1] = coords[..., 1] * (new_h / old_h)
    return coords, (new_h, new_w)


def calculate_stability_score(masks, mask_threshold, offset):
    inter = (masks > (mask_threshold + offset)).sum(-1, dtype=torch.int16).sum(-1, dtype=torch.int32)
    union = (masks > (mask_threshold - offset)).sum(-1, dtype=torch.int16).sum(-1, dtype=torch.int32)
    return inter / union


def batched_mask_to_box(masks):
    h, w = masks.shape[-2:]
    in_height, _ = torch.max(masks, dim=-1)
    in_height_coords = in_height * torch.arange(h)[None, :]
    bottom, _ = torch.max(in_height_coords, dim=-1)
    top, _ = torch.min(in_height_coords + h * (~in_height), dim=-1)
    in_width, _ = torch.max(masks, dim=-2)
    in_width_coords = in_width * torch.arange(w)[None, :]
    right, _ = torch.max(in_width_coords, dim=-1)
    left, _ = torch.min(in_width_coords + w * (~in_width), dim=-1)
    empty = (right < left) | (bottom < top)
    return torch.stack([left, top, right, bottom], dim=-1) * (~empty).unsqueeze(-1)


def is_box_near_crop_edge(boxes, crop_box, orig_box, atol=20.0):
    crop = torch.as_tensor(crop_box, dtype=torch.float)
    orig = torch.as_tensor(orig_box, dtype=torch.float)
    offset = torch.tensor([[crop_box[0], crop_box[1], crop_box[0], crop_box[1]]])
    boxes = (boxes + offset).float()
    near_crop = torch.isclose(boxes, crop[None, :], atol=atol, rtol=0)
    near_image = torch.isclose(boxes, orig[None, :], atol=atol, rtol=0)
    return torch.any(torch.logical_and(near_crop, ~near_image), dim=1)


def mask_to_rle(masks):
    b, h, w = masks.shape
    flat = masks.permute(0, 2, 1).flatten(1)
    change = (flat[:, 1:] ^ flat[:, :-1]).nonzero()
    out = []
    for i in range(b):
        idx = change[change[:, 0] == i, 1]
        idx = torch.cat([torch.tensor([0]), idx + 1, torch.tensor([h * w])])
        counts = [] if flat[i, 0] == 0 else [0]
        counts.extend((idx[1:] - idx[:-1]).tolist())
        out.append({"size": [h, w], "counts": counts})
    return out


def generate(decoder, embeddings, height, width, a, timings, prefilter):
    """One crop (the whole image): `_process_crop` with its `_process_batch` calls, then the records. `prefilter`:
    the predicted-IoU filter before the upscaling instead of after it."""
    points = build_point_grid(a.points_per_side) * np.array([[width, height]])
    input_pe = decoder.prompt_encoder.get_dense_pe()
    kept = {"iou": [], "stability": [], "boxes": [], "points": [], "rles": []}
    crop_box = [0, 0, width, height]
    for start in range(0, len(points), a.points_per_batch):
        batch = points[start : start + a.points_per_batch]
        coords, input_size = apply_coords(batch, (height, width))
        t = time.perf_counter()
        # SamPredictor.predict_torch: the point plus the padding point (label -1), as the prompt encoder pads it
        n = len(batch)
        pc = torch.cat([torch.as_tensor(coords, dtype=torch.float)[:, None, :], torch.zeros(n, 1, 2)], dim=1)
        pl = torch.cat([torch.ones(n, 1), -torch.ones(n, 1)], dim=1)
        sparse = decoder._embed_points(pc, pl)
        dense = decoder.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, EMBED_SIZE, EMBED_SIZE)
        low, iou = decoder.mask_decoder.predict_masks(embeddings, input_pe, sparse, dense)
        low, iou = low[:, 1:], iou[:, 1:]
        pts = torch.as_tensor(batch.repeat(3, axis=0))
        timings["decode"] += time.perf_counter() - t
        t = time.perf_counter()
        if prefilter:
            # one plane per candidate, in the order of masks.flatten(0, 1) below
            low, iou = low.flatten(0, 1)[:, None], iou.flatten(0, 1)
            keep = iou > a.pred_iou_thresh
            low, iou, pts = low[keep], iou[keep], pts[keep]
        if len(low):
            masks = F.interpolate(low, (IMG_SIZE, IMG_SIZE), mode="bilinear", align_corners=False)
            masks = masks[..., : input_size[0], : input_size[1]]
            masks = F.interpolate(masks, (height, width), mode="bilinear", align_corners=False)
        else:  # older torch refuses to interpolate an empty batch
            masks = low.new_zeros((0, 1, height, width))
        masks, iou = masks.flatten(0, 1), iou.flatten()
        timings["upscale"] += time.perf_counter() - t
        t = time.perf_counter()
        if not prefilter:
            keep = iou > a.pred_iou_thresh
            masks, iou, pts = masks[keep], iou[keep], pts[keep]
        stability = calculate_stability_score(masks, MASK_THRESHOLD, 1.0)
        keep = stability >= a.stability_score_thresh
        masks, iou, pts, stability = masks[keep], iou[keep], pts[keep], stability[keep]
        masks = masks > MASK_THRESHOLD
        boxes = batched_mask_to_box(masks)
        keep = ~is_box_near_crop_edge(boxes, crop_box, [0, 0, width, height])
        masks, iou, pts, stability, boxes = masks[keep], iou[keep], pts[keep], stability[keep], boxes[keep]
        kept["rles"].extend(mask_to_rle(masks))
        del masks
        kept["iou"].append(iou)
        kept["stability"].append(stability)
        kept["boxes"].append(boxes)
        kept["points"].append(pts)
        timings["filter"] += time.perf_counter() - t
    t = time.perf_counter()
    iou = torch.cat(kept["iou"])
    boxes = torch.cat(kept["boxes"])
    keep = batched_nms(boxes.float(), iou, torch.zeros_like(boxes[:, 0]), iou_threshold=a.box_nms_thresh).tolist()
    stability = torch.cat(kept["stability"])
    pts = torch.cat(kept["points"])
    records = []
    for i in keep:
        counts = kept["rles"][i]["counts"]
        x0, y0, x1, y1 = boxes[i].tolist()
        records.append(
            {
                "area": sum(counts[1::2]),
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "predicted_iou": iou[i].item(),
                "stability_score": stability[i].item(),
                "point_coords": [pts[i].tolist()],
            }
        )
    timings["nms"] += time.perf_counter() - t
    return records, len(kept["rles"])


def reset_peak_rss_kb():
    """Resets the peak RSS to the current RSS (Linux clear_refs 5) and returns it; `status_kb("VmHWM")` is then the
    peak since: earlier peaks (the export, building the model) do not count."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return status_kb("VmRSS")


def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", action="store_true", required=True)
    ap.add_argument("--export", help="directory to write encoder.onnx and decoder.onnx into")
    ap.add_argument("--weights", required=True, help="file the weights are written to (--export) or read from")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--height", type=int, default=768)
    ap.add_argument("--regions", type=int, default=24)
    ap.add_argument("--mask-fraction", type=float, default=0.08)
    ap.add_argument("--points-per-side", type=int, default=32)
    ap.add_argument("--points-per-batch", type=int, default=64)
    ap.add_argument("--pred-iou-thresh", type=float, default=0.88)
    ap.add_argument("--stability-score-thresh", type=float, default=0.95)
    ap.add_argument("--box-nms-thresh", type=float, default=0.7)
    a = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    decoder = SamOnnxModel(PromptEncoder(), MaskDecoder()).eval()
    if a.export:
        embeddings = voronoi_embeddings(a.regions, torch.Generator().manual_seed(1))
        shape_weights(decoder)
        calibrate(decoder, embeddings, a.mask_fraction)
        torch.save({"decoder": decoder.state_dict(), "embeddings": embeddings}, a.weights)
        os.makedirs(a.export, exist_ok=True)
        image = torch.zeros(1, 3, IMG_SIZE, IMG_SIZE)
        export(ConstantEncoder(embeddings), (image,), os.path.join(a.export, "encoder.onnx"), ["image"], ["image_embeddings"])
        scale = IMG_SIZE / max(a.height, a.width)
        export(
            decoder,
            (
                embeddings,
                torch.tensor([[[0.4 * a.width * scale, 0.6 * a.height * scale], [0.0, 0.0]]]),
                torch.tensor([[1.0, -1.0]]),
                torch.zeros(1, 1, 256, 256),
                torch.zeros(1),
                torch.tensor([float(a.height), float(a.width)]),
            ),
            os.path.join(a.export, "decoder.onnx"),
            ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size"],
            ["masks", "iou_predictions", "low_res_masks"],
            {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
        )
    else:
        saved = torch.load(a.weights)
        decoder.load_state_dict(saved["decoder"])
        embeddings = saved["embeddings"]

    def run(req):
        timings = {"decode": 0.0, "upscale": 0.0, "filter": 0.0, "nms": 0.0}
        rss0 = reset_peak_rss_kb()
        t = time.perf_counter()
        with torch.no_grad():
            records, candidates = generate(decoder, embeddings, a.height, a.width, a, timings, req["prefilter"])
        total = time.perf_counter() - t
        peak = status_kb("VmHWM")
        return {
            "prefilter": req["prefilter"],
            "afterFilters": candidates,
            "seconds": total,
            "timings": timings,
            "rssBeforeMB": rss0 / 1024,
            "peakGrowthMB": max(0, peak - rss0) / 1024,
            "records": records,
        }

    serve(
        {"generate": run},
        {
            "versions": versions(),
            "threads": torch.get_num_threads(),
            "nms": NMS,
            "imageSize": [a.height, a.width],
            "points": a.points_per_side**2,
            "candidates": 3 * a.points_per_side**2,
        },
    )


if __name__ == "__main__":
    main()
