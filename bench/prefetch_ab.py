"""A/B of the batch gather one step ahead (``ArrayAdapter.prefetch``) on the benchmark MLP.

In one process, alternating: 20-step ``fit`` epochs over the full 60k arrays (shuffled,
so the gather misses the cache as in a real epoch) with the next batch gathered on a pool
worker (B) and on the calling thread (A), the order of each pair flipped. Prints the
medians of step wall, process CPU and the calling thread's CPU (the critical path), the
median of the pairs' B/A ratios (all pairs, and the pairs where other processes used
under ``--quiet`` CPU by :class:`quiet.Span`), and the sha256 of the weights and
optimizer state after a seeded ``fit`` each way.

    python bench/prefetch_ab.py --pairs 40
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time

import numpy as np
from common import mnist_like
from lamina_models import build
from quiet import Span

import lamina
from lamina.backend import threads
from lamina.models.data_adapters import ArrayAdapter

STEPS = 20


def compiled_mlp():
    model = build("mlp")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def digest(model) -> str:
    """sha256 of the weights and the optimizer's variables, in order."""
    h = hashlib.sha256()
    for v in list(model.weights) + list(model.optimizer.variables):
        h.update(np.ascontiguousarray(np.asarray(v.data if hasattr(v, "data") else v)).tobytes())
    return h.hexdigest()[:16]


def seeded(x, y, prefetch: bool) -> str:
    ArrayAdapter.prefetch = prefetch
    lamina.utils.set_random_seed(7)
    model = compiled_mlp()
    model.fit(x[:6400], y[:6400], batch_size=128, epochs=2, verbose=0)
    return digest(model)


def epoch(model, x, y, prefetch: bool) -> tuple[float, float, float, float]:
    """Step wall, process CPU and calling-thread CPU (s), and others' CPU (0..ncpu)."""
    ArrayAdapter.prefetch = prefetch
    cpu, caller = time.process_time(), time.thread_time()
    with Span() as span:
        model.fit(x, y, batch_size=128, epochs=1, steps_per_epoch=STEPS, verbose=0)
    return (span.seconds / STEPS, (time.process_time() - cpu) / STEPS,
            (time.thread_time() - caller) / STEPS, span.others)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--quiet", type=float, default=0.3)
    args = ap.parse_args()
    x, y = mnist_like(60000)
    hashes = {"off": [seeded(x, y, False) for _ in range(2)],
              "on": [seeded(x, y, True) for _ in range(2)]}
    lamina.utils.set_random_seed(0)
    model = compiled_mlp()
    for prefetch in (False, True, False, True):
        epoch(model, x, y, prefetch)
    load = [round(__import__("os").getloadavg()[0], 2)]
    a, b, ratios, quiet = [], [], [], []
    for i in range(args.pairs):
        order = (False, True) if i % 2 == 0 else (True, False)
        got = {p: epoch(model, x, y, p) for p in order}
        a.append(got[False])
        b.append(got[True])
        ratio = got[True][0] / got[False][0]
        ratios.append(ratio)
        if max(got[False][3], got[True][3]) < args.quiet:
            quiet.append(ratio)
    load.append(round(__import__("os").getloadavg()[0], 2))
    print(json.dumps({
        "pairs": args.pairs, "steps_per_epoch": STEPS, "load1": load,
        "step_ms_off": round(statistics.median(r[0] for r in a) * 1e3, 3),
        "step_ms_on": round(statistics.median(r[0] for r in b) * 1e3, 3),
        "cpu_ms_off": round(statistics.median(r[1] for r in a) * 1e3, 3),
        "cpu_ms_on": round(statistics.median(r[1] for r in b) * 1e3, 3),
        "caller_cpu_ms_off": round(statistics.median(r[2] for r in a) * 1e3, 3),
        "caller_cpu_ms_on": round(statistics.median(r[2] for r in b) * 1e3, 3),
        "caller_ratio": round(statistics.median(q[2] / p[2] for p, q in zip(a, b)), 4),
        "ratio_on_off": round(statistics.median(ratios), 4),
        "quiet_pairs": len(quiet),
        "ratio_quiet": round(statistics.median(quiet), 4) if quiet else None,
        "others_median": round(statistics.median(r[3] for r in a + b), 3),
        "pool": threads.pool_stats(), "hashes": hashes}))


if __name__ == "__main__":
    main()
