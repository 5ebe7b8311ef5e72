"""Are this machine's two CPUs independent right now? A probe for the benches' modes.

    python bench/vcpu_pair_probe.py                 # 20 samples of each kernel
    python bench/vcpu_pair_probe.py --samples 60 --seconds 0.5

Each sample runs one kernel for ``--seconds`` in one process pinned to CPU 0 (alone),
then in two processes pinned to CPUs 0 and 1 at the same time, and prints the rate each
of the pair kept against the one alone (1.0: the CPUs do not slow each other). Kernels:

- ``fma``: a 64x64 float32 GEMM repeated in L1 (one BLAS thread): bound by the core's
  FMA units. Two vCPUs that the host runs as the two hyperthreads of one physical core
  share those units (each keeps ~0.5-0.6); on two cores each keeps ~1.0.
- ``stream``: an Adam-like pass over 4 x 1.3 MB float32 arrays (out of L2): bound by
  caches and memory bandwidth, which the two vCPUs share either way.

A benchmark's 2-thread or 2-replica rows can only be as steady as this: when the ``fma``
ratio drops, the host has placed the vCPUs on one core, and every framework's
two-thread speed drops with it. Not a test; prints the medians and quartiles last.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CHILD = r"""
import os, sys, time
cpu, kernel, seconds, start = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
os.sched_setaffinity(0, {cpu})
import numpy as np
if kernel == "fma":
    a = np.random.default_rng(0).standard_normal((64, 64), dtype=np.float32)
    b, out = a.copy(), np.empty_like(a)
    def step():
        for _ in range(50):
            np.matmul(a, b, out=out)
else:
    rng = np.random.default_rng(0)
    p, g, m, v = (rng.standard_normal(335_000, dtype=np.float32) for _ in range(4))
    v, t = np.abs(v), np.empty_like(p)
    def step():
        np.multiply(m, 0.9, out=m); np.multiply(g, 0.1, out=t); np.add(m, t, out=m)
        np.multiply(v, 0.999, out=v); np.multiply(g, g, out=t); np.multiply(t, 0.001, out=t)
        np.add(v, t, out=v); np.sqrt(v, out=t); np.add(t, 1e-7, out=t)
        np.divide(m, t, out=t); np.multiply(t, 1e-3, out=t); np.subtract(p, t, out=p)
step()
while time.time() < start:
    pass
n, end = 0, time.perf_counter() + seconds
while time.perf_counter() < end:
    step(); n += 1
print(n / seconds)
"""


def run(cpus: list[int], kernel: str, seconds: float) -> list[float]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    start = time.time() + 0.4  # both children start their loops together
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(cpu), kernel, str(seconds),
                               str(start)], stdout=subprocess.PIPE, text=True, env=env)
             for cpu in cpus]
    return [float(proc.communicate()[0]) for proc in procs]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=0.5)
    args = ap.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs two CPUs")
    kept: dict[str, list[float]] = {"fma": [], "stream": []}
    for _ in range(args.samples):
        for kernel in kept:
            alone = run([0], kernel, args.seconds)[0]
            pair = run([0, 1], kernel, args.seconds)
            ratios = [rate / alone for rate in pair]
            kept[kernel].extend(ratios)
            load = open("/proc/loadavg").read().split()[0]
            print(f"{time.strftime('%H:%M:%S')} {kernel:6s} alone {alone:9.0f}/s  "
                  f"pair kept {ratios[0]:.2f} / {ratios[1]:.2f}  (load {load})", flush=True)
    for kernel, ratios in kept.items():
        q = statistics.quantiles(ratios, n=4)
        print(f"{kernel}: each of the pair kept median {statistics.median(ratios):.2f} of one "
              f"alone (quartiles {q[0]:.2f}-{q[2]:.2f}, min {min(ratios):.2f}, "
              f"{len(ratios)} values)")


if __name__ == "__main__":
    main()
