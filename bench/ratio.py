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

from common import HERE, keras_env, keras_python, no_keras_line, run_measured, torch_python


def child(which: str, argv: list[str]) -> None:
    """``ratio.py --child lamina|keras|torch ARGS``: that framework's benchmark, with the
    peak RSS reset once the data set exists."""
    import gc

    import common

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


def loadavg() -> str:
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


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
    common = ["--model", args.model, "--samples", str(samples), "--epochs", str(epochs)]
    if args.threads:
        common += ["--threads", str(args.threads)]
    runners = [("lamina", sys.executable, None)]
    tpython, kpython = torch_python(), keras_python()
    if tpython:
        runners.append(("torch", tpython, None))
    if kpython:
        runners.append(("keras", kpython, keras_env()))
    else:
        print(no_keras_line(), flush=True)
    speed = {name: [] for name, _, _ in runners}
    rss = {name: [] for name, _, _ in runners}
    for _ in range(args.rounds):
        columns = []
        for name, python, env in runners:
            r = run_measured([python, str(HERE / "ratio.py"), "--child", name, *common], env=env)
            speed[name].append(r["train_samples_per_s"])
            rss[name].append(r["peak_rss_mb"])
            columns.append(f"{name} {r['train_samples_per_s']:.0f} samples/s "
                           f"(peak RSS {r['peak_rss_mb']:.0f} MB, load {loadavg()})")
        print("   ".join(columns), flush=True)
    med = {name: statistics.median(v) for name, v in speed.items()}
    rss_med = {name: statistics.median(v) for name, v in rss.items()}
    if "torch" in med:
        print(f"{args.model}: lamina/torch train throughput = {med['lamina'] / med['torch']:.3f}")
        print(f"{args.model}: lamina/torch peak RSS = "
              f"{rss_med['lamina'] / rss_med['torch']:.3f}")
    else:
        print("torch not installed: no ratio (pip install torch==2.13.0)")
    if "keras" in med:
        print(f"{args.model}: lamina/keras train throughput = {med['lamina'] / med['keras']:.3f}")
        print(f"{args.model}: lamina/keras peak RSS = "
              f"{rss_med['lamina'] / rss_med['keras']:.3f}")
    if "keras" in med and "torch" in med:
        ratio = med["keras"] / med["torch"]
        print(f"{args.model}: keras/torch train throughput = {ratio:.3f} "
              f"(keras time = {1 / ratio:.2f}x torch's)")

if __name__ == "__main__":
    main()
