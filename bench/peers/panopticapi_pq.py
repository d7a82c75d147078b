"""bench/coco-eval.ts's PQ peer: panopticapi's pq_compute (its own multiprocessing pool, one process per core) on the
files each request names. Served as bench/side-by-side.ts's PeerServer expects:

  /usr/bin/python3 bench/peers/panopticapi_pq.py --serve PANOPTICAPI_DIR
  request {"op": "pq", "gt": "gt.json", "pred": "pred.json"} -> {"seconds": wall time of pq_compute, "results": ...}

pq_compute's progress lines go to /dev/null (stdout carries the answers). Needs numpy and PIL.
"""
import contextlib
import os
import platform
import subprocess
import sys
import time

from serve import serve


def main():
    api_dir = sys.argv[sys.argv.index("--serve") + 1]
    sys.path.insert(0, api_dir)
    import numpy
    import PIL
    from panopticapi.evaluation import pq_compute

    def pq(request):
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            start = time.perf_counter()
            results = pq_compute(request["gt"], request["pred"])
            seconds = time.perf_counter() - start
        plain = {name: {k: float(v) for k, v in results[name].items()} for name in ("All", "Things", "Stuff")}
        plain["per_class"] = {str(c): {k: float(v) for k, v in s.items()} for c, s in results["per_class"].items()}
        return {"seconds": seconds, "results": plain}

    commit = subprocess.run(["git", "-C", api_dir, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    serve({"pq": pq}, {"versions": {"python": platform.python_version(), "numpy": numpy.__version__,
                                    "pillow": PIL.__version__, "panopticapi": commit or "unknown"},
                       "cores": os.cpu_count()})


if __name__ == "__main__":
    main()
