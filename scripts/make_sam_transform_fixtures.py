#!/usr/bin/python3
"""Reference outputs for src/sam/transforms.ts, written to src/sam/fixtures/transforms/reference.json.

Run with Debian's interpreter (python3-pil, python3-torch, python3-numpy):
    /usr/bin/python3 scripts/make_sam_transform_fixtures.py

- `resize`: Pillow `Image.resize((w, h), Image.BILINEAR)` of RGB uint8 images, as segment-anything's
  `ResizeLongestSide.apply_image` calls it (torchvision `resize` on a PIL image is `img.resize(size[::-1], BILINEAR)`).
  Small cases store input and output bytes (base64, HWC); large ones store the sha256 of the output for an input
  that the test regenerates from `pattern()` below (same integer formula in TypeScript).
- `postprocess`: segment-anything's `Sam.postprocess_masks` (F.interpolate to 1024x1024, bilinear,
  align_corners=False; crop to the resized input size; F.interpolate to the original size) on low-res logits from
  `lowres()` below, float32; small cases store every value, the large ones a few rows plus the count of logits > 0.
"""
import base64
import hashlib
import json
import os

import numpy as np
import PIL
import torch
import torch.nn.functional as F
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "src", "sam", "fixtures", "transforms", "reference.json")


def get_preprocess_shape(oldh, oldw, long_side_length):
    # segment_anything/utils/transforms.py, ResizeLongestSide.get_preprocess_shape
    scale = long_side_length * 1.0 / max(oldh, oldw)
    newh, neww = oldh * scale, oldw * scale
    return int(newh + 0.5), int(neww + 0.5)


def pattern(w, h, seed):
    """Deterministic pseudo-noise mixed with edges, HWC uint8; the test computes the same formula."""
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    v = (x * x * 7 + y * 13 + x * y * 3 + c * 101 + seed * 57) % 256
    edge = ((x // 5 + y // 3) % 2) * 255
    return np.where((x + y + seed) % 4 == 0, edge, v).astype(np.uint8)


def noise(w, h, rng):
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()


def pil_resize(img, w, h):
    return np.asarray(Image.fromarray(img, "RGB").resize((w, h), Image.BILINEAR))


def resize_cases():
    rng = np.random.default_rng(6)
    cases = []
    small = [
        ("downscale 1.73x, longest 64", noise(111, 47, rng), get_preprocess_shape(47, 111, 64)[::-1]),
        ("downscale 5x", noise(80, 60, rng), (16, 12)),
        ("upscale, longest 64", noise(13, 7, rng), get_preprocess_shape(7, 13, 64)[::-1]),
        ("down in x, up in y", noise(40, 10, rng), (20, 30)),
        ("tall and thin, longest 100", noise(9, 300, rng), get_preprocess_shape(300, 9, 100)[::-1]),
        ("vertical only", noise(50, 20, rng), (50, 33)),
        ("horizontal only", noise(20, 50, rng), (33, 50)),
        ("pattern 97x41, longest 48", pattern(97, 41, 1), get_preprocess_shape(41, 97, 48)[::-1]),
    ]
    for name, img, (w, h) in small:
        out = pil_resize(img, w, h)
        cases.append({"name": name, "width": img.shape[1], "height": img.shape[0], "input": b64(img),
                      "outWidth": w, "outHeight": h, "output": b64(out)})
    for w, h, seed in [(2000, 1500, 2), (640, 480, 3), (33, 1500, 4), (1024, 300, 5)]:
        img = pattern(w, h, seed)
        oh, ow = get_preprocess_shape(h, w, 1024)
        out = pil_resize(img, ow, oh)
        cases.append({"name": f"pattern {w}x{h} seed {seed}, longest 1024", "width": w, "height": h, "seed": seed,
                      "outWidth": ow, "outHeight": oh, "sha256": hashlib.sha256(out.tobytes()).hexdigest()})
    return cases


def lowres(planes):
    """[1, planes, 256, 256] float32 logits, exactly representable; the test computes the same formula."""
    c, y, x = np.meshgrid(np.arange(planes), np.arange(256), np.arange(256), indexing="ij")
    v = ((x * 37 + y * 91 + c * 17) % 53 - 26) / 8 + (x - y) / 32
    return torch.from_numpy(v.astype(np.float32))[None]


def postprocess_masks(masks, input_size, original_size):
    # segment_anything/modeling/sam.py, Sam.postprocess_masks
    masks = F.interpolate(masks, (1024, 1024), mode="bilinear", align_corners=False)
    masks = masks[..., : input_size[0], : input_size[1]]
    return F.interpolate(masks, original_size, mode="bilinear", align_corners=False)


def postprocess_cases():
    cases = []
    for h, w, planes in [(37, 53, 2), (61, 23, 1)]:
        inp = get_preprocess_shape(h, w, 1024)
        out = postprocess_masks(lowres(planes), inp, (h, w))[0].numpy()
        cases.append({"height": h, "width": w, "planes": planes, "output": b64(out)})
    for h, w, rows in [(480, 640, [0, 1, 239, 479]), (1500, 2000, [0, 1, 749, 1499])]:
        inp = get_preprocess_shape(h, w, 1024)
        out = postprocess_masks(lowres(1), inp, (h, w))[0, 0].numpy()
        cases.append({"height": h, "width": w, "planes": 1, "rows": rows, "output": b64(out[rows]),
                      "positive": int((out > 0).sum())})
    return cases


def main():
    ref = {
        "generator": f"scripts/make_sam_transform_fixtures.py, Pillow {PIL.__version__}, torch {torch.__version__}",
        "resize": resize_cases(),
        "postprocess": postprocess_cases(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT + ".tmp", "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    os.replace(OUT + ".tmp", OUT)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
