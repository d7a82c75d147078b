"""Peer for bench/data-loading.ts: the Pet input pipeline in Pillow + NumPy.

Per sample: image decoded, converted to RGB and resized bilinear; trimap resized nearest; both to uint8 arrays;
class = trimap - 1. Samples are collated into batches of 8 (np.stack), as a PyTorch DataLoader does.
Single process (num_workers=0) and a Pool of 2 worker processes (num_workers=2, persistent workers, each
worker producing whole batches). One warm-up pass, then `repeats` timed passes; prints one JSON line.

Usage: /usr/bin/python3 pillow_data_loading.py DATASET [--sizes 128,256] [--repeats 3] [--batch 8]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from multiprocessing import Pool

try:
    import numpy as np
    import PIL
    from PIL import Image
except ImportError as err:
    print(json.dumps({"error": f"missing module: {err.name}", "python": platform.python_version()}))
    sys.exit(3)


def pairs(root):
    """(image, trimap) paths: every trimap PNG with an image of the same stem, sorted (as segkit pairs them)."""
    trimaps = os.path.join(root, "annotations", "trimaps")
    found = []
    for name in sorted(os.listdir(trimaps)):
        stem, ext = os.path.splitext(name)
        image = os.path.join(root, "images", stem + ".jpg")
        if ext == ".png" and not name.startswith(".") and os.path.isfile(image):
            found.append((image, os.path.join(trimaps, name)))
    return found


def load_batch(job):
    size, group = job
    images, masks = [], []
    for image, trimap in group:
        images.append(np.asarray(Image.open(image).convert("RGB").resize((size, size), Image.BILINEAR)))
        masks.append(np.asarray(Image.open(trimap).resize((size, size), Image.NEAREST)) - np.uint8(1))
    return np.stack(images), np.stack(masks)


def measure(run, jobs, repeats):
    """Warm-up pass, then `repeats` timed passes; images/s of each, counting images actually yielded."""
    list(run(jobs))
    rates, count = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = sum(len(images) for images, _ in run(jobs))
        rates.append(count / (time.perf_counter() - start))
    return {"best": max(rates), "median": statistics.median(rates), "passes": rates, "images": count}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset")
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    found = pairs(args.dataset)
    single, pool2 = {}, {}
    with Pool(2) as pool:
        for size in (int(s) for s in args.sizes.split(",")):
            jobs = [(size, found[i : i + args.batch]) for i in range(0, len(found), args.batch)]
            single[str(size)] = measure(lambda js: map(load_batch, js), jobs, args.repeats)
            pool2[str(size)] = measure(lambda js: pool.imap(load_batch, js), jobs, args.repeats)
    versions = {"python": platform.python_version(), "pillow": PIL.__version__, "numpy": np.__version__}
    print(json.dumps({"versions": versions, "pairs": len(found), "pillow": single, "pillow2": pool2}))


if __name__ == "__main__":
    main()
