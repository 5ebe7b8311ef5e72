"""A/B of ``DataParallel.gradients_in_slot`` (backward writes gradients into the shm slot).

Two replicas (``lamina.distribute.local.launch``, one BLAS thread each) train the MLP
784-512-512-10 with dropout (batch 128, Adam) on MNIST-shaped samples; every epoch
alternates the setting on both ranks (interleaved in one process pair). Prints, per
setting, the chief's median epoch time, median step time and its exchange time
(``DataParallel.exchange_seconds``; of it, the barriers' waits) and the exchange's
share of the step, and ``uptime``.

Usage: python3 bench/slot_gradients_ab.py [--epochs 9] [--samples 12000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "sdk"))
sys.path.insert(0, os.path.join(ROOT, "bench"))


def replica(model_json: str, x, y, epochs: int) -> dict:
    """One rank: fit, alternating ``gradients_in_slot`` per epoch (off first)."""
    from threadpoolctl import threadpool_limits

    import lamina
    from lamina.backend import threads
    from lamina.callbacks import Callback
    from lamina.distribute import get_strategy

    strategy = get_strategy()
    rows = []

    class Clock(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            strategy.gradients_in_slot = bool(epoch % 2)
            self.start, self.steps, self.exchange = time.perf_counter(), [], []
            self.waits = []

        def on_train_batch_begin(self, batch, logs=None):
            self.step = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.steps.append(time.perf_counter() - self.step)
            self.exchange.append(strategy.exchange_seconds)
            self.waits.append(strategy.collective.wait_seconds)

        def on_epoch_end(self, epoch, logs=None):
            rows.append({"in_slot": strategy.gradients_in_slot,
                         "epoch": time.perf_counter() - self.start,
                         "step": statistics.median(self.steps),
                         "exchange": statistics.median(self.exchange),
                         "waits": statistics.median(self.waits),
                         "share": sum(self.exchange) / sum(self.steps),
                         "landed": strategy.landed})

    with threadpool_limits(1):
        threads.set_thread_policy(1)
        lamina.utils.set_random_seed(0)
        model = lamina.models.model_from_json(model_json)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(x, y, batch_size=128, epochs=epochs, verbose=0, callbacks=[Clock()])
    return {"rows": rows}


def main(argv=None) -> int:
    import numpy as np
    from lamina_models import build

    from lamina.distribute import local

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--samples", type=int, default=12000)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.random((args.samples, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, args.samples)
    model = build("mlp")
    size = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    # One exchange after backward, as the worker's one-CPU replicas take by default
    # (buckets.overlap_pays): the setting only applies there.
    os.environ["LAMINA_BUCKET_CAP_MB"] = "0"
    print("load before:", os.getloadavg())
    chief = local.launch(replica, 2, model.to_json(), x, y, args.epochs, n=size)[0]
    rows = chief["rows"][1:]  # epoch 0: warm-up
    for in_slot in (False, True):
        mine = [r for r in rows if r["in_slot"] == in_slot]
        med = {k: statistics.median(r[k] for r in mine)
               for k in ("epoch", "step", "exchange", "waits", "share")}
        print(json.dumps({"gradients_in_slot": in_slot, "epochs": len(mine),
                          "landed": mine[-1]["landed"],
                          "epoch_s": round(med["epoch"], 4),
                          "step_ms": round(1e3 * med["step"], 3),
                          "exchange_ms": round(1e3 * med["exchange"], 3),
                          "barrier_waits_ms": round(1e3 * med["waits"], 3),
                          "share": round(med["share"], 4),
                          "shares": [round(r["share"], 4) for r in mine]}))
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
