"""Lamina with its thread pool against Lamina on one thread, alternating in one process.

    python bench/threads_ab.py                  # MLP, 6 rounds of 40 steps each way
    python bench/threads_ab.py --model cnn --rounds 4

Each round trains one epoch with ``set_thread_policy(1)`` and one with ``"auto"`` (after
a few warm-up steps each), so both see the same load; the medians' ratio is what the
pool buys on this machine right now. Prints the load average and ``pool_stats()``.
Results are bit-identical either way (tests/sdk/backend/test_parallel_gemm.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from common import mnist_like
from lamina_models import build

import lamina as keras
from lamina.backend import threads


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args()
    keras.utils.set_random_seed(0)
    samples = args.steps * args.batch_size
    x, y = mnist_like(samples)
    model = build(args.model)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    ms = {"one": [], "auto": []}
    for _ in range(args.rounds):
        for policy in ("one", "auto"):
            threads.set_thread_policy(1 if policy == "one" else "auto")
            warm = 5 * args.batch_size
            model.fit(x[:warm], y[:warm], batch_size=args.batch_size, verbose=0)
            start = time.perf_counter()
            model.fit(x, y, batch_size=args.batch_size, verbose=0)
            ms[policy].append((time.perf_counter() - start) / args.steps * 1e3)
    one, auto = statistics.median(ms["one"]), statistics.median(ms["auto"])
    print(json.dumps({"model": args.model, "step_ms_one_thread": round(one, 3),
                      "step_ms_pool": round(auto, 3), "pool_speedup": round(one / auto, 3),
                      "rounds_ms": {k: [round(v, 2) for v in vs] for k, vs in ms.items()},
                      "load": os.getloadavg()[0], "pool": threads.pool_stats()}))


if __name__ == "__main__":
    main()
