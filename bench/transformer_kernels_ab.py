"""The Transformer block's training step with the attention kernels off and on, in one process.

    python bench/transformer_kernels_ab.py [--rounds 8] [--threads auto|1]

One model (bench/transformer.py's block), trained for one epoch per turn, alternating
``compiled.use_kernels("numpy")`` and ``("numba")`` (the order swaps each round); prints
the median ms per step of each (wall clock, and the process's CPU time: under load the
wall clock of a solo run includes waiting for a core, its CPU time does not) and the
1-minute load average at each round. The numba
kernels compile (or load from numba's cache) before the first round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from transformer import build_lamina as build
from transformer import sequences


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", default="auto")
    args = ap.parse_args()
    from lamina.backend import compiled, threads

    threads.set_thread_policy(int(args.threads) if args.threads.isdigit() else args.threads)
    x, y = sequences(args.steps * args.batch_size)
    model = build()
    for choice in ("numba", "numpy"):  # warm-up (and compile)
        with compiled.use_kernels(choice):
            model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)
    times = {"numpy": [], "numba": []}
    cpu = {"numpy": [], "numba": []}
    for r in range(args.rounds):
        order = ("numpy", "numba") if r % 2 == 0 else ("numba", "numpy")
        load = os.getloadavg()[0]
        line = []
        for choice in order:
            with compiled.use_kernels(choice):
                start, start_cpu = time.perf_counter(), time.process_time()
                model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)
                ms = 1e3 * (time.perf_counter() - start) / args.steps
                cpu_ms = 1e3 * (time.process_time() - start_cpu) / args.steps
            times[choice].append(ms)
            cpu[choice].append(cpu_ms)
            line.append(f"{choice} {ms:.2f} (cpu {cpu_ms:.2f})")
        print(f"round {r}: " + ", ".join(line) + f" ms/step (load {load:.2f})", flush=True)
    a, b = (statistics.median(times[c]) for c in ("numpy", "numba"))
    ca, cb = (statistics.median(cpu[c]) for c in ("numpy", "numba"))
    print(f"medians ({args.threads} threads): numpy {a:.2f} ms/step (cpu {ca:.2f}), numba "
          f"{b:.2f} ms/step (cpu {cb:.2f}), numpy/numba {a / b:.3f} (cpu {ca / cb:.3f})")


if __name__ == "__main__":
    main()
