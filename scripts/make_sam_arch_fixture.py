#!/usr/bin/python3
"""SAM's prompt encoder + mask decoder (the official architecture, bench/peers/torch_sam.py) at a tiny width, exported
as segment-anything's scripts/export_onnx_model.py does, to src/sam/fixtures/models/sam-arch/decoder.onnx.

Run with Debian's interpreter (python3-torch):
    /usr/bin/python3 scripts/make_sam_arch_fixture.py
Transformer width 32 (2 heads, MLP 64, IoU head 32) instead of 256 (8, 2048, 256); everything else as the real
decoder: 64 x 64 image embeddings, 4 mask channels, low-res masks 256 x 256, the full-size `masks` output. PyTorch's
default initialisation, seeded. The tests of src/onnx/rewrite.ts compare the rewritten graph with this one.
"""

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "peers"))
import torch_sam as ts  # noqa: E402

DIM = 32


def main():
    torch.manual_seed(0)
    model = ts.SamOnnxModel(
        ts.PromptEncoder(embed_dim=DIM),
        ts.MaskDecoder(transformer_dim=DIM, mlp_dim=2 * DIM, num_heads=2, iou_hidden=DIM),
    ).eval()
    args = (
        torch.randn(1, DIM, ts.EMBED_SIZE, ts.EMBED_SIZE),
        torch.tensor([[[300.0, 200.0], [0.0, 0.0]]]),
        torch.tensor([[1.0, -1.0]]),
        torch.zeros(1, 1, 256, 256),
        torch.zeros(1),
        torch.tensor([480.0, 640.0]),
    )
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "sam", "fixtures", "models", "sam-arch")
    os.makedirs(out, exist_ok=True)
    ts.export(
        model,
        args,
        os.path.join(out, "decoder.onnx"),
        ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size"],
        ["masks", "iou_predictions", "low_res_masks"],
        {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
    )


if __name__ == "__main__":
    main()
