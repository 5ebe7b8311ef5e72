"""LSTM(128) over 28 rows of 28 pixels: Lamina vs PyTorch train throughput, in one run.

    python bench/lstm.py                 # issue 13's row; both frameworks, alternating rounds
    python bench/lstm.py --steps 50 --features 32   # the longer, wider sequence
    python bench/lstm.py --worker lamina # one JSON line (used internally)

Model: input (batch 128, 28, 28) -> LSTM(128) -> Dense(10) softmax; Adam (Keras
defaults), sparse categorical crossentropy. PyTorch (``nn.LSTM`` + ``nn.Linear``) runs in
a subprocess from this Python, $LAMINA_BENCH_TORCH_PYTHON or a side venv
(``/work/venv-torch``); without it only Lamina's figure is printed. The first epoch of
each run is a warm-up and excluded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
from common import HERE, run_json, torch_python

STEPS, FEATURES, UNITS, CLASSES = 28, 28, 128, 10


def sequences(n: int, seed: int = 0, steps: int = STEPS, features: int = FEATURES):
    """Learnable synthetic sequences: the class is the feature (of the first 10) with the
    largest sum over time."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, steps, features)).astype(np.float32)
    y = x[:, :, :CLASSES].sum(axis=1).argmax(axis=1).astype(np.int64)
    return x, y


def run_lamina(args) -> dict:
    import lamina as keras
    from lamina import layers

    keras.utils.set_random_seed(0)
    x, y = sequences(args.samples, steps=args.steps, features=args.features)
    model = keras.Sequential([keras.Input((args.steps, args.features)), layers.LSTM(UNITS),
                              layers.Dense(CLASSES, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    times, losses = [], []
    for _ in range(args.epochs):
        start = time.perf_counter()
        history = model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
        losses.append(history.history["loss"][-1])
    steady = times[1:] or times
    return {"framework": "lamina", "train_samples_per_s": args.samples * len(steady) / sum(steady),
            "epoch_seconds": times, "loss": losses}


def run_torch(args) -> dict:
    import torch
    from torch import nn

    torch.manual_seed(0)
    x, y = sequences(args.samples, steps=args.steps, features=args.features)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(args.features, UNITS, batch_first=True)
            self.dense = nn.Linear(UNITS, CLASSES)

        def forward(self, inputs):
            _, (h, _) = self.lstm(inputs)
            return self.dense(h[-1])

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    times, losses = [], []
    for _ in range(args.epochs):
        start = time.perf_counter()
        perm = torch.randperm(args.samples)
        for i in range(0, args.samples, args.batch_size):
            idx = perm[i:i + args.batch_size]
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
        losses.append(float(loss))
    steady = times[1:] or times
    return {"framework": "torch", "threads": torch.get_num_threads(),
            "train_samples_per_s": args.samples * len(steady) / sum(steady),
            "epoch_seconds": times, "loss": losses}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", choices=["lamina", "torch"])
    ap.add_argument("--samples", type=int, default=128 * 24)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--features", type=int, default=FEATURES)
    args = ap.parse_args()
    if args.worker:
        run = run_lamina if args.worker == "lamina" else run_torch
        print(json.dumps({"model": "lstm", **run(args)}))
        return
    common = ["--samples", str(args.samples), "--epochs", str(args.epochs),
              "--batch-size", str(args.batch_size), "--steps", str(args.steps),
              "--features", str(args.features)]
    tpython = torch_python()
    print(f"lstm: {args.steps} steps x {args.features} features, batch {args.batch_size} "
          f"(issue 13's row: 28 steps x 28 features)", flush=True)
    ours, theirs = [], []
    for _ in range(args.rounds):
        o = run_json([sys.executable, str(HERE / "lstm.py"), "--worker", "lamina", *common])
        ours.append(o["train_samples_per_s"])
        line = f"lamina {o['train_samples_per_s']:.0f} samples/s"
        if tpython:
            t = run_json([tpython, str(HERE / "lstm.py"), "--worker", "torch", *common])
            theirs.append(t["train_samples_per_s"])
            line += f"   torch {t['train_samples_per_s']:.0f} samples/s"
        print(line, flush=True)
    if not theirs:
        print("torch not installed: no ratio (pip install torch==2.13.0)")
        return
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"lstm: lamina/torch train throughput = {ratio:.3f} "
          f"(lamina time = {1 / ratio:.2f}x torch's)")


if __name__ == "__main__":
    main()
