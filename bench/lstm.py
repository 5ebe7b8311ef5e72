"""LSTM(128) over 28 rows of 28 pixels: Lamina vs PyTorch (and Keras on JAX) train
throughput, in one run.

    python bench/lstm.py                 # issue 13's row; every framework, in turn each round
    python bench/lstm.py --steps 50 --features 32   # the longer, wider sequence
    python bench/lstm.py --worker lamina # one JSON line (used internally)

Model: input (batch 128, 28, 28) -> LSTM(128) -> Dense(10) softmax; Adam (Keras
defaults), sparse categorical crossentropy. PyTorch (``nn.LSTM`` + ``nn.Linear``) runs in
a subprocess from this Python, $LAMINA_BENCH_TORCH_PYTHON or a side venv
(``/work/venv-torch``); without it only Lamina's figure is printed. Keras 3 (JAX
backend) runs the very builder Lamina runs (:func:`build` takes the module) with its own
``fit``, in a subprocess from $LAMINA_BENCH_KERAS_PYTHON, this Python or ``/work/kvenv``
(``KERAS_BACKEND=jax``); without it one line says so. The first epoch of each run is a
warm-up and excluded (for Keras it holds XLA's compilation).

Each round line gives each framework's samples/s, its child's peak RSS (``wait4``) and the
load after it; last the ratios of the medians: lamina/torch, lamina/keras, keras/torch.
Threads, as each framework sets them: Lamina its pool plus OpenBLAS's threads, torch
``torch.get_num_threads()`` (the visible cores), XLA its own intra-op pool over the
visible CPUs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics

import numpy as np
from common import HERE, fit_epochs, print_keras_ratios, side_by_side, torch_epochs, train_rate

STEPS, FEATURES, UNITS, CLASSES = 28, 28, 128, 10


def sequences(n: int, seed: int = 0, steps: int = STEPS, features: int = FEATURES):
    """Learnable synthetic sequences: the class is the feature (of the first 10) with the
    largest sum over time."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, steps, features)).astype(np.float32)
    y = x[:, :, :CLASSES].sum(axis=1).argmax(axis=1).astype(np.int64)
    return x, y


def build(keras, steps: int = STEPS, features: int = FEATURES):
    """The model built and compiled with ``keras``, a Keras-API module (``lamina`` or
    ``keras``), seeded."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((steps, features)), keras.layers.LSTM(UNITS),
                              keras.layers.Dense(CLASSES, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def run_fit(args) -> dict:
    """``args.worker`` ("lamina" or "keras") trains the model with its own ``fit``."""
    keras = importlib.import_module(args.worker)
    model = build(keras, args.steps, args.features)
    x, y = sequences(args.samples, steps=args.steps, features=args.features)
    times, losses = fit_epochs(model, x, y, args.epochs, args.batch_size)
    return {"framework": args.worker,
            "train_samples_per_s": train_rate(args.samples, times),
            "epoch_seconds": times, "loss": losses, "params": model.count_params()}


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
    times, losses = torch_epochs(net, opt, loss_fn, xt, yt, args.epochs, args.batch_size)
    return {"framework": "torch", "threads": torch.get_num_threads(),
            "train_samples_per_s": train_rate(args.samples, times),
            "epoch_seconds": times, "loss": losses,
            "params": sum(p.numel() for p in net.parameters())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", choices=["lamina", "keras", "torch"])
    ap.add_argument("--samples", type=int, default=128 * 24)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--features", type=int, default=FEATURES)
    args = ap.parse_args()
    if args.worker:
        run = run_torch if args.worker == "torch" else run_fit
        print(json.dumps({"model": "lstm", **run(args)}))
        return
    child_args = ["--samples", str(args.samples), "--epochs", str(args.epochs),
                  "--batch-size", str(args.batch_size), "--steps", str(args.steps),
                  "--features", str(args.features)]
    print(f"lstm: {args.steps} steps x {args.features} features, batch {args.batch_size} "
          f"(issue 13's row: 28 steps x 28 features)", flush=True)
    results = side_by_side(
        args.rounds, lambda name, python: [python, str(HERE / "lstm.py"), "--worker", name,
                                           *child_args])
    speed = {name: statistics.median(r["train_samples_per_s"] for r in rs)
             for name, rs in results.items()}
    if "torch" not in speed:
        print("torch not installed: no ratio (pip install torch==2.13.0)")
    else:
        ratio = speed["lamina"] / speed["torch"]
        print(f"lstm: lamina/torch train throughput = {ratio:.3f} "
              f"(lamina time = {1 / ratio:.2f}x torch's)")
    print_keras_ratios("lstm", speed)

if __name__ == "__main__":
    main()
