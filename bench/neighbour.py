"""Throughput kept next to one CPU-bound neighbour: CNN training, Lamina and PyTorch.

    python bench/neighbour.py                  # MNIST convnet, 2 rounds
    python bench/neighbour.py --model mlp --rounds 3

Each round trains the model (``lamina_models.py`` / ``torch_models.py``) once alone and
once while a neighbour process spins on one core (a pure-Python busy loop, as a data
loader or another job would), and prints samples/s both ways. The last lines give, per
framework, the median fraction of its own alone throughput that it kept (a fair share
on two cores is about 0.5 or more). Other processes on the machine skew both figures:
the script prints the load average with each round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

from common import HERE, blas_line, run_json, torch_python

SPIN = "import time\nend = time.monotonic() + 3600\nwhile time.monotonic() < end: pass\n"


def loadavg() -> str:
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def train(python: str, script: str, common: list[str], neighbour: bool) -> dict:
    spinner = subprocess.Popen([sys.executable, "-c", SPIN]) if neighbour else None
    try:
        return run_json([python, str(HERE / script), *common])
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    samples = args.samples or (6000 if args.model == "cnn" else 30000)
    common = ["--model", args.model, "--samples", str(samples), "--epochs", str(args.epochs)]
    runners = [("lamina", sys.executable, "lamina_models.py")]
    tpython = torch_python()
    if tpython:
        runners.append(("torch", tpython, "torch_models.py"))
    kept: dict[str, list[float]] = {name: [] for name, _, _ in runners}
    print(blas_line(), flush=True)
    for _ in range(args.rounds):
        for name, python, script in runners:
            load_alone = loadavg()
            alone_run = train(python, script, common, neighbour=False)
            load_shared = loadavg()
            shared_run = train(python, script, common, neighbour=True)
            alone = alone_run["train_samples_per_s"]
            shared = shared_run["train_samples_per_s"]
            kept[name].append(shared / alone)
            stalls = ""
            if "pool" in shared_run:  # lamina: waits for a descheduled worker (-> solo)
                stalls = (f", pool stalls {alone_run['pool']['stalls']} alone / "
                          f"{shared_run['pool']['stalls']} shared")
            print(f"{name:7s} alone {alone:7.0f}  with neighbour {shared:7.0f} samples/s"
                  f"  kept {shared / alone:.2f}   (load before {load_alone} / {load_shared}"
                  f"{stalls}, pid {os.getpid()})", flush=True)
    for name, fractions in kept.items():
        print(f"{args.model}: {name} keeps {statistics.median(fractions):.2f} of its "
              "throughput next to one CPU-bound neighbour")


if __name__ == "__main__":
    main()
