"""The example ``lamina demo`` trains remotely: an MLP on the 8x8 digits, 2 replicas."""

from __future__ import annotations

import time

import numpy as np


def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits (1,797 real 8x8 images), 75/25 stratified split.

    Falls back to a synthetic 10-class problem of the same shape without scikit-learn.
    """
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        rng = np.random.default_rng(0)
        centers = rng.normal(size=(10, 64)).astype("float32")
        y = rng.integers(0, 10, size=1797)
        x = (centers[y] + 0.7 * rng.normal(size=(1797, 64))).astype("float32")
        return x[:1350], y[:1350], x[1350:], y[1350:]
    data = load_digits()
    x = (data.data / 16.0).astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(
        x, data.target, test_size=0.25, random_state=0, stratify=data.target)
    return x_train, y_train, x_test, y_test


def run_demo(url: str, replicas: int = 2, epochs: int = 10, api_key: str | None = None,
             verbose: int = 1) -> float:
    """Train the digits MLP on the service at ``url`` and return its test accuracy."""
    import lamina
    from lamina import layers

    x_train, y_train, x_test, y_test = digits()
    model = lamina.Sequential([
        lamina.Input(shape=(64,)),
        layers.Dense(64, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ], name="digits_mlp")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    with lamina.Client(url, api_key=api_key) as client:
        started = time.monotonic()
        job = client.fit(model, x_train, y_train, batch_size=32, epochs=epochs,
                         validation_split=0.1, replicas=replicas, seed=0,
                         callbacks=[lamina.callbacks.EarlyStopping(patience=3)],
                         name="demo-digits")
        print(f"submitted job {job.id}: {len(x_train)} digits, {replicas} replicas", flush=True)
        job.wait(verbose=verbose)
        trained = job.model()
    _, accuracy = trained.evaluate(x_test, y_test, verbose=0)
    print(f"job {job.id} {job.status} in {time.monotonic() - started:.0f}s on {replicas} "
          f"replicas; test accuracy of the downloaded model: {accuracy:.4f}", flush=True)
    return float(accuracy)
