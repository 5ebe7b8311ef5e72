"""Lamina vs PyTorch train throughput, measured alternately in one run.

    python bench/ratio.py --model mlp       # 60k samples, 3 epochs (first is warm-up)
    python bench/ratio.py --model cnn       # 12k samples, 2 epochs
    python bench/ratio.py --model cnn --threads 1   # 1 BLAS / torch thread: load-robust

Prints each round's samples/s, peak RSS and the load average, and, last, the ratios of
the medians (lamina / torch): train throughput and peak RSS. PyTorch is looked up in this
Python, $LAMINA_BENCH_TORCH_PYTHON, or a side venv.

Peak RSS is the child's own (``wait4``) with its high-water mark reset right after the
synthetic data set is made (``/proc/self/clear_refs``), so it is the data set plus
training and predicting, not the generator's temporaries (~600 MB, the same for both;
what glibc kept of them in the heap, 15-20 MB in either child, is trimmed first).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from common import HERE, torch_python


def run_measured(cmd: list[str]) -> dict:
    """Run a benchmark subprocess: its last JSON line plus its own peak RSS in MB."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if proc.returncode or not lines:
            raise RuntimeError(f"benchmark failed: {' '.join(cmd)}\n{err.read()[-3000:]}")
    return {**json.loads(lines[-1]), "peak_rss_mb": usage.ru_maxrss / 1024}


def child(which: str, argv: list[str]) -> None:
    """``ratio.py --child lamina|torch ARGS``: that framework's benchmark, with the peak
    RSS reset once the data set exists."""
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
    if which == "lamina":
        import lamina_models as models
    elif which == "torch":
        import torch_models as models
    else:
        raise SystemExit(f"--child must be 'lamina' or 'torch'. Received: {which!r}")
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
    tpython = torch_python()
    ours, theirs, our_rss, their_rss = [], [], [], []
    for _ in range(args.rounds):
        o = run_measured([sys.executable, str(HERE / "ratio.py"), "--child", "lamina", *common])
        ours.append(o["train_samples_per_s"])
        our_rss.append(o["peak_rss_mb"])
        line = (f"lamina {o['train_samples_per_s']:.0f} samples/s "
                f"(peak RSS {o['peak_rss_mb']:.0f} MB, load {loadavg()})")
        if tpython:
            t = run_measured([tpython, str(HERE / "ratio.py"), "--child", "torch", *common])
            theirs.append(t["train_samples_per_s"])
            their_rss.append(t["peak_rss_mb"])
            line += (f"   torch {t['train_samples_per_s']:.0f} samples/s "
                     f"(peak RSS {t['peak_rss_mb']:.0f} MB, load {loadavg()})")
        print(line, flush=True)
    if not theirs:
        print("torch not installed: no ratio (pip install torch==2.13.0)")
        return
    print(f"{args.model}: lamina/torch train throughput = "
          f"{statistics.median(ours) / statistics.median(theirs):.3f}")
    print(f"{args.model}: lamina/torch peak RSS = "
          f"{statistics.median(our_rss) / statistics.median(their_rss):.3f}")


if __name__ == "__main__":
    main()
