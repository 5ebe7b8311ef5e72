"""The fixed Python cost of a training step, and the benchmark MLP's step, in ms.

    python bench/step_overhead.py                      # 5 rounds, this checkout
    python bench/step_overhead.py --ab /tmp/a/sdk sdk  # two source trees, alternating

The fixed cost is the step of the benchmark MLP (784-512-512-10, dropout 0.2, Adam,
sparse categorical crossentropy, accuracy; ``lamina_models.build("mlp")``) cut to a
width of 8: its GEMMs take a few microseconds, so what is left is the framework's own
per-step work (layer calls, the gradient walk, loss, metrics, logs, batching). Each
round trains one epoch of ``--steps`` batches of 128 with the tiny model, then one with
the real MLP, in one process, so both see the same load; the medians (wall and the
process's CPU time, all threads) are printed with the load average.

``--ab A B`` runs this script in child processes that import Lamina from the source
trees ``A`` and ``B`` (``sdk`` folders), alternating A, B, A, B ... ``--ab-runs``
times, and prints each tree's median of the children's medians and their ratio: the
way to A/B a change to the framework (``git archive HEAD sdk | tar -x -C /tmp/a``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def _model(width: int):
    import lamina as keras
    from lamina import layers

    model = keras.Sequential([
        keras.Input((28, 28, 1)), layers.Flatten(),
        layers.Dense(width, activation="relu"), layers.Dropout(0.2),
        layers.Dense(width, activation="relu"), layers.Dropout(0.2),
        layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def measure(rounds: int, steps: int, width: int, batch_size: int = 128) -> dict:
    import lamina as keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((steps * batch_size, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, steps * batch_size)
    models = {"tiny": _model(width), "mlp": _model(512)}
    for model in models.values():  # warm-up: builds, first-call caches, BLAS setup
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    ms = {name: [] for name in models}
    cpu = {name: [] for name in models}  # CPU time of the process (all its threads)
    for _ in range(rounds):
        for name, model in models.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
            ms[name].append((time.perf_counter() - start) / steps * 1e3)
            cpu[name].append((time.process_time() - start_cpu) / steps * 1e3)
    return {"tiny_ms": statistics.median(ms["tiny"]), "mlp_ms": statistics.median(ms["mlp"]),
            "tiny_cpu_ms": statistics.median(cpu["tiny"]),
            "mlp_cpu_ms": statistics.median(cpu["mlp"]),
            "tiny_rounds": ms["tiny"], "mlp_rounds": ms["mlp"], "width": width,
            "steps": steps, "load": os.getloadavg()[0]}


def ab(trees: list[str], runs: int, args) -> None:
    results = {tree: [] for tree in trees}
    loads = []
    for _ in range(runs):
        for tree in trees:
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                [os.path.abspath(tree)] + [p for p in os.environ.get("PYTHONPATH", "").split(
                    os.pathsep) if p and not p.rstrip("/").endswith("sdk")]))
            out = subprocess.run(
                [sys.executable, __file__, "--rounds", str(args.rounds), "--steps",
                 str(args.steps), "--width", str(args.width), "--json"],
                env=env, capture_output=True, text=True, check=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            results[tree].append(result)
            loads.append(result["load"])
    rows = {}
    for tree, runs_ in results.items():
        rows[tree] = {key: statistics.median(r[key] for r in runs_)
                      for key in ("tiny_ms", "mlp_ms", "tiny_cpu_ms", "mlp_cpu_ms")}
        print(f"{tree}: tiny {rows[tree]['tiny_ms']:.3f} ms/step "
              f"(CPU {rows[tree]['tiny_cpu_ms']:.3f})  mlp {rows[tree]['mlp_ms']:.3f} ms/step "
              f"(CPU {rows[tree]['mlp_cpu_ms']:.3f})  (median of {len(runs_)} runs; "
              f"runs tiny {[round(r['tiny_ms'], 3) for r in runs_]}, "
              f"mlp {[round(r['mlp_ms'], 2) for r in runs_]})")
    a, b = (rows[t] for t in trees)
    print(f"B/A: tiny {b['tiny_ms'] / a['tiny_ms']:.3f} (CPU "
          f"{b['tiny_cpu_ms'] / a['tiny_cpu_ms']:.3f})  mlp {b['mlp_ms'] / a['mlp_ms']:.3f} (CPU "
          f"{b['mlp_cpu_ms'] / a['mlp_cpu_ms']:.3f})  load {min(loads):.2f}-{max(loads):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=100, help="batches of 128 per epoch")
    ap.add_argument("--width", type=int, default=8, help="width of the tiny model")
    ap.add_argument("--ab", nargs=2, metavar=("A", "B"), help="two sdk source trees")
    ap.add_argument("--ab-runs", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.ab:
        ab(args.ab, args.ab_runs, args)
        return
    result = measure(args.rounds, args.steps, args.width)
    if args.json:
        print(json.dumps(result))
        return
    print(f"fixed per-step cost (width {args.width}): {result['tiny_ms']:.3f} ms "
          f"(CPU {result['tiny_cpu_ms']:.3f})  MLP step: {result['mlp_ms']:.3f} ms "
          f"(CPU {result['mlp_cpu_ms']:.3f})  (medians of {args.rounds} rounds of "
          f"{args.steps} steps; load {result['load']:.2f})")


if __name__ == "__main__":
    main()
