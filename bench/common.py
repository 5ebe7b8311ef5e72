"""Shared pieces of the side-by-side benchmarks: synthetic data, timing, the torch and Keras
runners."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def mnist_like(n: int, seed: int = 0):
    """MNIST-shaped learnable data: (n, 28, 28, 1) float32 in [0, 1], int64 labels 0..9.

    Each class is a fixed blocky stroke pattern, shifted by up to 2 pixels and scaled in
    intensity, with sparse speckle noise and 5% label noise.
    """
    rng = np.random.default_rng(seed)
    patterns = (rng.random((10, 5, 5)) > 0.55).astype(np.float32)
    templates = np.zeros((10, 28, 28), np.float32)
    templates[:, 4:24, 4:24] = patterns.repeat(4, axis=1).repeat(4, axis=2)
    y = rng.integers(0, 10, size=n)
    shifts = rng.integers(-2, 3, size=(n, 2))
    x = np.empty((n, 28, 28), np.float32)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            rows = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            x[rows] = np.roll(templates[y[rows]], (dy, dx), axis=(1, 2))
    x *= rng.uniform(0.6, 1.0, size=(n, 1, 1)).astype(np.float32)
    noise = rng.random((n, 28, 28), dtype=np.float32)
    noise = np.where(noise < 0.15, noise / 0.15, 0).astype(np.float32)
    noise[:, :3] = noise[:, -3:] = 0
    noise[:, :, :3] = noise[:, :, -3:] = 0
    np.maximum(x, noise, out=x)
    flip = rng.random(n) < 0.05
    y[flip] = rng.integers(0, 10, size=int(flip.sum()))
    return x[..., None], y.astype(np.int64)


def fit_epochs(model, x, y, epochs: int, batch_size: int) -> tuple[list[float], list[float]]:
    """Train a Keras-API ``model`` (Lamina's or Keras's) with its own ``fit``, one call
    per epoch: each epoch's wall seconds and last loss."""
    times, losses = [], []
    for _ in range(epochs):
        start = time.perf_counter()
        history = model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
        losses.append(float(history.history["loss"][-1]))
    return times, losses


def torch_epochs(net, opt, loss_fn, xt, yt, epochs: int,
                 batch_size: int) -> tuple[list[float], list[float]]:
    """Train a PyTorch ``net`` eagerly, the plain loop (a fresh permutation an epoch,
    ``zero_grad``/``backward``/``step`` a batch): each epoch's wall seconds and last
    loss."""
    import torch

    times, losses = [], []
    for _ in range(epochs):
        start = time.perf_counter()
        net.train()
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), batch_size):
            idx = perm[i:i + batch_size]
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
    return times, losses


def train_rate(samples: int, times: list[float]) -> float:
    """Train samples a second over the epochs after the first (a warm-up: imports,
    compilation, first touches), or over the only one."""
    steady = times[1:] or times
    return samples * len(steady) / sum(steady)


def torch_python() -> str | None:
    """A Python that can import torch: this one, $LAMINA_BENCH_TORCH_PYTHON, or a side venv."""
    return _first_python([os.environ.get("LAMINA_BENCH_TORCH_PYTHON"), sys.executable,
                          "/work/venv-bench/bin/python", "/work/venv-torch/bin/python"],
                         "import torch")


def _first_python(candidates: list[str | None], code: str, env: dict | None = None):
    """The first of ``candidates`` that exists and runs ``code`` with exit status 0."""
    for python in candidates:
        if not python or not (shutil.which(python) or os.path.exists(python)):
            continue
        if subprocess.run([python, "-c", code], capture_output=True, env=env).returncode == 0:
            return python
    return None


# the side venvs, then the CI's (.ci/run makes it for the Keras interop tests)
KERAS_CANDIDATES = ("/work/kvenv/bin/python", "/work/venv-keras/bin/python",
                    str(HERE.parent / "build" / "keras-venv" / "bin" / "python"))


