#!/usr/bin/python3
"""Reference values for segkit's boundary metrics, written to src/metrics/fixtures/boundary-reference.json.

Run with Debian's interpreter (python3-numpy, python3-scipy):  /usr/bin/python3 scripts/boundary_reference.py
A straightforward NumPy/SciPy implementation of the published formulas:
- Boundary F1 (Csurka et al. 2013): boundary = pixels of class c with a 4-neighbour of another label; precision and
  recall from Euclidean distance transforms (scipy.ndimage.distance_transform_edt) within the tolerance; F1 per
  image and class, averaged over the images where the class has a boundary.
- Boundary IoU (Cheng et al. 2021): band = mask minus its binary erosion by a 3x3 square, d times, border 0
  (scipy.ndimage.binary_erosion), d = max(1, round(ratio * diagonal)); intersection and union summed over images.
Pixels whose truth is the ignore index (255) are left out of all counts, and take the predicted label before
boundaries are found (so void edges are no true boundary). Also the image-wise mean: per image, the mean BF over
its classes with a boundary, then the mean over images (MATLAB's MeanBFScore).
"""
import json
import os
import sys

import numpy as np
import scipy
from scipy import ndimage

IGNORE = 255
OUT = os.path.join(os.path.dirname(__file__), "..", "src", "metrics", "fixtures", "boundary-reference.json")


def boundary(lab):
    b = np.zeros(lab.shape, bool)
    b[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    b[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    b[1:, :] |= lab[1:, :] != lab[:-1, :]
    b[:-1, :] |= lab[:-1, :] != lab[1:, :]
    return b


def dist_to(mask):
    return ndimage.distance_transform_edt(~mask) if mask.any() else np.full(mask.shape, np.inf)


def evaluate(truths, preds, C, tolerance=None, tolerance_ratio=None, dilation_ratio=0.02):
    f1_sum, f1_n = np.zeros(C), np.zeros(C)
    inter, union = np.zeros(C), np.zeros(C)
    image_means = []
    for t, p in zip(truths, preds):
        scored = t != IGNORE
        t = np.where(scored, t, p)
        h, w = t.shape
        diag = np.hypot(w, h)
        tol = tolerance_ratio * diag if tolerance_ratio is not None else tolerance
        d = max(1, int(round(dilation_ratio * diag)))
        tb, pb = boundary(t), boundary(p)
        image_f1 = []
        for c in range(C):
            tbc, pbc = tb & (t == c), pb & (p == c)
            nt, np_ = (tbc & scored).sum(), (pbc & scored).sum()
            if nt + np_ > 0:
                P = (dist_to(tbc)[pbc & scored] <= tol).mean() if np_ else 0.0
                R = (dist_to(pbc)[tbc & scored] <= tol).mean() if nt else 0.0
                f = 2 * P * R / (P + R) if P + R > 0 else 0.0
                f1_sum[c] += f
                f1_n[c] += 1
                image_f1.append(f)
        if image_f1:
            image_means.append(np.mean(image_f1))
        for c in range(C):
            gm, pm = t == c, p == c
            if not (gm.any() or pm.any()):
                continue
            st = np.ones((3, 3), bool)
            gband = gm & ~ndimage.binary_erosion(gm, st, iterations=d, border_value=0)
            pband = pm & ~ndimage.binary_erosion(pm, st, iterations=d, border_value=0)
            inter[c] += (gband & pband & scored).sum()
            union[c] += ((gband | pband) & scored).sum()
    f1 = [float(s / n) if n else None for s, n in zip(f1_sum, f1_n)]
    iou = [float(i / u) if u else None for i, u in zip(inter, union)]
    return {"f1": f1, "iou": iou, "imageMeanF1": float(np.mean(image_means)) if image_means else None}


def blob_scene(rng, h, w, C, k):
    """Labels from k random discs and rectangles of classes 1..C-1 on class 0."""
    lab = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[:h, :w]
    for _ in range(k):
        c = rng.randint(1, C)
        if rng.rand() < 0.5:
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(3, min(h, w) / 3)
            lab[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = c
        else:
            y0, x0 = rng.randint(0, h - 4), rng.randint(0, w - 4)
            lab[y0 : y0 + rng.randint(3, h // 2), x0 : x0 + rng.randint(3, w // 2)] = c
    return lab


def perturb(rng, lab, C):
    """A 'prediction': the labels shifted by up to 2 px, with a few random blobs added."""
    p = np.roll(lab, (rng.randint(-2, 3), rng.randint(-2, 3)), axis=(0, 1)).copy()
    h, w = lab.shape
    for _ in range(2):
        y0, x0 = rng.randint(0, h - 6), rng.randint(0, w - 6)
        p[y0 : y0 + 5, x0 : x0 + 5] = rng.randint(0, C)
    return p


def main():
    rng = np.random.RandomState(7)
    cases = []
    configs = [
        ("tolerance-2px", {"tolerance": 2}, 3, 48, 64),
        ("tolerance-1px-wide-band", {"tolerance": 1, "dilation_ratio": 0.1}, 4, 40, 56),
        ("tolerance-ratio", {"tolerance_ratio": 0.0075 * 4}, 3, 64, 64),
    ]
    for name, kw, C, h, w in configs:
        truths = [blob_scene(rng, h, w, C, 5) for _ in range(3)]
        preds = [perturb(rng, t, C) for t in truths]
        truths[0][h // 3 : h // 2, : w // 4] = IGNORE  # an ignored region
        cases.append(
            {
                "name": name,
                "numClasses": C,
                "options": {
                    "tolerance": kw.get("tolerance"),
                    "toleranceRatio": kw.get("tolerance_ratio"),
                    "dilationRatio": kw.get("dilation_ratio", 0.02),
                },
                "height": h,
                "width": w,
                "truth": [t.ravel().tolist() for t in truths],
                "pred": [p.ravel().tolist() for p in preds],
                "expected": evaluate(truths, preds, C, **kw),
            }
        )
    doc = {
        "generator": "scripts/boundary_reference.py",
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__},
        "cases": cases,
    }
    with open(OUT + ".tmp", "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    os.replace(OUT + ".tmp", OUT)
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
