"""LSTM(128) training with the LSTM's numba kernels off and on, in one process.

    python bench/lstm_kernels_ab.py [--rounds 10] [--steps 28 --features 28] [--batches 24]

One model (bench/lstm.py's), trained for one epoch per turn, alternating
``compiled.use_kernels("numpy")`` and ``("numba")`` (the order swaps each round); prints
each round's kernels/numpy throughput ratio, the medians, and the 1-minute load average.
The kernels compile (or load from numba's cache) in an unmeasured first round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from lstm import CLASSES, UNITS, sequences


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=28)
    ap.add_argument("--features", type=int, default=28)
    ap.add_argument("--batches", type=int, default=24)
    args = ap.parse_args()

    import lamina as keras
    from lamina import layers
    from lamina.backend import compiled

    keras.utils.set_random_seed(0)
    n = 128 * args.batches
    x, y = sequences(n, steps=args.steps, features=args.features)
    model = keras.Sequential([keras.Input((args.steps, args.features)), layers.LSTM(UNITS),
                              layers.Dense(CLASSES, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    speed = {"numpy": [], "numba": []}
    loads = []
    for r in range(args.rounds + 1):
        for choice in ("numpy", "numba") if r % 2 else ("numba", "numpy"):
            with compiled.use_kernels(choice):
                start = time.perf_counter()
                model.fit(x, y, batch_size=128, epochs=1, verbose=0)
                seconds = time.perf_counter() - start
            if r:
                speed[choice].append(n / seconds)
        loads.append(os.getloadavg()[0])
    ratios = [a / b for a, b in zip(speed["numba"], speed["numpy"])]
    print("kernels/numpy per round: " + " ".join(f"{r:.2f}" for r in ratios))
    for choice, values in speed.items():
        print(f"{choice}: median {statistics.median(values):.0f} samples/s "
              f"(min {min(values):.0f}, max {max(values):.0f})")
    print(f"kernels/numpy: median of rounds {statistics.median(ratios):.3f}, of medians "
          f"{statistics.median(speed['numba']) / statistics.median(speed['numpy']):.3f}; "
          f"load {min(loads):.2f}-{max(loads):.2f}")


if __name__ == "__main__":
    main()
