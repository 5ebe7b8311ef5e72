"""Lamina versions of the benchmark models, trained with ``fit`` (one call per epoch).

Prints one JSON line: {"framework": "lamina", "model", "train_samples_per_s", ...}.
The first epoch is a warm-up and excluded, as for PyTorch.
"""

from __future__ import annotations

import argparse
import json
import time

from common import mnist_like

import lamina as keras
from lamina import layers
from lamina.backend import threads


def build(model: str) -> keras.Model:
    if model == "mlp":
        return keras.Sequential([
            keras.Input((28, 28, 1)), layers.Flatten(),
            layers.Dense(512, activation="relu"), layers.Dropout(0.2),
            layers.Dense(512, activation="relu"), layers.Dropout(0.2),
            layers.Dense(10, activation="softmax")])
    if model == "cnn":
        return keras.Sequential([
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Flatten(), layers.Dropout(0.5), layers.Dense(10, activation="softmax")])
    raise SystemExit(f"unknown model {model!r}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--samples", type=int, default=60000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None,
                    help="BLAS threads (threadpoolctl); numpy ufuncs are single-threaded")
    args = ap.parse_args()
    if args.threads:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=args.threads, user_api="blas")  # noqa: F841
    keras.utils.set_random_seed(0)
    x, y = mnist_like(args.samples)
    model = build(args.model)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    times, losses = [], []
    for _ in range(args.epochs):
        start = time.perf_counter()
        history = model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
        losses.append(history.history["loss"][-1])
    steady = times[1:] or times
    start = time.perf_counter()
    model.predict(x, batch_size=1024, verbose=0)
    predict_seconds = time.perf_counter() - start
    print(json.dumps({"framework": "lamina", "model": args.model,
                      "train_samples_per_s": args.samples * len(steady) / sum(steady),
                      "predict_samples_per_s": args.samples / predict_seconds,
                      "epoch_seconds": times, "loss": losses, "threads": args.threads,
                      "pool": threads.pool_stats() if hasattr(threads, "pool_stats") else None}))


if __name__ == "__main__":
    main()
