#!/usr/bin/python3
"""Reference values for segkit's metrics from scikit-learn, written to src/metrics/fixtures/sklearn-reference.json.

Run with Debian's interpreter (python3-sklearn, python3-numpy):  /usr/bin/python3 scripts/metrics_reference.py
Each case holds small class-index masks (truth with ignore pixels, prediction, optional valid region) and what
scikit-learn computes on the scored pixels (truth != ignore and valid != 0):
confusion_matrix, accuracy_score, and per class jaccard_score / f1_score / precision_score / recall_score with
zero_division=0 (average=None), their macro means (average="macro", zero_division=0), the same means leaving out
classes whose denominator is zero (segkit's default "exclude"), frequency-weighted IoU, and the per-image means.
"""
import json
import os
import sys

import numpy as np
import sklearn
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, jaccard_score, precision_score, recall_score

IGNORE = 255
OUT = os.path.join(os.path.dirname(__file__), "..", "src", "metrics", "fixtures", "sklearn-reference.json")


def scores(t, p, C):
    labels = list(range(C))
    kw = dict(labels=labels, zero_division=0)
    per = {
        "iou": jaccard_score(t, p, average=None, **kw),
        "dice": f1_score(t, p, average=None, **kw),
        "precision": precision_score(t, p, average=None, **kw),
        "recall": recall_score(t, p, average=None, **kw),
    }
    tc = np.bincount(t, minlength=C)[:C]
    pc = np.bincount(p, minlength=C)[:C]
    defined = {"iou": tc + pc > 0, "dice": tc + pc > 0, "precision": pc > 0, "recall": tc > 0}
    exclude = {k: (float(np.mean(v[defined[k]])) if defined[k].any() else None) for k, v in per.items()}
    macro0 = {
        "iou": jaccard_score(t, p, average="macro", **kw),
        "dice": f1_score(t, p, average="macro", **kw),
        "precision": precision_score(t, p, average="macro", **kw),
        "recall": recall_score(t, p, average="macro", **kw),
    }
    return per, exclude, macro0, tc


def case(name, truth, pred, C, valid=None):
    """truth, pred: [N, H, W] uint8; valid: [N, H, W] uint8 or None."""
    keep = truth != IGNORE
    if valid is not None:
        keep &= valid != 0
    t = truth[keep].astype(np.int64)
    p = pred[keep].astype(np.int64)
    per, exclude, macro0, tc = scores(t, p, C)
    total = tc.sum()
    fw = float(np.sum(tc / total * per["iou"])) if total else None
    images = {"macroIoU": [], "microIoU": [], "pixelAccuracy": []}
    for i in range(truth.shape[0]):
        k = keep[i]
        ti, pi = truth[i][k].astype(np.int64), pred[i][k].astype(np.int64)
        if ti.size == 0:
            continue
        _, ex, _, _ = scores(ti, pi, C)
        images["macroIoU"].append(ex["iou"])
        images["microIoU"].append(jaccard_score(ti, pi, labels=list(range(C)), average="micro", zero_division=0))
        images["pixelAccuracy"].append(accuracy_score(ti, pi))
    return {
        "name": name,
        "numClasses": C,
        "ignoreIndex": IGNORE,
        "shape": list(truth.shape),
        "truth": truth.ravel().tolist(),
        "pred": pred.ravel().tolist(),
        "valid": None if valid is None else valid.ravel().tolist(),
        "expected": {
            "confusion": confusion_matrix(t, p, labels=list(range(C))).tolist(),
            "pixelAccuracy": accuracy_score(t, p),
            "perClassZeroDivision0": {k: v.tolist() for k, v in per.items()},
            "macroZeroDivision0": macro0,
            "macroExclude": exclude,
            "frequencyWeightedIoU": fw,
            "perImage": {k: float(np.mean(v)) for k, v in images.items()},
        },
    }


def main():
    rng = np.random.RandomState(20261122)
    cases = []
    # 1. Random labels with 10% ignored truth pixels.
    truth = rng.randint(0, 4, size=(3, 16, 16)).astype(np.uint8)
    pred = np.where(rng.rand(3, 16, 16) < 0.6, truth, rng.randint(0, 4, size=(3, 16, 16))).astype(np.uint8)
    truth[rng.rand(3, 16, 16) < 0.1] = IGNORE
    cases.append(case("random-4-classes-with-ignore", truth, pred, 4))
    # 2. Absent classes: 5 classes, class 4 nowhere, class 3 predicted only, class 2 in the truth only.
    truth = rng.choice([0, 1, 2], size=(2, 12, 12)).astype(np.uint8)
    pred = rng.choice([0, 1, 3], size=(2, 12, 12)).astype(np.uint8)
    cases.append(case("absent-classes", truth, pred, 5))
    # 3. Single-class images: all background, predicted all background in one and half wrong in the other.
    truth = np.zeros((2, 8, 8), np.uint8)
    pred = np.zeros((2, 8, 8), np.uint8)
    pred[1, :, :4] = 1
    cases.append(case("single-class-images", truth, pred, 3))
    # 4. Structured: two squares, the prediction shifted by 2 px, with a valid region (a disc).
    truth = np.zeros((2, 24, 24), np.uint8)
    truth[:, 4:14, 4:14] = 1
    truth[:, 12:20, 14:22] = 2
    pred = np.roll(truth, 2, axis=2)
    yy, xx = np.mgrid[:24, :24]
    valid = np.broadcast_to(((yy - 11.5) ** 2 + (xx - 11.5) ** 2 < 11**2).astype(np.uint8), truth.shape).copy()
    cases.append(case("shifted-squares-valid-region", truth, pred, 3, valid))
    # 5. Binary masks (0/1), many pixels: checks large counts.
    truth = (rng.rand(1, 64, 64) < 0.3).astype(np.uint8)
    pred = (rng.rand(1, 64, 64) < 0.35).astype(np.uint8)
    cases.append(case("binary-random", truth, pred, 2))
    doc = {
        "generator": "scripts/metrics_reference.py",
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "sklearn": sklearn.__version__},
        "cases": cases,
    }
    with open(OUT + ".tmp", "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    os.replace(OUT + ".tmp", OUT)
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
