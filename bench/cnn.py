"""The classic MNIST convnet, Lamina vs PyTorch, train samples/s measured in one run.

Conv2D 32 3x3 relu, MaxPool 2, Conv2D 64 3x3 relu, MaxPool 2, Flatten, Dropout 0.5,
Dense 10 softmax; Adam (Keras defaults); batch 128; synthetic MNIST-shaped data (the
generator of ``/work/shared/bench``: 28x28x1 float32 in [0, 1], 10 classes, 5% label
noise). Lamina trains with ``model.fit`` (one call per epoch, the first epoch is a
warm-up); PyTorch runs the same model and loop (eager, Glorot init, Adam eps=1e-7) in a
subprocess of ``--torch-python`` (default ``$LAMINA_TORCH_PYTHON``, else this Python).
Rounds alternate torch and lamina; the last line is the ratio of medians
(lamina / torch samples/s). Each round also prints both processes' peak resident memory
(``ru_maxrss``, MB) and the load average. Without torch it prints "torch not installed".

``--threads N`` gives both frameworks N threads (OpenBLAS/OpenMP environment variables,
``torch.set_num_threads``); on a machine shared with other jobs multi-threaded BLAS can
stall badly, so compare at ``--threads 1`` there too.

Run: ``python bench/cnn.py [--samples 12000 --epochs 2 --rounds 2 --threads N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np


def make_data(n, seed=0):
    """Synthetic MNIST-shaped, learnable data (identical to the shared bench scripts)."""
    rng = np.random.default_rng(seed)
    g = rng.random((10, 5, 5), dtype=np.float32)
    protos = np.zeros((10, 28, 28), np.float32)
    protos[:, 4:24, 4:24] = np.kron(g, np.ones((4, 4), np.float32)) > 0.55
    y = rng.integers(0, 10, size=n)
    x = np.empty((n, 28, 28), np.float32)
    sh = rng.integers(-2, 3, size=(n, 2))
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            m = (sh[:, 0] == dy) & (sh[:, 1] == dx)
            x[m] = np.roll(protos[y[m]], (dy, dx), axis=(1, 2))
    x *= rng.uniform(0.6, 1.0, size=(n, 1, 1)).astype(np.float32)
    for c in range(0, n, 8192):
        speck = rng.random((min(8192, n - c), 28, 28), dtype=np.float32)
        speck *= np.float32(1 / 0.15)
        speck[speck >= 1.0] = 0.0
        speck[:, :3, :] = 0
        speck[:, -3:, :] = 0
        speck[:, :, :3] = 0
        speck[:, :, -3:] = 0
        np.maximum(x[c:c + 8192], speck, out=x[c:c + 8192])
    flip = rng.random(n) < 0.05
    y[flip] = rng.integers(0, 10, size=int(flip.sum()))
    return x.reshape(n, 28, 28, 1), y.astype(np.int64)


def run_lamina(samples, epochs, batch_size):
    import lamina as keras

    keras.utils.set_random_seed(0)
    x, y = make_data(samples)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    times, losses = [], []
    for _ in range(epochs):
        start = time.perf_counter()
        history = model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=True)
        times.append(time.perf_counter() - start)
        losses.append(round(float(history.history["loss"][-1]), 4))
    return {"framework": "lamina", "train_samples_per_s": samples * (epochs - 1) / sum(times[1:]),
            "epoch_s": [round(t, 2) for t in times], "loss": losses, "peak_rss_mb": _peak_rss()}


def run_torch(samples, epochs, batch_size, threads=None):
    import torch
    from torch import nn

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    xn, yn = make_data(samples)
    x = torch.from_numpy(np.ascontiguousarray(xn.transpose(0, 3, 1, 2)))
    y = torch.from_numpy(yn)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(1600, 10))
    for mod in model.modules():
        if isinstance(mod, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(mod.weight)
            nn.init.zeros_(mod.bias)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    times, losses = [], []
    for _ in range(epochs):
        start = time.perf_counter()
        perm = torch.randperm(samples)
        xs, ys = x[perm], y[perm]
        total = torch.zeros(())
        for i in range(0, samples, batch_size):
            xb, yb = xs[i:i + batch_size], ys[i:i + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.detach() * xb.shape[0]
        times.append(time.perf_counter() - start)
        losses.append(round(float(total) / samples, 4))
    return {"framework": "torch", "train_samples_per_s": samples * (epochs - 1) / sum(times[1:]),
            "epoch_s": [round(t, 2) for t in times], "loss": losses,
            "threads": torch.get_num_threads(), "peak_rss_mb": _peak_rss()}


def _peak_rss():
    """This process's peak resident set size in MB (Linux reports ru_maxrss in KB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _worker(python, name, args):
    cmd = [python, os.path.abspath(__file__), "--worker", name, "--samples", str(args.samples),
           "--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
    env = dict(os.environ)
    if args.threads:
        cmd += ["--threads", str(args.threads)]
        for key in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[key] = str(args.threads)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=3600, env=env)


def torch_subprocess(python, args):
    out = _worker(python, "torch", args)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        if "No module named 'torch'" in out.stderr:
            return None
        raise SystemExit(f"torch run failed:\n{out.stderr[-2000:]}")
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--torch-python",
                        default=os.environ.get("LAMINA_TORCH_PYTHON", sys.executable))
    parser.add_argument("--worker", choices=["torch", "lamina"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch is a warm-up)")
    if args.worker:
        if args.worker == "torch":
            result = run_torch(args.samples, args.epochs, args.batch_size, args.threads)
        else:
            result = run_lamina(args.samples, args.epochs, args.batch_size)
        print(json.dumps(result), flush=True)
        return
    ours, theirs = [], []
    for _ in range(args.rounds):
        t = torch_subprocess(args.torch_python, args)
        out = _worker(sys.executable, "lamina", args)
        if out.returncode:
            raise SystemExit(f"lamina run failed:\n{out.stderr[-2000:]}")
        o = json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])
        ours.append(o["train_samples_per_s"])
        if t is None:
            print(f"lamina {o['train_samples_per_s']:.0f} samples/s (epochs {o['epoch_s']} s, "
                  f"loss {o['loss']}); torch not installed", flush=True)
            continue
        theirs.append(t["train_samples_per_s"])
        print(f"torch {t['train_samples_per_s']:.0f}  lamina {o['train_samples_per_s']:.0f} "
              f"samples/s  (loss torch {t['loss']}, lamina {o['loss']}; peak RSS torch "
              f"{t['peak_rss_mb']} MB, lamina {o['peak_rss_mb']} MB; load "
              f"{os.getloadavg()[0]:.2f})", flush=True)
    if theirs:
        print(f"{statistics.median(ours) / statistics.median(theirs):.3f}")


if __name__ == "__main__":
    main()
