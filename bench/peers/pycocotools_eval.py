"""The pycocotools side of bench/coco-eval.ts: COCO(gt), loadRes(results), COCOeval evaluate + accumulate +
summarize, timed here (the time of the request's round trip is not counted). Run with --serve (bench/peers/serve.py's
protocol): requests {"op": "eval", "gt": path, "dt": path, "iouType": "segm" | "bbox"} -> {"seconds", "cpuSeconds", "stats"}."""
import contextlib
import io
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from importlib.metadata import version  # noqa: E402

import numpy as np  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402
from serve import serve  # noqa: E402


def evaluate(request):
    start = time.perf_counter()
    cpu = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(request["gt"])
        dt = gt.loadRes(request["dt"])
        e = COCOeval(gt, dt, request["iouType"])
        e.evaluate()
        e.accumulate()
        e.summarize()
    cpu = time.process_time() - cpu
    return {"seconds": time.perf_counter() - start, "cpuSeconds": cpu, "stats": [float(v) for v in e.stats]}


if __name__ == "__main__":
    versions = {"python": platform.python_version(), "torch": "-", "numpy": np.__version__,
                "pycocotools": version("pycocotools")}
    serve({"eval": evaluate}, {"versions": versions})
