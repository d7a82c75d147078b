"""Peer for bench/train.ts: the same architectures as segkit's `unet` and `encoder-decoder`, trained and run in
PyTorch on the same machine (Debian python3-torch), with torch.set_num_threads(THREADS) (2 here; PyTorch's default
on this machine is one thread).

unet (segkit `createModel("unet", {numClasses: 3, baseFilters: 16, depth: 4})`): levels 16-32-64-128, each two
3x3 conv (no bias) + BatchNorm + ReLU; 2x2 max pool between levels; decoder: 2x2 stride-2 ConvTranspose (with bias)
to the level's filters, concatenate [skip, up], two conv-BN-ReLU; 1x1 conv head to 3 logits.
encoder-decoder (segkit `createModel("encoder-decoder", {numClasses: 3})`, Deep Learning with Python ch. 11):
per stage 64-128-256 a 3x3 stride-2 conv + ReLU and a 3x3 conv + ReLU; decoder per stage from the deepest a 3x3
ConvTranspose + ReLU and a 3x3 stride-2 ConvTranspose + ReLU; 3x3 conv head to 3 logits.
Inputs are rescaled to [0, 1] inside both (as segkit's Rescaling layer).

Training: batch 8 of 128x128 (or the setup's "size") RGB, cross-entropy on 3 classes, Adam (lr 1e-3). Inference:
eval mode, no grad. Run by bench/train.ts with --serve (bench/peers/serve.py): requests {"op": "setup", "model":
name, "size": pixels} (size optional, default --size), then
{"op": "train", "steps": n} and {"op": "infer", "steps": n}, each answered with the images/s of n timed batches;
bench/train.ts alternates them with segkit's passes. Runs on Debian's /usr/bin/python3 (python3-torch) and on a
second interpreter with a newer torch when there is one.

Usage: python3 torch_train.py --serve [--threads 2] [--batch 8] [--size 128]
"""
import argparse
import json
import os
import sys
import time

# As the other peers: OpenMP threads wait passively, so that they do not spin on the cores between calls.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as err:
    print(json.dumps({"error": f"missing module: {err.name}"}))
    sys.exit(3)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve import serve, versions  # noqa: E402


def conv_bn_relu(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def double_conv(cin, cout):
    return nn.Sequential(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout))


class UNet(nn.Module):
    def __init__(self, classes=3, base=16, depth=4):
        super().__init__()
        f = [base * 2**i for i in range(depth)]
        self.enc = nn.ModuleList([double_conv(3 if i == 0 else f[i - 1], f[i]) for i in range(depth)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(f[i + 1], f[i], 2, stride=2) for i in range(depth - 1)])
        self.dec = nn.ModuleList([double_conv(2 * f[i], f[i]) for i in range(depth - 1)])
        self.head = nn.Conv2d(f[0], classes, 1)

    def forward(self, x):
        x = x / 255.0
        skips = []
        for i, block in enumerate(self.enc):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for i in range(len(self.up) - 1, -1, -1):
            x = self.dec[i](torch.cat([skips[i], self.up[i](x)], 1))
        return self.head(x)


class EncoderDecoder(nn.Module):
    def __init__(self, classes=3, filters=(64, 128, 256)):
        super().__init__()
        layers, cin = [], 3
        for f in filters:
            layers += [nn.Conv2d(cin, f, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            layers += [nn.Conv2d(f, f, 3, padding=1), nn.ReLU(inplace=True)]
            cin = f
        for f in reversed(filters):
            layers += [nn.ConvTranspose2d(cin, f, 3, padding=1), nn.ReLU(inplace=True)]
            layers += [nn.ConvTranspose2d(f, f, 3, stride=2, padding=1, output_padding=1), nn.ReLU(inplace=True)]
            cin = f
        layers += [nn.Conv2d(cin, classes, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x / 255.0)


def timed_rate(fn, batch, steps):
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return batch * steps / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", action="store_true", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    state = {}

    def setup(req):
        size = req.get("size", a.size)
        torch.manual_seed(0)
        state["x"] = torch.rand(a.batch, 3, size, size) * 255
        state["y"] = torch.randint(0, 3, (a.batch, size, size))
        model = UNet() if req["model"] == "unet" else EncoderDecoder()
        state["model"] = model
        state["opt"] = torch.optim.Adam(model.parameters(), lr=1e-3)
        return {"params": sum(p.numel() for p in model.parameters())}

    def train_step():
        model, opt = state["model"], state["opt"]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(state["x"]), state["y"])
        loss.backward()
        opt.step()

    def train(req):
        state["model"].train()
        return {"imagesPerSecond": timed_rate(train_step, a.batch, req["steps"])}

    def infer(req):
        model = state["model"]
        model.eval()
        with torch.no_grad():
            return {"imagesPerSecond": timed_rate(lambda: model(state["x"]), a.batch, req["steps"])}

    serve(
        {"setup": setup, "train": train, "infer": infer},
        {"versions": versions(), "threads": torch.get_num_threads()},
    )


if __name__ == "__main__":
    main()
