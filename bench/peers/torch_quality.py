"""Peer for bench/quality.ts (Oxford-IIIT Pet): segkit's U-Net recipe trained in PyTorch (Debian python3-torch) on
the very arrays segkit trains on, then run on the test arrays.

Same as segkit's `fit` run in bench/quality.ts:
- architecture: `UNet` of torch_train.py (segkit's `unet` 16-32-64-128, batch norm, 2x2 transposed convs, 1x1 head;
  input rescaled to [0, 1] inside);
- initialisation as tfjs-layers': conv and transposed-conv kernels glorotNormal (a normal with
  std = sqrt(2 / (fan_in + fan_out)) truncated at 2 std), biases 0, batch-norm gamma 1 and beta 0;
- batch norm as Keras': momentum `bnMomentum` in Keras's convention (PyTorch momentum = 1 - bnMomentum; default
  0.99) and epsilon 1e-3;
- loss `loss`: "ce", the mean cross-entropy over the pixels not equal to the ignore index, or "ce+dice", that plus
  segkit's soft Dice loss (softmax probabilities at scored pixels, per class over the batch, (2 I) / max(P + T, 1e-7),
  1 - dice averaged over all classes with absent classes counting 0);
- Adam(lr, beta1, beta2, epsilon as given; segkit's default epsilon is Keras's 1e-7), learning rate set once per
  epoch by the cosine formula lr * (1 + cos(pi * epoch_index / epochs)) / 2;
- batches of `batchSize` in a new random order every epoch (the last one smaller). The arrays are already at the
  training size; with `trainEpochs` (one array pair per epoch) epoch e trains on pair e, which bench/quality.ts
  fills with segkit's augmentation of the same samples with the same draws as segkit's epoch e. The order is this
  script's own (torch.Generator seeded with `seed`).
Evaluation: eval mode (batch-norm moving statistics), argmax of the logits; the predicted labels are written to
`predictions` for bench/quality.ts to score with segkit's metrics.

Usage: /usr/bin/python3 torch_quality.py MANIFEST.json
MANIFEST: {"size": [H, W], "classes": C, "ignoreIndex": 255, "epochs", "batchSize", "lr", "beta1", "beta2",
  "epsilon", "seed", "threads", "train": {"n", "images", "masks"}, "test": {"n", "images"}, "predictions": path,
  optional "loss": "ce" | "ce+dice", "bnMomentum", "trainEpochs": [{"images", "masks"}] * epochs}
Arrays are raw uint8 files: images [n, H, W, 3] (RGB), masks and predictions [n, H, W] (class indices).
Prints per-epoch lines to stderr and one JSON line to stdout.
"""
import json
import math
import os
import platform
import sys
import time

# As the other peers: OpenMP threads wait passively instead of spinning on the cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as err:
    print(json.dumps({"error": f"missing module: {err.name}"}))
    sys.exit(3)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import UNet  # noqa: E402


def keras_init(model, bn_momentum=0.99):
    """tfjs-layers' defaults: glorotNormal kernels (truncated normal), zero biases; Keras batch-norm constants."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(m.weight)
            std = math.sqrt(2.0 / (fan_in + fan_out))
            nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            m.momentum = 1 - bn_momentum
            m.eps = 1e-3


def read(path, n, shape):
    return np.fromfile(path, dtype=np.uint8).reshape(n, *shape)


def dice_loss(logits, y, classes, ignore_index):
    """segkit's soft Dice (losses.ts diceLoss, smooth 0, eps 1e-7, no class weights)."""
    valid = (y != ignore_index).unsqueeze(1).float()
    t = F.one_hot(torch.where(y == ignore_index, torch.zeros_like(y), y), classes).permute(0, 3, 1, 2).float() * valid
    p = torch.softmax(logits, 1) * valid
    dims = (0, 2, 3)
    dice = 2 * (p * t).sum(dims) / torch.clamp((p + t).sum(dims), min=1e-7)
    present = (t.sum(dims) > 0).float()
    return ((1 - dice) * present).sum() / classes


def to_input(images):
    """uint8 [B, H, W, 3] -> float32 [B, 3, H, W] 0..255 (the model rescales)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().contiguous()


def main():
    with open(sys.argv[1]) as f:
        m = json.load(f)
    torch.set_num_threads(m["threads"])
    torch.manual_seed(m["seed"])
    h, w = m["size"]
    x_train = read(m["train"]["images"], m["train"]["n"], (h, w, 3))
    y_train = read(m["train"]["masks"], m["train"]["n"], (h, w))
    x_test = read(m["test"]["images"], m["test"]["n"], (h, w, 3))

    model = UNet(classes=m["classes"])
    keras_init(model, m.get("bnMomentum", 0.99))
    with_dice = m.get("loss", "ce") == "ce+dice"
    per_epoch = m.get("trainEpochs")
    opt = torch.optim.Adam(model.parameters(), lr=m["lr"], betas=(m["beta1"], m["beta2"]), eps=m["epsilon"])
    order_rng = torch.Generator().manual_seed(m["seed"])
    n, batch, epochs = len(x_train), m["batchSize"], m["epochs"]

    started = time.perf_counter()
    history = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        lr = m["lr"] * (1 + math.cos(math.pi * epoch / epochs)) / 2
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        if per_epoch:
            x_train = read(per_epoch[epoch]["images"], n, (h, w, 3))
            y_train = read(per_epoch[epoch]["masks"], n, (h, w))
        total = 0.0
        order = torch.randperm(n, generator=order_rng).numpy()
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            x = to_input(x_train[idx])
            y = torch.from_numpy(y_train[idx]).long()
            opt.zero_grad(set_to_none=True)
            logits = model(x)
            loss = F.cross_entropy(logits, y, ignore_index=m["ignoreIndex"])
            if with_dice:
                loss = loss + dice_loss(logits, y, m["classes"], m["ignoreIndex"])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        seconds = time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "lr": lr, "loss": total / n, "seconds": seconds})
        print(f"pytorch epoch {epoch + 1}/{epochs}  lr {lr:.2e}  train/loss {total / n:.4f}  {n / seconds:.1f} img/s", file=sys.stderr)
    train_seconds = time.perf_counter() - started

    model.eval()
    preds = []
    with torch.no_grad():
        for start in range(0, len(x_test), 16):
            preds.append(model(to_input(x_test[start : start + 16])).argmax(1).to(torch.uint8).numpy())
    np.concatenate(preds).tofile(m["predictions"])
    print(
        json.dumps(
            {
                "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
                "threads": m["threads"],
                "params": sum(p.numel() for p in model.parameters()),
                "trainSeconds": train_seconds,
                "wallSeconds": time.perf_counter() - started,
                "imagesPerSecond": n * epochs / train_seconds,
                "history": history,
            }
        )
    )


if __name__ == "__main__":
    main()
