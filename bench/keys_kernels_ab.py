"""The keyed draws (lamina.distribute.keys) on numpy vs their numba kernels, A/B in one
process.

    python bench/keys_kernels_ab.py draws [--rounds 9]
    python bench/keys_kernels_ab.py mlp [--rounds 7] [--samples 30000]

``draws``: at (128, 512) float32, the keep mask, ``uniform``, ``normal``, and a Dropout
(the mask, the primitive's forward and its backward). ``mlp``: the benchmark MLP
(784-512-512-10, two Dropout(0.2), Adam, batch 128) trained one epoch per turn, once
switching every kernel (``compiled.use_kernels``: the optimizer's kernels switch too)
and once the keyed draws' kernels only (the rest compiled in both turns). Turns
alternate (the order swaps each round, round 0 is a warm-up); prints medians of the
rounds (wall time; for ``mlp`` the process's CPU time too) and the 1-minute load
average.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import time

import numpy as np
from common import alternate, mlp

SHAPE = (128, 512)


@contextlib.contextmanager
def _arm(choice, keys_only):
    """``choice`` for every kernel, or (``keys_only``) for the keyed draws alone."""
    from lamina.backend import compiled
    from lamina.distribute import keys

    if not keys_only:
        with compiled.use_kernels(choice):
            yield
        return
    real = keys._kernels
    if choice == "numpy":
        keys._kernels = lambda _keys, _shape: None
    try:
        with compiled.use_kernels("numba"):
            yield
    finally:
        keys._kernels = real


def _per_call(fn, calls):
    def run():
        samples = []
        for _ in range(calls):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    return run


def draws_bench(args) -> None:
    import lamina
    from lamina.backend import nn
    from lamina.distribute import keys

    with keys.batch_keys(0, np.arange(SHAPE[0])):
        k = keys.sample_keys(keys.stream_key(0, "bench"), SHAPE[0])
    x = lamina.Variable(np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32))
    g = np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32)

    def dropout():
        out = nn.Dropout.apply(x, keys.dropout_mask(k, SHAPE, 0.2, np.float32))
        out._ctx.backward(g)

    print(f"keyed draws at {SHAPE} float32, {args.rounds} rounds x 200 calls; us per call "
          f"(median of calls, then of rounds)")
    for name, fn in (("keep_mask(0.2)", lambda: keys.keep_mask(k, SHAPE, 0.2)),
                     ("uniform", lambda: keys.uniform(k, SHAPE)),
                     ("normal", lambda: keys.normal(k, SHAPE)),
                     ("Dropout mask+fwd+bwd", dropout)):
        res = alternate(args.rounds, _per_call(fn, 200 if name != "normal" else 20),
                        functools.partial(_arm, keys_only=False))
        print(f"  {name:22} numpy {res['numpy'] * 1e6:8.1f}  numba {res['numba'] * 1e6:8.1f}"
              f"  numpy/numba {statistics.median(res['ratios']):5.2f}  "
              f"load {min(res['loads']):.2f}-{max(res['loads']):.2f}")


def mlp_bench(args) -> None:
    model, x, y = mlp(args.samples, "adam")
    steps = -(-args.samples // 128)

    def epoch():
        start = time.perf_counter()
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)
        return (time.perf_counter() - start) / steps

    print(f"MLP 784-512-512-10, 2x Dropout(0.2), Adam, {args.samples} samples a turn, "
          f"{args.rounds} rounds; ms per training step, medians")
    for label, keys_only in (("every kernel", False), ("keyed draws only", True)):
        res = alternate(args.rounds, epoch, functools.partial(_arm, keys_only=keys_only),
                        clock=time.process_time)
        cpu, ratios, loads = res["cpu"], res["ratios"], res["loads"]
        print(f"  {label:17} wall: numpy {res['numpy'] * 1e3:.3f}  numba "
              f"{res['numba'] * 1e3:.3f}  numpy/numba {statistics.median(ratios):.3f} "
              f"(rounds {min(ratios):.2f}-{max(ratios):.2f});  CPU: numpy "
              f"{cpu['numpy'] / steps * 1e3:.3f}  numba {cpu['numba'] / steps * 1e3:.3f}  "
              f"numpy/numba {res['cpu_ratio']:.3f};  load {min(loads):.2f}-{max(loads):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["draws", "mlp"])
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--samples", type=int, default=30000)
    args = ap.parse_args()
    if args.what == "draws":
        args.rounds = args.rounds or 9
        draws_bench(args)
    else:
        args.rounds = args.rounds or 7
        mlp_bench(args)


if __name__ == "__main__":
    main()
