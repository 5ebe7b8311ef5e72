"""Lamina vs PyTorch (and Keras on JAX) train throughput, measured alternately in one run.

    python bench/ratio.py --model mlp       # 60k samples, 3 epochs (first is warm-up)
    python bench/ratio.py --model cnn       # 12k samples, 2 epochs
    python bench/ratio.py --model cnn --threads 1   # 1 BLAS / torch thread: load-robust

Prints each round's samples/s, peak RSS and the load average, and, last, the ratios of
the medians: lamina/torch (train throughput, peak RSS), then lamina/keras and keras/torch.
PyTorch is looked up in this Python, $LAMINA_BENCH_TORCH_PYTHON, or a side venv; Keras 3
(JAX backend) in $LAMINA_BENCH_KERAS_PYTHON, this Python, or ``/work/kvenv``, run with
``KERAS_BACKEND=jax`` and without our PYTHONPATH. Without Keras one line says so and the
rest is as without it. Keras trains bench/lamina_models.py's very model code
(``--framework keras``: ``import keras`` where Lamina's run has ``import lamina as keras``)
with its own ``fit``, one call per epoch, the first excluded (XLA compiles in it).

Threads, left as each framework sets them: Lamina its own pool plus OpenBLAS's threads
(``--threads`` caps BLAS); torch ``torch.get_num_threads()`` (the visible cores;
``--threads`` sets it); XLA its own intra-op pool over the visible CPUs (``--threads``
does not reach it: the keras column of a ``--threads`` run is at XLA's default).

Peak RSS is the child's own (``wait4``) with its high-water mark reset right after the
synthetic data set is made (``/proc/self/clear_refs``), so it is the data set plus
training and predicting, not the generator's temporaries (~600 MB, the same for both;
what glibc kept of them in the heap, 15-20 MB in either child, is trimmed first).
"""

from __future__ import annotations

import argparse
import statistics
import sys

import common
from common import HERE


def child(which: str, argv: list[str]) -> None:
    """``ratio.py --child lamina|keras|torch ARGS``: that framework's benchmark, with the
    peak RSS reset once the data set exists."""
    import gc

    generate = common.mnist_like

    def mnist_like_then_reset_peak(*args, **kwargs):
        data = generate(*args, **kwargs)
        gc.collect()
        try:  # the generator's freed temporaries that glibc kept in the heap (~15 MB)
            import ctypes

            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")  # Linux: reset the peak RSS to the current RSS
        except OSError:
            pass
        return data

    common.mnist_like = mnist_like_then_reset_peak
    sys.argv = [f"{which}_models.py", *argv]
    if which in ("lamina", "keras"):
        import lamina_models as models

        sys.argv += ["--framework", which]
    elif which == "torch":
        import torch_models as models
    else:
        raise SystemExit(f"--child must be 'lamina', 'keras' or 'torch'. Received: {which!r}")
    models.main()


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None,
                    help="BLAS threads for lamina, torch.set_num_threads for torch")
    args = ap.parse_args()
    samples = args.samples or (60000 if args.model == "mlp" else 12000)
    epochs = args.epochs or (3 if args.model == "mlp" else 2)
    child_args = ["--model", args.model, "--samples", str(samples), "--epochs", str(epochs)]
    if args.threads:
        child_args += ["--threads", str(args.threads)]
    results = common.side_by_side(
        args.rounds, lambda name, python: [python, str(HERE / "ratio.py"), "--child", name,
                                           *child_args])
    speed = {name: statistics.median(r["train_samples_per_s"] for r in rs)
             for name, rs in results.items()}
    rss = {name: statistics.median(r["peak_rss_mb"] for r in rs) for name, rs in results.items()}
    if "torch" in speed:
        print(f"{args.model}: lamina/torch train throughput = "
              f"{speed['lamina'] / speed['torch']:.3f}")
        print(f"{args.model}: lamina/torch peak RSS = {rss['lamina'] / rss['torch']:.3f}")
    else:
        print("torch not installed: no ratio (pip install torch==2.13.0)")
    common.print_keras_ratios(args.model, speed, rss)

if __name__ == "__main__":
    main()
