"""Peer for bench/metrics.ts: confusion-matrix accumulation with NumPy bincount (the usual Python idiom, as in
mmsegmentation's intersect_and_union and torchmetrics' _bincount).

Reads N truth and N prediction masks (uint8, H x W each) from a raw file: all truths, then all predictions.
Per image: keep = truth != ignore; counts += bincount(C * truth[keep] + pred[keep], minlength=C*C).
One warm-up pass, then `repeats` timed passes over all images; prints one JSON line with megapixels/s.

Usage: /usr/bin/python3 numpy_confusion.py FILE N H W C IGNORE REPEATS
"""

import json
import platform
import sys
import time

try:
    import numpy as np
except ImportError as err:
    print(json.dumps({"error": f"missing module: {err.name}"}))
    sys.exit(3)


def main():
    path, n, h, w, c, ignore, repeats = sys.argv[1], *map(int, sys.argv[2:8])
    data = np.fromfile(path, dtype=np.uint8).reshape(2, n, h, w)
    truths, preds = data[0], data[1]

    def one_pass():
        counts = np.zeros(c * c, np.int64)
        for t, p in zip(truths, preds):
            keep = t != ignore
            counts += np.bincount(c * t[keep].astype(np.int64) + p[keep], minlength=c * c)
        return counts

    first = one_pass()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        one_pass()
        rates.append(n * h * w / 1e6 / (time.perf_counter() - start))
    print(
        json.dumps(
            {
                "versions": {"python": platform.python_version(), "numpy": np.__version__},
                "megapixelsPerSecond": {"best": max(rates), "median": sorted(rates)[len(rates) // 2], "passes": rates},
                "confusion": first.reshape(c, c).tolist(),
            }
        )
    )


if __name__ == "__main__":
    main()
