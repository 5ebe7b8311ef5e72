"""`make bench`: every side-by-side benchmark in one go, each printing its own table.

    python bench/run.py            # library: MLP, CNN, LSTM, Transformer vs PyTorch
                                   # (and Keras when installed), CNN next to a neighbour
    python bench/run.py --all      # + optimizer step, worker all-reduce, service
                                   # latency, the jobs page's render times (chromium)
    python bench/run.py --coretype both   # as the environment is, then again without
                                   # OPENBLAS_CORETYPE (when it is set), as a machine
                                   # that does not set it runs numpy's BLAS

Benchmarks are never tests: they print figures and exit 0 unless a script fails.
Run them on a quiet machine (`uptime`): other processes on the two cores skew every
figure, two-thread BLAS most of all.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

LIBRARY = [
    ["ratio.py", "--model", "mlp"],
    ["ratio.py", "--model", "cnn"],
    ["lstm.py"],
    ["transformer.py"],
    ["neighbour.py"],
]
SYSTEM = [
    ["optimizer_step.py"],
    ["worker_allreduce.py"],
    ["service_latency.py"],
    ["web_render.py"],
]


def passes(coretype: str, environ) -> list[tuple[str, dict]]:
    """``(label, environment)`` of each pass: ``as-is`` (the environment as it is),
    ``unset`` (without ``OPENBLAS_CORETYPE``: OpenBLAS picks its kernels by the CPU, as
    on a machine that does not set it; OpenBLAS reads it only when numpy loads it, so a
    pass is a set of new processes) or ``both`` (the unset pass only when it differs)."""
    if coretype not in ("as-is", "unset", "both"):
        raise ValueError(f"coretype must be 'as-is', 'unset' or 'both'. Received: "
                         f"coretype={coretype!r}")
    environ = dict(environ)
    set_here = environ.get("OPENBLAS_CORETYPE")
    unset = {k: v for k, v in environ.items() if k != "OPENBLAS_CORETYPE"}
    as_is = (f"as-is (OPENBLAS_CORETYPE={set_here})" if set_here
             else "as-is (OPENBLAS_CORETYPE unset)", environ)
    if coretype == "as-is" or (coretype == "both" and not set_here):
        return [as_is]
    if coretype == "unset":
        return [("OPENBLAS_CORETYPE unset", unset)]
    return [as_is, ("OPENBLAS_CORETYPE unset", unset)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="also the service and worker ones")
    parser.add_argument("--coretype", choices=("as-is", "unset", "both"), default="as-is",
                        help="numpy's BLAS kernels: the environment as it is, without "
                             "OPENBLAS_CORETYPE, or both passes")
    args = parser.parse_args()
    failed = []
    for label, environ in passes(args.coretype, os.environ):
        print(f"\n==== {label}", flush=True)
        for cmd in LIBRARY + (SYSTEM if args.all else []):
            print(f"\n== bench/{' '.join(cmd)}", flush=True)
            if subprocess.run([sys.executable, str(HERE / cmd[0]), *cmd[1:]],
                              env=environ).returncode:
                failed.append(f"{cmd[0]} ({label})")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
