"""The benchmark models, written once against the Keras API and trained with ``fit`` (one
call per epoch): Lamina (``import lamina as keras``) or Keras 3 itself (``import keras``,
run by a Python that has it, with ``KERAS_BACKEND=jax``) -- the drop-in claim in action.

    python bench/lamina_models.py --model mlp                     # Lamina
    KERAS_BACKEND=jax /work/kvenv/bin/python bench/lamina_models.py --framework keras

Prints one JSON line: {"framework": "lamina"|"keras", "model", "train_samples_per_s", ...}.
The first epoch is a warm-up and excluded, as for PyTorch (for Keras it holds XLA's
compilation of the train step, the full batch's and the last partial batch's).
"""

from __future__ import annotations

import argparse
import importlib
import json
import time

from common import fit_epochs, mnist_like, train_rate


def framework(name: str = "lamina"):
    """The Keras-API module: ``lamina`` or ``keras``."""
    if name not in ("lamina", "keras"):
        raise SystemExit(f"--framework must be 'lamina' or 'keras'. Received: {name!r}")
    return importlib.import_module(name)


def build(model: str, keras=None):
    """The ``model`` ("mlp" or "cnn") built with ``keras``, a Keras-API module (default
    ``lamina``)."""
    keras = keras or framework("lamina")
    layers = keras.layers
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
    ap.add_argument("--framework", choices=["lamina", "keras"], default="lamina")
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--samples", type=int, default=60000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=None,
                    help="BLAS threads (threadpoolctl) for lamina; numpy ufuncs are "
                         "single-threaded. Keras ignores it: XLA keeps its own pool")
    args = ap.parse_args()
    keras = framework(args.framework)
    if args.threads and args.framework == "lamina":
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=args.threads, user_api="blas")  # noqa: F841
    keras.utils.set_random_seed(0)
    x, y = mnist_like(args.samples)
    model = build(args.model, keras)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    times, losses = fit_epochs(model, x, y, args.epochs, args.batch_size)
    start = time.perf_counter()
    model.predict(x, batch_size=1024, verbose=0)
    predict_seconds = time.perf_counter() - start
    if args.framework == "lamina":
        from lamina.backend import threads

        pool = threads.pool_stats() if hasattr(threads, "pool_stats") else None
        used = args.threads
    else:
        pool, used = None, "xla"
    print(json.dumps({"framework": args.framework, "model": args.model,
                      "train_samples_per_s": train_rate(args.samples, times),
                      "predict_samples_per_s": args.samples / predict_seconds,
                      "params": model.count_params(),
                      "epoch_seconds": times, "loss": losses, "threads": used,
                      "pool": pool}))


if __name__ == "__main__":
    main()