def keras_env() -> dict:
    """The environment of a Keras child: ``KERAS_BACKEND=jax`` (else Keras 3 imports
    TensorFlow and fails without it) and no PYTHONPATH, so that our ``lamina`` (on it in
    the project's shells) cannot stand in for anything in the other interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["KERAS_BACKEND"] = "jax"
    return env


def keras_python() -> str | None:
    """A Python that imports Keras 3 on JAX: $LAMINA_BENCH_KERAS_PYTHON, this one, or a
    venv (``/work/kvenv``, the CI's ``build/keras-venv``); None when none does or
    $LAMINA_BENCH_KERAS_PYTHON is ``none`` (the benches as without Keras). Lamina never
    imports Keras; only the benches' children do."""
    chosen = os.environ.get("LAMINA_BENCH_KERAS_PYTHON")
    if chosen == "none":
        return None
    return _first_python([chosen, sys.executable, *KERAS_CANDIDATES],
                         "import keras, sys; sys.exit(keras.backend.backend() != 'jax')",
                         env=keras_env())


def no_keras_line() -> str:
    return ("keras not found (no $LAMINA_BENCH_KERAS_PYTHON, this Python or "
            f"{', '.join(KERAS_CANDIDATES)} imports keras on jax): no keras column")


def run_json(cmd: list[str], timeout: int = 3600, env: dict | None = None) -> dict:
    """Run a benchmark subprocess and parse the last JSON line it prints."""
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        raise RuntimeError(f"benchmark failed: {' '.join(cmd)}\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


def run_measured(cmd: list[str], env: dict | None = None) -> dict:
    """Run a benchmark subprocess: its last JSON line plus its own peak RSS in MB
    (``wait4``: this child's rusage, not its siblings')."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        out = proc.stdout.read()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if proc.returncode or not lines:
            raise RuntimeError(f"benchmark failed: {' '.join(cmd)}\n{err.read()[-3000:]}")
    return {**json.loads(lines[-1]), "peak_rss_mb": usage.ru_maxrss / 1024}


def runners() -> list[tuple[str, str, dict | None]]:
    """``(framework, python, env)`` for each framework found, in the order a round runs
    them: lamina (this Python), torch, keras. Prints one line when Keras is missing."""
    found = [("lamina", sys.executable, None)]
    tpython, kpython = torch_python(), keras_python()
    if tpython:
        found.append(("torch", tpython, None))
    if kpython:
        found.append(("keras", kpython, keras_env()))
    else:
        print(no_keras_line(), flush=True)
    return found


def round_order(names: list, r: int) -> list:
    """The order round ``r`` runs the frameworks in: :func:`runners`'s order rotated by
    ``r``, so that none always runs first (on a machine that has just been idle) or
    always right after the same neighbour."""
    r %= max(1, len(names))
    return names[r:] + names[:r]


def blas_line() -> str:
    """One line on numpy's BLAS in this environment (the children inherit it): OpenBLAS's
    version and kernel set, ``OPENBLAS_CORETYPE``, and the note of
    :func:`lamina.backend.blas_threads.describe_blas` when that variable holds OpenBLAS
    below the CPU, which GEMM float32 products take (:func:`lamina.backend.gemm.describe`)
    and where the compiled kernels come from (:func:`lamina.backend.aot.describe`) -- so
    that a figure says which kernels it measured."""
    from lamina.backend.blas_threads import describe_blas

    blas = describe_blas()
    if blas["library"] is None:
        return "numpy's BLAS: not an OpenBLAS threadpoolctl can see"
    cpu = {True: "CPU with AVX-512", False: "CPU without AVX-512", None: "CPU flags unknown"}
    line = (f"numpy's BLAS: OpenBLAS {blas['version']}, {blas['core']} kernels "
            f"(OPENBLAS_CORETYPE={blas['coretype_env'] or 'unset'}; "
            f"{cpu[blas['cpu_avx512']]})")
    from lamina.backend import aot, gemm

    line += f"; float32 GEMM: {gemm.describe()}; compiled kernels: {aot.describe()}"
    return line + (f"; note: {blas['note']}" if blas["note"] else "")


def side_by_side(rounds: int, command, describe=None) -> dict[str, list[dict]]:
    """``rounds`` rounds, each running every framework of :func:`runners` once, in an
    order rotated each round (:func:`round_order`; ``command(framework, python)`` ->
    argv; its JSON line plus its peak RSS), and printing one line a round, the columns
    in :func:`runners`'s order whatever order they ran in: ``<framework> <samples/s>
    samples/s (<describe(framework, result)>, peak RSS <MB> MB, load <1-min load at its
    end>, others <CPU> CPU, steal <CPU>)`` for each, the last two from a ``quiet.Span``
    around that child alone (the whole child: start-up, data, warm-up and timed epochs;
    ``others``: the CPUs busy with anything but this process tree, per wall second),
    then ``(ran: <order>)``. Returns the results a framework, each with its span's
    figures (``"span"``)."""
    import quiet

    found = runners()
    results: dict[str, list[dict]] = {name: [] for name, _, _ in found}
    print(blas_line(), flush=True)
    for r in range(rounds):
        columns = {}
        order = round_order(found, r)
        for name, python, env in order:
            with quiet.Span() as span:
                result = run_measured(command(name, python), env=env)
            result["span"] = span.as_dict()
            results[name].append(result)
            extra = describe(name, result) if describe else ""
            columns[name] = (f"{name} {result['train_samples_per_s']:.0f} samples/s ("
                             f"{extra + ', ' if extra else ''}peak RSS "
                             f"{result['peak_rss_mb']:.0f} MB, load "
                             f"{os.getloadavg()[0]:.2f}, {span.describe()})")
        print("   ".join(columns[name] for name, _, _ in found)
              + f"   (ran: {', '.join(name for name, _, _ in order)})", flush=True)
    return results


def print_keras_ratios(model: str, speed: dict[str, float], rss: dict[str, float] | None = None):
    """The ratio lines with Keras (after a bench's own lamina/torch lines), from the median
    samples/s (and peak RSS) a framework; nothing without Keras."""
    if "keras" not in speed:
        return
    print(f"{model}: lamina/keras train throughput = {speed['lamina'] / speed['keras']:.3f}")
    if rss:
        print(f"{model}: lamina/keras peak RSS = {rss['lamina'] / rss['keras']:.3f}")
    if "torch" in speed:
        ratio = speed["keras"] / speed["torch"]
        print(f"{model}: keras/torch train throughput = {ratio:.3f} "
              f"(keras time = {1 / ratio:.2f}x torch's)")


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def alternate(rounds: int, run, arm, clock=None) -> dict:
    """An A/B in one process: ``run()`` -> seconds, under ``arm("numpy")`` and
    ``arm("numba")`` (context managers) in turn, the order swapping each round; round 0
    is a warm-up.

    Returns ``{"numpy", "numba"}`` (median seconds), ``ratios`` (numpy/numba per round),
    ``loads`` (1-minute load average after each round) and, with ``clock``
    (``time.process_time``), ``cpu`` (median CPU seconds of each arm's turns: less
    inflated than wall time when a neighbour takes the cores) and ``cpu_ratio``.
    """
    times = {"numpy": [], "numba": []}
    cpu = {"numpy": [], "numba": []}
    loads = []
    for r in range(rounds + 1):
        for choice in ("numpy", "numba") if r % 2 else ("numba", "numpy"):
            with arm(choice):
                before = clock() if clock else 0.0
                seconds = run()
                used = clock() - before if clock else 0.0
            if r:
                times[choice].append(seconds)
                cpu[choice].append(used)
        loads.append(os.getloadavg()[0])
    result = {c: statistics.median(v) for c, v in times.items()}
    result["ratios"] = [a / b for a, b in zip(times["numpy"], times["numba"])]
    result["loads"] = loads
    if clock:
        result["cpu"] = {c: statistics.median(v) for c, v in cpu.items()}
        result["cpu_ratio"] = statistics.median(a / b for a, b in zip(cpu["numpy"], cpu["numba"]))
    return result


def mlp(samples: int, optimizer: str):
    """``(model, x, y)``: bench/lamina_models.py's MLP, seeded and compiled with
    ``optimizer``, and ``samples`` random MNIST-shaped inputs with labels."""
    from lamina_models import build

    import lamina

    lamina.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((samples, 28, 28, 1), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 10, samples)
    model = build("mlp")
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model, x, y
