"""PyTorch eager versions of the benchmark models, trained the way Keras's fit would.

Prints one JSON line: {"framework": "torch", "model", "train_samples_per_s", ...}.
Adam with Keras defaults (lr 1e-3, eps 1e-7), Glorot-uniform init, zero biases.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from common import mnist_like, torch_epochs, train_rate
from torch import nn


def build(model: str) -> nn.Module:
    if model == "mlp":
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2),
                            nn.Linear(512, 512), nn.ReLU(), nn.Dropout(0.2), nn.Linear(512, 10))
    elif model == "cnn":
        net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3),
                            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5),
                            nn.Linear(1600, 10))
    else:
        raise SystemExit(f"unknown model {model!r}")
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return net


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--samples", type=int, default=60000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y = mnist_like(args.samples)
    if args.model == "cnn":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    net = build(args.model)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    times, losses = torch_epochs(net, opt, loss_fn, xt, yt, args.epochs, args.batch_size)
    print(json.dumps({"framework": "torch", "model": args.model,
                      "train_samples_per_s": train_rate(args.samples, times),
                      "epoch_seconds": times, "loss": losses,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
