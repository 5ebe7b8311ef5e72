"""How replicas divide the work: CPU seconds per epoch per replica, next to wall time.

On a shared machine wall time says more about the neighbours than about the code; a
process's CPU time does not. For the benchmark models (``lamina_models.py``: MLP and
MNIST convnet, with dropout; MNIST-shaped data, batch 128, Adam, one BLAS thread),
this runs ``fit`` as 1 and 2 SPMD replicas (``lamina.distribute.local.launch``: plain
processes on the shared-memory all-reduce) and prints, per epoch after a warm-up and
per replica: wall seconds, CPU seconds, and seconds inside the gradient exchange
(waiting for the peer included). Perfect division: each of 2 replicas uses half the
CPU of 1; what is left above half is the replicated work (the optimizer update, the
exchange's copies and sums, metrics).

    python bench/worker_cpu.py [--epochs 3] [--mlp-samples 8000] [--cnn-samples 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "sdk"))
sys.path.insert(0, HERE)


def fit_cpu(kind: str, n: int, epochs: int) -> list[tuple[float, float, float]]:
    """``fit`` the benchmark model; ``(wall, cpu, exchange)`` seconds per epoch."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    from common import mnist_like
    from lamina_models import build

    import lamina
    from lamina.callbacks import Callback
    from lamina.distribute import get_strategy

    x, y = mnist_like(n)
    rows: list[tuple[float, float, float]] = []

    class Clock(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.wall, self.cpu, self.exchange = time.perf_counter(), time.process_time(), 0.0

        def on_train_batch_end(self, batch, logs=None):
            self.exchange += getattr(get_strategy(), "exchange_seconds", 0.0)

        def on_epoch_end(self, epoch, logs=None):
            rows.append((time.perf_counter() - self.wall, time.process_time() - self.cpu,
                         self.exchange))

    lamina.utils.set_random_seed(0)
    model = build(kind)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=128, epochs=epochs, verbose=0, callbacks=[Clock()])
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--mlp-samples", type=int, default=8000)
    parser.add_argument("--cnn-samples", type=int, default=2000)
    args = parser.parse_args(argv)
    from lamina.distribute import local

    print("| model | replicas | rank | wall s | CPU s | exchange s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind, n, floats in (("mlp", args.mlp_samples, 700_000),
                            ("cnn", args.cnn_samples, 40_000)):
        for world in (1, 2):
            results = local.launch(fit_cpu, world, kind, n, args.epochs, n=floats)
            for rank, rows in enumerate(results):
                for wall, cpu, exchange in rows[1:]:
                    print(f"| {kind} | {world} | {rank} | {wall:.2f} | {cpu:.2f} | "
                          f"{exchange:.2f} |", flush=True)
    print(f"\nload {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
