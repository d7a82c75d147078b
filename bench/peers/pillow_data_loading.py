"""Peer for bench/data-loading.ts: the Pet input pipeline in Pillow + NumPy, one timed pass per request.

Per sample: image decoded, converted to RGB and resized bilinear; trimap resized nearest; both to uint8 arrays;
class = trimap - 1. Samples are collated into batches of 8 (np.stack), as a PyTorch DataLoader does.
Modes: `single` (one process, num_workers=0) and `pool2` (a persistent Pool of 2 worker processes, num_workers=2,
each worker producing whole batches). Neither applies an embedded ICC profile, and neither does segkit.

The bench drives the passes so that both sides alternate: it writes `SIZE MODE` lines to stdin and reads one JSON
line per pass, `{"images": N, "seconds": S, "cpuSeconds": C}` (C: CPU time of the worker(s) making the batches
plus, for the pools, the parent's). The first line printed is `{"versions": ..., "pairs": N}`; a missing
module prints `{"error": ...}` and exits with status 3.

Usage: /usr/bin/python3 pillow_data_loading.py DATASET [--batch 8]
"""

import argparse
import json
import os
import platform
import sys
import time
from multiprocessing import Pool

try:
    import numpy as np
    import PIL
    from PIL import Image
except ImportError as err:
    print(json.dumps({"error": f"missing module: {err.name}", "python": platform.python_version()}), flush=True)
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
    """One batch, and the CPU seconds the process that made it spent on it."""
    size, group = job
    cpu = time.process_time()
    images, masks = [], []
    for image, trimap in group:
        images.append(np.asarray(Image.open(image).convert("RGB").resize((size, size), Image.BILINEAR)))
        masks.append(np.asarray(Image.open(trimap).resize((size, size), Image.NEAREST)) - np.uint8(1))
    return np.stack(images), np.stack(masks), time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    found = pairs(args.dataset)
    versions = {"python": platform.python_version(), "pillow": PIL.__version__, "numpy": np.__version__}
    print(json.dumps({"versions": versions, "pairs": len(found)}), flush=True)
    with Pool(2) as pool:
        for line in sys.stdin:
            size, mode = line.split()
            jobs = [(int(size), found[i : i + args.batch]) for i in range(0, len(found), args.batch)]
            run = map if mode == "single" else pool.imap
            start, parent_cpu = time.perf_counter(), time.process_time()
            count, cpu = 0, 0.0
            for images, _, batch_cpu in run(load_batch, jobs):
                count += len(images)
                cpu += batch_cpu
            seconds = time.perf_counter() - start
            if mode != "single":  # the parent's own work (receiving and unpickling batches); single counts it already
                cpu += time.process_time() - parent_cpu
            print(json.dumps({"images": count, "seconds": seconds, "cpuSeconds": cpu}), flush=True)


if __name__ == "__main__":
    main()
