"""The benchmark MLP's ``fit`` with the update overlapped with backward, against the
whole-step update, in one process, alternating epochs (the same model throughout).

    python bench/backward_overlap_ab.py --rounds 10 --steps 100

Each round trains one epoch of ``--steps`` batches of 128 in each mode of
``lamina.optimizers.backward_overlap``: A ``enabled`` off (the whole-step update), B
on with ``into_next_step`` off (each step waits for its update), C both on; the order
rotates from round to round so no mode always runs first. Prints the medians of wall
and process CPU time a step, the medians of the rounds' B/A and C/A ratios, and the
load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from step_overhead import _model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args()
    import lamina as keras
    from lamina.optimizers import backward_overlap

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((args.steps * 128, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, args.steps * 128)
    model = _model(512)
    modes = {"A": (False, False), "B": (True, False), "C": (True, True)}

    def epoch(mode):
        backward_overlap.enabled, backward_overlap.into_next_step = modes[mode]
        start, start_cpu = time.perf_counter(), time.process_time()
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)
        return ((time.perf_counter() - start) / args.steps * 1e3,
                (time.process_time() - start_cpu) / args.steps * 1e3)

    for mode in modes:  # warm-up: build, caches, numba, the pool
        epoch(mode)
    load_before = os.getloadavg()[0]
    ms = {mode: [] for mode in modes}
    cpu = {mode: [] for mode in modes}
    order = list(modes)
    for r in range(args.rounds):
        for mode in order[r % 3:] + order[:r % 3]:
            wall, used = epoch(mode)
            ms[mode].append(wall)
            cpu[mode].append(used)
    names = {"A": "whole-step", "B": "during backward", "C": "into next step"}
    for mode in modes:
        print(f"{mode} {names[mode]}: {statistics.median(ms[mode]):.3f} ms/step "
              f"(CPU {statistics.median(cpu[mode]):.3f}); rounds "
              f"{[round(v, 2) for v in ms[mode]]}")
    for mode in "BC":
        ratios = [b / a for a, b in zip(ms["A"], ms[mode])]
        print(f"{mode}/A median of rounds {statistics.median(ratios):.3f} "
              f"(range {min(ratios):.3f}-{max(ratios):.3f})")
    print(f"load {load_before:.2f} -> {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
