#!/usr/bin/python3
"""Reference values for segkit's losses from PyTorch, written to src/losses/fixtures/torch-reference.json.

Run with Debian's interpreter (python3-torch, python3-numpy):  /usr/bin/python3 scripts/losses_reference.py

Inputs are fixed and small: logits [B=2, H=4, W=5, C] (C = 3 multiclass, C = 1 binary; seeded, float32, stored
NHWC as segkit takes them) and int targets [B, H, W] with ignore pixels (255), one target where class 2 is absent
and a binary target with no positive pixel. Every value is computed in float64 from the float32 inputs, with its
gradient w.r.t. the logits (NHWC, flattened) by autograd.

- "ce":  torch.nn.functional.cross_entropy(weight=, ignore_index=, label_smoothing=, reduction="mean").
- "bce": torch.nn.functional.binary_cross_entropy_with_logits on the non-ignored pixels, reduction="mean".
- "dice", "focal": segmentation_models_pytorch is not installed here, so DiceLoss and FocalLoss are reimplemented
  below line by line from its source (github.com/qubvel-org/segmentation_models.pytorch, read at commits
  dice.py bc597e9a, focal.py 744e3724 and 0d10bc20, _functional.py 97dce8c1 and 14c60e20, which agree for these
  options): `losses/dice.py` (DiceLoss, modes binary/multiclass, from_logits=True, log_loss=False,
  classes=None, dims=(0, 2), `mask = y_true.sum(dims) > 0`), `losses/focal.py` (FocalLoss, normalized=False,
  reduced_threshold=None, reduction="mean") and `losses/_functional.py` (soft_dice_score, focal_loss_with_logits).
  segkit's Dice class weights are an extension smp does not have: the per-class losses' weighted mean
  sum(w_c * loss_c) / sum(w_c), which is smp's plain mean when every weight is 1.
- "ce+dice", "bce+dice" and {"sum": [...]}: the weighted sums of the above.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

IGNORE = 255
OUT = os.path.join(os.path.dirname(__file__), "..", "src", "losses", "fixtures", "torch-reference.json")


# --- segmentation_models_pytorch, losses/_functional.py -------------------------------------------------------
def soft_dice_score(output, target, smooth=0.0, eps=1e-7, dims=None):
    intersection = torch.sum(output * target, dim=dims)
    cardinality = torch.sum(output + target, dim=dims)
    return (2.0 * intersection + smooth) / (cardinality + smooth).clamp_min(eps)


def focal_loss_with_logits(output, target, gamma=2.0, alpha=0.25):
    target = target.type(output.type())
    logpt = F.binary_cross_entropy_with_logits(output, target, reduction="none")
    pt = torch.exp(-logpt)
    focal_term = (1.0 - pt).pow(gamma)
    loss = focal_term * logpt
    if alpha is not None:
        loss *= alpha * target + (1 - alpha) * (1 - target)
    return loss.mean()


# --- segmentation_models_pytorch, losses/dice.py: DiceLoss.forward (+ segkit's class weights) -----------------
def smp_dice(y_pred, y_true, mode, smooth=0.0, eps=1e-7, ignore_index=None, class_weights=None):
    """y_pred: logits [N, C, H, W]; y_true: [N, H, W] long."""
    y_pred = y_pred.log_softmax(dim=1).exp() if mode == "multiclass" else F.logsigmoid(y_pred).exp()
    bs = y_true.size(0)
    num_classes = y_pred.size(1)
    dims = (0, 2)
    if mode == "binary":
        y_true = y_true.view(bs, 1, -1)
        y_pred = y_pred.view(bs, 1, -1)
        if ignore_index is not None:
            mask = y_true != ignore_index
            y_pred = y_pred * mask
            y_true = y_true * mask
    else:
        y_true = y_true.view(bs, -1)
        y_pred = y_pred.view(bs, num_classes, -1)
        if ignore_index is not None:
            mask = y_true != ignore_index
            y_pred = y_pred * mask.unsqueeze(1)
            y_true = F.one_hot((y_true * mask).to(torch.long), num_classes)
            y_true = y_true.permute(0, 2, 1) * mask.unsqueeze(1)
        else:
            y_true = F.one_hot(y_true, num_classes).permute(0, 2, 1)
    scores = soft_dice_score(y_pred, y_true.type_as(y_pred), smooth=smooth, eps=eps, dims=dims)
    loss = 1.0 - scores
    mask = y_true.sum(dims) > 0  # classes absent from the batch contribute 0 (and still count in the mean)
    loss *= mask.to(loss.dtype)
    if class_weights is None:
        return loss.mean()
    w = torch.tensor(class_weights, dtype=loss.dtype)
    return (w * loss).sum() / w.sum()


# --- segmentation_models_pytorch, losses/focal.py: FocalLoss.forward -----------------------------------------
def smp_focal(y_pred, y_true, mode, alpha=None, gamma=2.0, ignore_index=None):
    """y_pred: logits [N, C, H, W]; y_true: [N, H, W] long."""
    if mode == "binary":
        y_true = y_true.reshape(-1)
        y_pred = y_pred.reshape(-1)
        if ignore_index is not None:
            not_ignored = y_true != ignore_index
            y_pred = y_pred[not_ignored]
            y_true = y_true[not_ignored]
        return focal_loss_with_logits(y_pred, y_true, gamma=gamma, alpha=alpha)
    loss = 0
    if ignore_index is not None:
        not_ignored = y_true != ignore_index
    for cls in range(y_pred.size(1)):
        cls_y_true = (y_true == cls).long()
        cls_y_pred = y_pred[:, cls, ...]
        if ignore_index is not None:
            cls_y_true = cls_y_true[not_ignored]
            cls_y_pred = cls_y_pred[not_ignored]
        loss += focal_loss_with_logits(cls_y_pred, cls_y_true, gamma=gamma, alpha=alpha)
    return loss


# --- the segkit loss configs, evaluated with the above -------------------------------------------------------
NAMED = {
    "ce+dice": {"sum": [{"loss": "ce", "weight": 1}, {"loss": "dice", "weight": 1}]},
    "bce+dice": {"sum": [{"loss": "bce", "weight": 1}, {"loss": "dice", "weight": 1}]},
}


def torch_loss(config, logits, target):
    """logits: [N, C, H, W] float64; target: [N, H, W] long. config: a segkit LossConfig."""
    if isinstance(config, str):
        config = NAMED.get(config, {"loss": config})
    if "sum" in config:
        return sum(item.get("weight", 1) * torch_loss(item["loss"], logits, target) for item in config["sum"])
    o = config.get("options", {})
    ignore = o.get("ignoreIndex", IGNORE)
    mode = "binary" if logits.size(1) == 1 else "multiclass"
    name = config["loss"]
    if name == "ce":
        w = o.get("classWeights")
        return F.cross_entropy(
            logits,
            target,
            weight=None if w is None else torch.tensor(w, dtype=logits.dtype),
            ignore_index=ignore,
            label_smoothing=o.get("labelSmoothing", 0.0),
        )
    if name == "bce":
        keep = target != ignore
        return F.binary_cross_entropy_with_logits(logits[:, 0][keep], target[keep].to(logits.dtype))
    if name == "dice":
        return smp_dice(
            logits,
            target,
            mode,
            smooth=o.get("smooth", 0.0),
            eps=o.get("eps", 1e-7),
            ignore_index=ignore,
            class_weights=o.get("classWeights"),
        )
    if name == "focal":
        return smp_focal(logits, target, mode, alpha=o.get("alpha"), gamma=o.get("gamma", 2.0), ignore_index=ignore)
    raise ValueError(name)


def check_label_smoothing_with_weights(logits, target, w, eps):
    """PyTorch's label smoothing with class weights, written out: both terms divide by sum(w[y]) over the kept
    pixels, and the smoothing term weighs class c by w[c] (not by the pixel's w[y]):
    ((1 - eps) * sum_i w[y_i] * -logp_i[y_i] + eps / C * sum_i sum_c w[c] * -logp_i[c]) / sum_i w[y_i]."""
    logp = F.log_softmax(logits, dim=1).permute(0, 2, 3, 1)[target != IGNORE]  # [P, C]
    y = target[target != IGNORE]
    wt = torch.tensor(w, dtype=logits.dtype)
    nll = -(wt[y] * logp.gather(1, y[:, None])[:, 0]).sum()
    smooth = -(logp * wt).sum()
    by_hand = ((1 - eps) * nll + eps / logits.size(1) * smooth) / wt[y].sum()
    torch_value = F.cross_entropy(logits, target, weight=wt, ignore_index=IGNORE, label_smoothing=eps)
    assert abs(float(by_hand - torch_value)) < 1e-12, (float(by_hand), float(torch_value))


def main():
    g = torch.Generator().manual_seed(20261122)
    B, H, W = 2, 4, 5
    logits = {
        "multiclass": (torch.randn(B, H, W, 3, generator=g) * 2).float(),
        "binary": (torch.randn(B, H, W, 1, generator=g) * 2).float(),
    }
    ignored = torch.rand(B, H, W, generator=g) < 0.2
    absent = torch.randint(0, 2, (B, H, W), generator=g)  # classes 0 and 1 only: class 2 absent
    absent[ignored] = IGNORE
    targets = {
        "absent": absent,  # 3 classes, class 2 absent, ignore pixels
        "full": torch.randint(0, 3, (B, H, W), generator=g),  # every class, nothing ignored
        "binary": torch.where(ignored, torch.tensor(IGNORE), torch.randint(0, 2, (B, H, W), generator=g)),
        "binary-empty": torch.where(ignored, torch.tensor(IGNORE), torch.tensor(0)),  # no positive pixel
    }
    assert (targets["absent"] == 2).sum() == 0 and (targets["absent"] == IGNORE).sum() > 0
    assert all((targets["full"] == c).any() for c in range(3))

    mc, bin_ = "multiclass", "binary"
    W3 = [0.2, 1.0, 3.0]
    cases = [
        ("ce", mc, "absent", "ce"),
        ("ce class weights", mc, "absent", {"loss": "ce", "options": {"classWeights": W3}}),
        ("ce label smoothing", mc, "absent", {"loss": "ce", "options": {"labelSmoothing": 0.1}}),
        ("ce weights + smoothing", mc, "absent",
         {"loss": "ce", "options": {"classWeights": W3, "labelSmoothing": 0.1}}),
        ("ce all classes", mc, "full", "ce"),
        ("ce all classes, weights + smoothing", mc, "full",
         {"loss": "ce", "options": {"classWeights": [1.0, 2.0, 0.5], "labelSmoothing": 0.2}}),
        ("ce ignore index 1", mc, "full", {"loss": "ce", "options": {"ignoreIndex": 1}}),
        ("bce", bin_, "binary", "bce"),
        ("bce no positive", bin_, "binary-empty", "bce"),
        ("dice", mc, "absent", "dice"),
        ("dice smooth 1", mc, "absent", {"loss": "dice", "options": {"smooth": 1.0}}),
        ("dice class weights", mc, "absent", {"loss": "dice", "options": {"classWeights": W3}}),
        ("dice all classes", mc, "full", "dice"),
        ("dice all classes, smooth 0.5, weights", mc, "full",
         {"loss": "dice", "options": {"smooth": 0.5, "classWeights": [1.0, 2.0, 0.5]}}),
        ("dice binary", bin_, "binary", "dice"),
        ("dice binary smooth 1", bin_, "binary", {"loss": "dice", "options": {"smooth": 1.0}}),
        ("dice binary no positive", bin_, "binary-empty", "dice"),
        ("focal", mc, "absent", "focal"),
        ("focal alpha 0.25", mc, "absent", {"loss": "focal", "options": {"alpha": 0.25}}),
        ("focal all classes, alpha 0.25, gamma 1.5", mc, "full",
         {"loss": "focal", "options": {"alpha": 0.25, "gamma": 1.5}}),
        ("focal binary", bin_, "binary", "focal"),
        ("focal binary alpha 0.75 gamma 3", bin_, "binary", {"loss": "focal", "options": {"alpha": 0.75, "gamma": 3}}),
        ("focal binary no positive", bin_, "binary-empty", "focal"),
        ("ce+dice", mc, "absent", "ce+dice"),
        ("ce+dice all classes", mc, "full", "ce+dice"),
        ("bce+dice", bin_, "binary", "bce+dice"),
        ("weighted sum", mc, "absent", {"sum": [
            {"loss": {"loss": "ce", "options": {"labelSmoothing": 0.1}}, "weight": 0.5},
            {"loss": {"loss": "dice", "options": {"smooth": 1.0}}, "weight": 2},
            {"loss": "focal", "weight": 1},
        ]}),
    ]

    check_label_smoothing_with_weights(logits[mc].double().permute(0, 3, 1, 2), targets["absent"], W3, 0.1)
    out = []
    for name, which, target, config in cases:
        x = logits[which].double().requires_grad_(True)  # NHWC leaf, so the gradient comes out NHWC
        value = torch_loss(config, x.permute(0, 3, 1, 2), targets[target])
        (grad,) = torch.autograd.grad(value, x)
        out.append({
            "name": name,
            "logits": which,
            "target": target,
            "loss": config,
            "expected": float(value),
            "grad": [float(f"{v:.10g}") for v in grad.reshape(-1).tolist()],
        })
        print(f"{name:45s} {float(value):.8f}")
    doc = {
        "generator": "scripts/losses_reference.py",
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__},
        "ignoreIndex": IGNORE,
        # float32 values in their shortest round-trip form (they parse back to the same float32)
        "logits": {k: {"shape": list(v.shape), "data": [float(str(f)) for f in v.reshape(-1).numpy()]}
                   for k, v in logits.items()},
        "targets": {k: {"shape": list(v.shape), "data": [int(i) for i in v.reshape(-1)]} for k, v in targets.items()},
        "cases": out,
    }
    with open(OUT + ".tmp", "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    os.replace(OUT + ".tmp", OUT)
    print(f"wrote {OUT}: {len(out)} cases")


if __name__ == "__main__":
    main()
