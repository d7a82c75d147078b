#!/usr/bin/env python3
"""PyTorch peer of bench/sam2.ts: the official SAM2VideoPredictor (facebookresearch/sam2) tracking one object.

One run per process (the bench starts a fresh process per pass, so the peak memory is this side's alone): loads the
model, opens the clip (`init_state`: every frame decoded, resized to 1024 x 1024 and kept in RAM, frame 0 encoded,
as the official predictor does), adds one positive point on frame 0 (`add_new_points_or_box`), then
`propagate_in_video` forward, timing every yielded frame. torch.set_num_threads(--threads), inference_mode.

Models (the same weights as segkit's ONNX graphs):
  --model tiny     the tiny fixture model, rebuilt as scripts/fixtures/make_sam2.py builds it (torch.manual_seed(2024),
                   build_model("2.1", video=True, **TINY), redraw): deterministic for one torch version.
  --checkpoint PT  a state dict such as make_sam2.py --hiera-t's sam2.1_hiera_t_random.pt, with --config.
Frames: a directory of PNG frames (name order), read as make_sam2.py's png_frame_loader does (the official JPEG
folder loader, step for step).

Prints one JSON line: initMs, promptMs, frameMs (per propagated frame, frame index order; the first is the prompted
frame itself), peakRssMB (ru_maxrss: the whole process, model loading included), rssAfterLoadMB; writes the masks
(uint8 0/1 at frame size) of every frame to --masks DIR/<frame>.bin when given.

    /opt/segkit-peer/bin/python bench/peers/sam2_video.py --sam2 /tmp/sam2-src --model tiny \
        --frames src/sam/fixtures/sam2/clip --point 12,16
"""

import argparse
import json
import os
import resource
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "scripts", "fixtures"))
import export_sam2_onnx as ex  # noqa: E402


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sam2", required=True, help="facebookresearch/sam2 repository root")
    p.add_argument("--model", choices=["tiny", "checkpoint"], default="checkpoint")
    p.add_argument("--checkpoint")
    p.add_argument("--config", default="sam2.1_hiera_t")
    p.add_argument("--frames", required=True)
    p.add_argument("--point", required=True, help="x,y on frame 0 (frame pixels)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--masks", help="directory to write <frame>.bin masks into")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    ex.import_sam2(a.sam2)
    import make_sam2
    import sam2.sam2_video_predictor as vp

    vp.load_video_frames = make_sam2.png_frame_loader()
    if a.model == "tiny":
        torch.manual_seed(make_sam2.SEED)
        model = make_sam2.redraw(ex.build_model("2.1", video=True, **ex.TINY))
    else:
        model, _, _ = ex.build_from_checkpoint(a.config, a.checkpoint, video=True)
    model.eval()
    after_load = rss_mb()
    x, y = (float(v) for v in a.point.split(","))
    frame_ms = []
    with torch.inference_mode():
        t = time.perf_counter()
        state = model.init_state(video_path=a.frames)
        init_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        model.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=np.array([[x, y]], np.float32),
                                    labels=np.array([1], np.int32))
        prompt_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        for f, _ids, masks in model.propagate_in_video(state):
            frame_ms.append((time.perf_counter() - t) * 1000)
            if a.masks:
                os.makedirs(a.masks, exist_ok=True)
                (masks[0, 0] > 0).numpy().astype(np.uint8).tofile(os.path.join(a.masks, f"{f}.bin"))
            t = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(dict(initMs=init_ms, promptMs=prompt_ms, frameMs=frame_ms, peakRssMB=peak,
                          rssAfterLoadMB=after_load, torch=torch.__version__, threads=torch.get_num_threads())))


if __name__ == "__main__":
    main()
