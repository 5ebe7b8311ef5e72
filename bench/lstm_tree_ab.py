"""LSTM(128) training with two versions of the LSTM's kernel module, alternating in one process.

    python bench/lstm_tree_ab.py --base HEAD~1 [--pairs 40] [--batches 12]
    python bench/lstm_tree_ab.py --base WORKTREE   # A/A: the working tree against itself

Version A is ``sdk/lamina/backend/rnn_lstm_kernels.py`` (with ``rnn_lanes.py`` and
``rnn_buffers.py``) as of git revision ``--base``, loaded from a copy under a temporary
directory as separate modules; version B is the working tree's. ``rnn_lstm`` looks its
kernel module up at each call, so one model (bench/lstm.py's) trains one epoch with A,
then one with B (the order swaps each pair), and each epoch's wall and process CPU time
per step is recorded. Prints the medians of the per-pair B/A ratios (wall and CPU),
each version's median step, the 1-minute load average over the run, and whether both
versions train to the same bits (the weights after the same seeded epochs). Both
versions compile (or load from numba's cache) in an unmeasured first pair.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lstm import CLASSES, UNITS, sequences

ROOT = Path(__file__).resolve().parent.parent
MODULES = ("rnn_buffers", "rnn_lanes", "rnn_lstm_kernels")  # (each before its importers)


def load_base(rev: str, where: Path) -> dict:
    """The ``MODULES`` as of ``rev``, imported under their own names (``base_<name>``),
    each importing the others' base versions."""
    import lamina.backend as backend

    mods = {}
    for name in MODULES:
        if rev == "WORKTREE":  # (an A/A run: how much the harness itself tilts)
            text = (ROOT / "sdk" / "lamina" / "backend" / f"{name}.py").read_text()
        else:
            text = subprocess.run(["git", "show", f"{rev}:sdk/lamina/backend/{name}.py"],
                                  cwd=ROOT, check=True, capture_output=True, text=True).stdout
        for other in mods:
            text = text.replace(f"from lamina.backend.{other} import",
                                f"from base_{other} import")
            text = text.replace(f"from lamina.backend import {other}\n",
                                f"import base_{other} as {other}\n")
        path = where / f"base_{name}.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location(f"base_{name}", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # (numba's cache rebuilds a kernel's module by name)
        spec.loader.exec_module(mod)
        for other, base in mods.items():  # (``from lamina.backend import a, b`` too)
            if isinstance(getattr(mod, other, None), type(backend)):
                setattr(mod, other, base)
        mods[name] = mod
    return {"rnn_lstm_kernels": mods["rnn_lstm_kernels"],
            "working": backend.rnn_lstm_kernels}


def weights_digest(model) -> str:
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for w in model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="HEAD")
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--steps", type=int, default=28)
    ap.add_argument("--features", type=int, default=28)
    args = ap.parse_args()

    import lamina as keras
    from lamina import layers
    from lamina.backend import rnn_lstm

    where = Path(tempfile.mkdtemp(prefix="lstm_tree_ab_"))
    versions = load_base(args.base, where)
    kernels = {"A": versions["rnn_lstm_kernels"], "B": versions["working"]}

    def build():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((args.steps, args.features)),
                                  layers.LSTM(UNITS),
                                  layers.Dense(CLASSES, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    n = 128 * args.batches
    x, y = sequences(n, steps=args.steps, features=args.features)
    digests = {}
    for v in "AB":  # same seeded epochs with each version: same bits?
        rnn_lstm.rnn_lstm_kernels = kernels[v]
        model = build()
        model.fit(x, y, batch_size=128, epochs=2, verbose=0, shuffle=False)
        digests[v] = weights_digest(model)
    model = build()
    wall, cpu = {"A": [], "B": []}, {"A": [], "B": []}
    loads = []
    for p in range(args.pairs + 1):
        for v in ("AB" if p % 2 else "BA"):
            rnn_lstm.rnn_lstm_kernels = kernels[v]
            w0, c0 = time.perf_counter(), time.process_time()
            model.fit(x, y, batch_size=128, epochs=1, verbose=0)
            if p:
                wall[v].append((time.perf_counter() - w0) / args.batches * 1e3)
                cpu[v].append((time.process_time() - c0) / args.batches * 1e3)
        loads.append(os.getloadavg()[0])
    rnn_lstm.rnn_lstm_kernels = kernels["B"]
    ratio_w = [b / a for a, b in zip(wall["A"], wall["B"])]
    ratio_c = [b / a for a, b in zip(cpu["A"], cpu["B"])]
    med = statistics.median
    print(f"base {args.base} (A) vs working tree (B); {args.pairs} pairs of "
          f"{args.batches}-step epochs, {args.steps}x{args.features}")
    for v in "AB":
        print(f"{v}: step median {med(wall[v]):.2f} ms wall, {med(cpu[v]):.2f} ms CPU")
    q1, _, q3 = statistics.quantiles(ratio_w, n=4)
    print(f"B/A per pair: wall median {med(ratio_w):.3f} (quartiles {q1:.3f}-{q3:.3f}), "
          f"CPU median {med(ratio_c):.3f}; load {min(loads):.2f}-{max(loads):.2f}")
    print(f"same bits: {digests['A'] == digests['B']} ({digests['A']} / {digests['B']})")


if __name__ == "__main__":
    main()
