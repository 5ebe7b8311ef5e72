"""The optimizers' numpy update vs their one-pass numba kernels, A/B in one process.

    python bench/optimizer_kernels_ab.py step [--optimizer adam] [--rounds 15]
    python bench/optimizer_kernels_ab.py mlp [--rounds 7] [--samples 30000] [--threads 1]

``step``: one ``apply`` (gradients gathered into the flat buffer + the update) and the
update alone (``_backend_update_step`` on the gathered buffer) over the benchmark MLP's
669,706 float32 parameters, with the thread pool (``auto``) and on one thread. ``mlp``:
bench/lamina_models.py's MLP trained one epoch per turn (wall and process CPU time a
step; ``--threads`` sets ``threads.set_thread_policy``). Turns alternate the optimizers'
numpy path ("numpy") and their kernels ("numba"; needs numba), the order swapping each
round; the model's other compiled kernels run as ``LAMINA_KERNELS`` says in both. Prints
medians of the rounds and the 1-minute load average.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import numpy as np
from common import alternate, mlp

SHAPES = [(784, 512), (512,), (512, 512), (512,), (512, 10), (10,)]


@contextlib.contextmanager
def optimizer_kernels(choice):
    """Only the optimizers' kernels off (``numpy``) or as ``LAMINA_KERNELS`` says: the
    model's other compiled kernels (Dropout's keyed draws, ...) are the same in both."""
    from lamina.optimizers import kernels

    saved = {name: getattr(kernels, name) for name in ("adam", "sgd", "rmsprop", "decay")}
    if choice == "numpy":
        for name in saved:
            setattr(kernels, name, lambda *args: False)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(kernels, name, function)


def step_bench(args) -> None:
    import lamina
    from lamina.backend import threads

    rng = np.random.default_rng(0)
    grads = [rng.normal(size=s).astype(np.float32) * 1e-2 for s in SHAPES]
    variables = [lamina.Variable(rng.normal(size=s).astype(np.float32)) for s in SHAPES]
    opt = lamina.optimizers.get(args.optimizer)
    opt.build(variables)
    seg = opt._segments[0]
    lr = opt._current_learning_rate()
    calls = 40

    def apply():
        start = time.perf_counter()
        for _ in range(calls):
            opt.apply(grads, variables)
        return (time.perf_counter() - start) / calls

    def update():
        start = time.perf_counter()
        for _ in range(calls):
            opt._backend_update_step([seg.grad], [seg.param], lr)
        return (time.perf_counter() - start) / calls

    print(f"{opt.__class__.__name__} over {seg.param.size:,} float32 parameters, "
          f"{args.rounds} rounds x {calls} calls; us per call, medians")
    for policy in ("auto", 1):
        threads.set_thread_policy(policy)
        for name, fn in (("apply (gather + update)", apply), ("update alone", update)):
            res = alternate(args.rounds, fn, optimizer_kernels)
            loads = res["loads"]
            print(f"  threads={policy!s:4} {name:24} numpy {res['numpy'] * 1e6:7.0f}  "
                  f"numba {res['numba'] * 1e6:7.0f}  numpy/numba "
                  f"{statistics.median(res['ratios']):.2f}  load {min(loads):.2f}-{max(loads):.2f}")
    threads.set_thread_policy("auto")


def mlp_bench(args) -> None:
    from lamina.backend import threads

    threads.set_thread_policy(args.threads)
    model, x, y = mlp(args.samples, args.optimizer)
    steps = -(-args.samples // 128)

    def epoch():
        start = time.perf_counter()
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)
        return (time.perf_counter() - start) / steps

    res = alternate(args.rounds, epoch, optimizer_kernels, clock=time.process_time)
    ratios, loads = res["ratios"], res["loads"]
    print(f"MLP 784-512-512-10 ({args.optimizer}), {args.samples} samples a turn, "
          f"{args.rounds} rounds, threads={args.threads}; ms per training step, medians")
    print(f"  wall: numpy {res['numpy'] * 1e3:.2f}  numba {res['numba'] * 1e3:.2f}  "
          f"numpy/numba per round {' '.join(f'{r:.3f}' for r in ratios)}; median "
          f"{statistics.median(ratios):.3f}  load {min(loads):.2f}-{max(loads):.2f}")
    print(f"  CPU:  numpy {res['cpu']['numpy'] / steps * 1e3:.2f}  "
          f"numba {res['cpu']['numba'] / steps * 1e3:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["step", "mlp"])
    ap.add_argument("--optimizer", default="adam")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--samples", type=int, default=30000)
    ap.add_argument("--threads", default="auto", type=lambda v: v if v in ("auto", "off")
                    else int(v))
    args = ap.parse_args()
    if args.what == "step":
        args.rounds = args.rounds or 15
        step_bench(args)
    else:
        args.rounds = args.rounds or 7
        mlp_bench(args)


if __name__ == "__main__":
    main()
