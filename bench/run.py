"""`make bench`: every side-by-side benchmark in one go, each printing its own table.

    python bench/run.py            # library: MLP, CNN, LSTM, Transformer vs PyTorch
                                   # (and Keras when installed), CNN next to a neighbour
    python bench/run.py --all      # + optimizer step, worker all-reduce, service
                                   # latency, the jobs page's render times (chromium)

Benchmarks are never tests: they print figures and exit 0 unless a script fails.
Run them on a quiet machine (`uptime`): other processes on the two cores skew every
figure, two-thread BLAS most of all.
"""

from __future__ import annotations

import argparse
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="also the service and worker ones")
    args = parser.parse_args()
    failed = []
    for cmd in LIBRARY + (SYSTEM if args.all else []):
        print(f"\n== bench/{' '.join(cmd)}", flush=True)
        if subprocess.run([sys.executable, str(HERE / cmd[0]), *cmd[1:]]).returncode:
            failed.append(cmd[0])
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
