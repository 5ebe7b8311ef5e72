"""Survey of float32 GEMM libraries on the benchmark MLP's step GEMMs (issue 13).

The MLP 784-512-512-10 on a batch of 128 runs eight GEMMs a training step (~411 MFLOP):
forward ``x @ W`` per layer, backward ``dW = x.T @ dy`` (``x`` C-contiguous, so ``x.T``
is a transposed operand) and ``dX = dy @ W.T`` (no ``dX`` for the first layer). Each is
timed per library on one thread ("1 stream") and as Lamina runs it on two cores ("2
streams": two Python threads, each computing half the output, cut along rows at
multiples of 12 or columns at multiples of 16 as ``parallel.matmul_tasks`` cuts it; the
products under ``PART_FLOPS`` stay whole on one thread, as Lamina runs them). Each
thread loops over its part, so the 2-stream figure is the libraries' throughput without
Lamina's hand-off cost. The bits are checked too: whether a call is deterministic and
whether cutting the rows / columns gives exactly the bits of one call.

Each library runs in a worker process (OpenBLAS reads ``OPENBLAS_CORETYPE`` when it is
loaded); the parent runs the workers round after round, alternating, and prints medians.
Candidates that are not installed are skipped: the extra ones come from PyPI (``blis``,
``scipy-openblas32``, ``mkl``) and are meant for a throwaway venv; torch and JAX from
``LAMINA_BENCH_TORCH_PYTHON`` / ``LAMINA_BENCH_JAX_PYTHON``.

    python bench/gemm_survey.py [--rounds 3] [--json out.json]
    python bench/gemm_survey.py --mlp 4 [--coretypes default,Zen,Haswell]
    python bench/gemm_survey.py --cuts 80
    python bench/gemm_survey.py --training 1,auto

``--mlp``: the MLP's training step (bench/common.py's ``mlp``, Adam) under each
``OPENBLAS_CORETYPE``, one process each, alternating. ``--cuts``: numpy's OpenBLAS on
two threads, each large product cut by rows vs by columns, and the backward's two
products halved vs whole on a thread each. ``--training``: each GEMM part's CPU time
inside the MLP's ``fit`` (one thread, or the pool).
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

PART_FLOPS = 8_000_000  # lamina.backend.parallel.PART_FLOPS
ROW_ALIGN, COL_ALIGN = 12, 16
# (name, m, k, n, layout): "NN" a @ b; "TN" a = x.T with x (k, m) C-contiguous;
# "NT" b = w.T with w (n, k) C-contiguous.
SHAPES = [
    ("fwd1 x@W", 128, 784, 512, "NN"),
    ("fwd2 h@W", 128, 512, 512, "NN"),
    ("fwd3 h@W", 128, 512, 10, "NN"),
    ("dW1 x.T@dy", 784, 128, 512, "TN"),
    ("dW2 h.T@dy", 512, 128, 512, "TN"),
    ("dW3 h.T@dy", 512, 128, 10, "TN"),
    ("dX2 dy@W.T", 128, 512, 512, "NT"),
    ("dX3 dy@W.T", 128, 10, 512, "NT"),
]
CORETYPES = ["Haswell", "SkylakeX", "Cooperlake", "Zen"]


# ---------------------------------------------------------------- worker side


def operands(m, k, n, layout, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if layout == "TN" else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if layout == "NT" else (k, n), dtype=np.float32)
    return (a.T if layout == "TN" else a), (b.T if layout == "NT" else b)


def split_bounds(length, align):
    cut = align * max(1, (length // align) // 2)
    return [(0, cut), (cut, length)]


def halves(a, b, out):
    """Lamina's two parts: along the larger operand (rows of ``a`` or columns of ``b``)."""
    if a.size >= b.size:
        return [(a[lo:hi], b, out[lo:hi]) for lo, hi in split_bounds(a.shape[0], ROW_ALIGN)]
    return [(a, b[:, lo:hi], out[:, lo:hi]) for lo, hi in split_bounds(b.shape[1], COL_ALIGN)]


def _layout(x):
    """(transposed?, leading dimension) of a 2-D float32 view for CBLAS row-major."""
    s0, s1 = (s // x.itemsize for s in x.strides)
    if s1 == 1:
        return False, max(s0, x.shape[1], 1)
    assert s0 == 1, x.strides
    return True, max(s1, x.shape[0], 1)


def cblas(path, symbol, int64, setup=None):
    """A GEMM through a CBLAS ``sgemm`` of a shared library (ctypes drops the GIL)."""
    lib = ctypes.CDLL(path)
    if setup:
        setup(lib)
    fn = getattr(lib, symbol)
    i = ctypes.c_int64 if int64 else ctypes.c_int
    f, p = ctypes.c_float, ctypes.c_void_p
    fn.argtypes = [i, i, i, i, i, i, f, p, i, p, i, f, p, i]
    fn.restype = None

    def gemm(a, b, out):
        (m, k), n = a.shape, b.shape[1]
        ta, lda = _layout(a)
        tb, ldb = _layout(b)
        tc, ldc = _layout(out)
        assert not tc
        fn(101, 112 if ta else 111, 112 if tb else 111, m, n, k, 1.0, a.ctypes.data, lda,
           b.ctypes.data, ldb, 0.0, out.ctypes.data, ldc)
    return gemm


def blis_gemm():
    """cython-blis's bundled BLIS (its typed API takes general strides). Its version
    (0.7.0) has no Zen 4 sub-config: it detects "generic" here, and has no way to force
    another (``bli_arch_set_id`` only re-runs the detection)."""
    import blis

    path = glob.glob(os.path.join(os.path.dirname(blis.__file__), "cy.*.so"))[0]
    lib = ctypes.CDLL(path)
    lib.bli_init()
    lib.bli_arch_string.restype = ctypes.c_char_p
    gemm_arch = lib.bli_arch_string(lib.bli_arch_query_id()).decode()
    d, p = ctypes.c_int64, ctypes.c_void_p
    lib.bli_sgemm.argtypes = [ctypes.c_int, ctypes.c_int, d, d, d, p, p, d, d, p, d, d,
                              p, p, d, d]
    scalars = (ctypes.c_float * 2)(1.0, 0.0)  # alpha, beta: alive as long as gemm
    po = ctypes.addressof(scalars)
    pz = po + 4

    def gemm(a, b, out):
        (m, k), n = a.shape, b.shape[1]
        sa, sb, sc = ([s // 4 for s in x.strides] for x in (a, b, out))
        lib.bli_sgemm(0, 0, m, n, k, po, a.ctypes.data, *sa, b.ctypes.data, *sb, pz,
                      out.ctypes.data, *sc)
    gemm.scalars, gemm.arch = scalars, gemm_arch
    return gemm


def make(name):
    """The candidate ``name`` as ``gemm(a, b, out)`` (2-D float32 views), or None."""
    if name == "numpy":
        return lambda a, b, out: np.matmul(a, b, out=out)
    if name == "scipy":
        import scipy
        import scipy.linalg  # noqa: F401  (loads scipy's OpenBLAS)
        path = glob.glob(os.path.join(os.path.dirname(scipy.__file__) + ".libs",
                                      "libscipy_openblas*.so"))[0]
        return cblas(path, "scipy_cblas_sgemm", False)
    if name == "openblas32":
        import scipy_openblas32
        path = glob.glob(os.path.join(scipy_openblas32.get_lib_dir(), "lib*.so"))[0]
        return cblas(path, "scipy_cblas_sgemm", False)
    if name == "blis":
        return blis_gemm()
    if name == "mkl":
        path = os.path.join(sys.prefix, "lib", "libmkl_rt.so.3")
        if not os.path.exists(path):
            return None
        return cblas(path, "cblas_sgemm", False)
    if name == "torch":
        import torch
        torch.set_num_threads(1)

        def gemm(a, b, out):
            torch.mm(torch.from_numpy(a), torch.from_numpy(b), out=torch.from_numpy(out))
        return gemm
    if name == "jax":
        import jax

        dot = jax.jit(lambda x, y: x @ y)
        cache = {}

        def gemm(a, b, out):
            # operands on the device once (as in a jitted step); out is filled only when
            # the bits are checked (key "copy"), not while timing
            key = (a.__array_interface__["data"][0], a.shape, a.strides,
                   b.__array_interface__["data"][0], b.shape, b.strides)
            if key not in cache:
                cache[key] = (jax.device_put(a), jax.device_put(b))
            r = dot(*cache[key]).block_until_ready()
            if gemm.copy:
                out[...] = np.asarray(r)
        gemm.copy = True
        return gemm
    raise ValueError(f"unknown candidate: {name!r}")


def time_shape(gemm, shape, streams, target=0.03):
    _, m, k, n, layout = shape
    a, b = operands(m, k, n, layout)
    out = np.empty((m, n), np.float32)
    flops = 2 * m * k * n
    reps = max(3, int(target * 1e11 / flops))
    parts = halves(a, b, out) if streams == 2 and flops >= PART_FLOPS else [(a, b, out)]
    for part in parts:
        gemm(*part)
    barrier = threading.Barrier(len(parts))
    ends, cpu = [0.0] * len(parts), [0.0] * len(parts)

    def loop(i):
        barrier.wait()
        start = time.thread_time()
        for _ in range(reps):
            gemm(*parts[i])
        ends[i] = time.perf_counter()
        cpu[i] = time.thread_time() - start

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(1, len(parts))]
    for t in threads:
        t.start()
    start = time.perf_counter()
    loop(0)
    for t in threads:
        t.join()
    return (max(ends) - start) / reps, max(cpu) / reps


def check_bits(gemm):
    """Determinism and exact cuts on each step shape and on parallel.exact_cuts' probe."""
    shapes = SHAPES + [("probe", 5 * ROW_ALIGN + 5, 256, 30 * COL_ALIGN, "NN")]
    det = rows = cols = True
    err = 0.0
    for _, m, k, n, layout in shapes:
        a, b = operands(m, k, n, layout, seed=1)
        one = np.empty((m, n), np.float32)
        gemm(a, b, one)
        ref = a.astype(np.float64) @ b.astype(np.float64)
        err = max(err, float(np.abs(one - ref).max() / np.abs(ref).max()))
        again = np.empty_like(one)
        for _ in range(3):
            gemm(np.ascontiguousarray(a) if layout == "NN" else a, b, again)
            det &= np.array_equal(again, one)
        if 2 * m * k * n < PART_FLOPS // 4 and m < 200:
            continue
        for lo, hi in [(0, c) for c in range(ROW_ALIGN, m, ROW_ALIGN)][:12] + \
                [(c, m) for c in range(ROW_ALIGN, m, ROW_ALIGN)][:12]:
            part = np.empty((hi - lo, n), np.float32)
            gemm(a[lo:hi], b, part)
            rows &= np.array_equal(part, one[lo:hi])
        if n >= 2 * COL_ALIGN:
            for cut in range(COL_ALIGN, n, COL_ALIGN)[:8]:
                for lo, hi in ((0, cut), (cut, n)):
                    part = np.empty((m, hi - lo), np.float32)
                    gemm(a, b[:, lo:hi], part)
                    cols &= np.array_equal(part, one[:, lo:hi])
    return {"deterministic": bool(det), "rows_exact": bool(rows), "cols_exact": bool(cols),
            "rel_err_vs_f64": err}


def worker(names, rounds):
    cpus = os.environ.get("GEMM_SURVEY_CPUS")
    if cpus:  # before any library starts its threads: XLA sizes its pool by the affinity
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    gemms = {}
    for name in names:
        try:
            gemm = make(name)
        except Exception as exc:  # a candidate absent from this interpreter
            print(f"skip {name}: {exc!r}", file=sys.stderr)
            continue
        if gemm is not None:
            gemms[name] = gemm
    result = {name: {"bits": check_bits(g), "times": {}} for name, g in gemms.items()}
    for g in gemms.values():
        if hasattr(g, "copy"):
            g.copy = False
    order = list(gemms)
    for r in range(rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            times = result[name]["times"]
            for shape in SHAPES:
                for streams in (1, 2):
                    wall, cpu = time_shape(gemms[name], shape, streams)
                    times.setdefault(f"{shape[0]}|{streams}", []).append(wall)
                    times.setdefault(f"{shape[0]}|{streams}|cpu", []).append(cpu)
    try:
        from threadpoolctl import threadpool_info
        result["_libs"] = [(i.get("internal_api"), i.get("version"), i.get("architecture"))
                           for i in threadpool_info()]
    except ImportError:
        pass
    print(json.dumps(result))


def mlp_worker(samples, epochs):
    """The benchmark MLP trained ``epochs`` epochs in this process (Lamina as installed,
    BLAS as the environment loads it): median ms a step, wall and process CPU time."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from common import mlp

    from lamina.backend import parallel

    model, x, y = mlp(samples, "adam")
    steps = -(-samples // 128)
    model.fit(x[:2048], y[:2048], batch_size=128, epochs=1, verbose=0)  # warm-up
    walls, cpus = [], []
    for _ in range(epochs):
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)
        walls.append((time.perf_counter() - wall) / steps * 1e3)
        cpus.append((time.process_time() - cpu) / steps * 1e3)
    print(json.dumps({"wall_ms": statistics.median(walls), "cpu_ms": statistics.median(cpus),
                      "exact_cuts": parallel.exact_cuts(np.float32)}))


def mlp_coretypes(rounds, samples, epochs, coretypes):
    """The MLP's training step under each OpenBLAS core type, one process each, the
    processes alternating round after round."""
    runs = {c: [] for c in coretypes}
    loads = []
    for r in range(rounds):
        for core in coretypes if r % 2 == 0 else coretypes[::-1]:
            env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
            if core != "default":
                env["OPENBLAS_CORETYPE"] = core
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--mlp-worker",
                                   f"{samples},{epochs}"], capture_output=True, text=True,
                                  env=env, timeout=900)
            lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
            if proc.returncode or not lines:
                print(f"{core}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            runs[core].append(json.loads(lines[-1]))
        loads.append(os.getloadavg()[0])
    print(f"MLP training step by OPENBLAS_CORETYPE ({rounds} rounds of {epochs} epochs of "
          f"{samples} samples; load {min(loads):.2f}-{max(loads):.2f}); medians, ms a step")
    for core, rs in runs.items():
        if rs:
            per_round = " ".join(f"{r['wall_ms']:.2f}" for r in rs)
            print(f"  {core:10} wall {statistics.median(r['wall_ms'] for r in rs):6.2f}  "
                  f"cpu {statistics.median(r['cpu_ms'] for r in rs):6.2f}  "
                  f"per round {per_round}  "
                  f"exact cuts (rows, cols) {rs[0]['exact_cuts']}")


def _two_threads(assign, reps):
    """Wall seconds per rep of two threads, each running its list of GEMMs ``reps``
    times (numpy's matmul, one-thread OpenBLAS), started together."""
    barrier, ends = threading.Barrier(2), [0.0, 0.0]

    def loop(i):
        barrier.wait()
        for _ in range(reps):
            for a, b, out in assign[i]:
                np.matmul(a, b, out=out)
        ends[i] = time.perf_counter()

    thread = threading.Thread(target=loop, args=(1,))
    thread.start()
    start = time.perf_counter()
    loop(0)
    thread.join()
    return (max(ends) - start) / reps


def cuts_study(rounds):
    """How numpy's OpenBLAS runs the step's GEMMs on two threads: each large product cut
    by rows or by columns (Lamina cuts along the larger operand), and a layer's two
    backward products (dW2, dX2) each halved or each whole on its own thread. Turns of a
    few reps alternate finely, so that both arms see the same load; medians."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    print(f"two threads, wall ms per product (median of {rounds} alternating turns)")
    for name, m, k, n, layout in SHAPES:
        if 2 * m * k * n < PART_FLOPS:
            continue
        a, b = operands(m, k, n, layout)
        out = np.empty((m, n), np.float32)
        by = {"rows": [(a[lo:hi], b, out[lo:hi]) for lo, hi in split_bounds(m, ROW_ALIGN)],
              "cols": [(a, b[:, lo:hi], out[:, lo:hi]) for lo, hi in split_bounds(n, COL_ALIGN)]}
        times = {"rows": [], "cols": []}
        for r in range(rounds):
            for arm in ("rows", "cols") if r % 2 else ("cols", "rows"):
                times[arm].append(_two_threads([[by[arm][0]], [by[arm][1]]], 4))
        one = []
        for _ in range(rounds):
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            one.append(time.perf_counter() - start)
        rule = "rows" if a.size >= b.size else "cols"
        print(f"  {name:12} rows {statistics.median(times['rows']) * 1e3:.3f}  cols "
              f"{statistics.median(times['cols']) * 1e3:.3f}  (Lamina: {rule}; one thread, "
              f"whole: {statistics.median(one) * 1e3:.3f})")
    h, dy = operands(512, 128, 512, "TN")
    w = np.random.default_rng(3).standard_normal((512, 512), dtype=np.float32)
    dw, dx = np.empty((512, 512), np.float32), np.empty((128, 512), np.float32)
    parts = halves(h, dy, dw) + halves(dy, w.T, dx)
    arms = {"halved": [[parts[0], parts[2]], [parts[1], parts[3]]],
            "whole": [[(h, dy, dw)], [(dy, w.T, dx)]]}
    times = {arm: [] for arm in arms}
    for r in range(rounds):
        for arm in arms if r % 2 else list(arms)[::-1]:
            times[arm].append(_two_threads(arms[arm], 2))
    print("  dW2 + dX2   " + "  ".join(f"{arm} {statistics.median(t) * 1e3:.3f}"
                                      for arm, t in times.items()))
    bare, lamina = _step_gemms()
    times = {"bare calls": [], "matmul_tasks": []}
    for r in range(rounds):
        for arm, fn in [("bare calls", bare), ("matmul_tasks", lamina)][::1 if r % 2 else -1]:
            start = time.perf_counter()
            for _ in range(3):
                fn()
            times[arm].append((time.perf_counter() - start) / 3)
    print("one thread, the step's 8 GEMMs: " + "  ".join(
        f"{arm} {statistics.median(t) * 1e3:.3f} ms" for arm, t in times.items()))
    print(f"load {os.getloadavg()[0]:.2f}")


def _step_gemms():
    """The step's GEMMs as bare ``np.matmul`` calls into kept outputs, and as Dense runs
    them (``parallel.matmul_tasks`` with the bias/ReLU epilogue, new outputs, the bias
    gradient's sum) on one thread (policy 1), with Lamina's malloc settings."""
    from lamina.backend import memory, parallel, threads

    memory.keep_freed_memory()
    threads.set_thread_policy(1)
    rng = np.random.default_rng(0)
    f32 = np.float32
    x = rng.random((128, 784), dtype=f32)
    ws = [rng.standard_normal(s, dtype=f32) * 0.05 for s in [(784, 512), (512, 512), (512, 10)]]
    h1, h2, g2 = (rng.random((128, 512), dtype=f32) for _ in range(3))
    g3 = rng.standard_normal((128, 10), dtype=f32)
    products = [(x, ws[0]), (h1, ws[1]), (h2, ws[2]), (h2.T, g3), (g3, ws[2].T), (h1.T, g2),
                (g2, ws[1].T), (x.T, g2)]
    outs = [np.empty((a.shape[0], b.shape[1]), f32) for a, b in products]

    def bare():
        for (a, b), out in zip(products, outs):
            np.matmul(a, b, out=out)

    def dense_forward(h, w, relu):
        out, bias = np.empty((h.shape[0], w.shape[1]), f32), np.zeros(w.shape[1], f32)

        def epilogue(rows, cols):
            part = out[rows, cols]
            part += bias[cols]
            if relu:
                np.maximum(part, 0, out=part)
        parallel.run_tasks(parallel.matmul_tasks(h, w, out, epilogue), flops=2 * 128 * w.size)
        return out

    def dense_backward(h, w, g, input_gradient):
        dw = np.empty(w.shape, f32)
        tasks = parallel.matmul_tasks(h.T, g, dw)
        if input_gradient:
            tasks += parallel.matmul_tasks(g, w.T, np.empty((128, w.shape[0]), f32))
        tasks.append(lambda: g.sum(axis=0))
        parallel.run_tasks(tasks, flops=2 * (1 + input_gradient) * 128 * w.size)

    def lamina():
        dense_forward(dense_forward(dense_forward(x, ws[0], True), ws[1], True), ws[2], False)
        dense_backward(h2, ws[2], g3, True)
        dense_backward(h1, ws[1], g2, True)
        dense_backward(x, ws[0], g2, False)
    return bare, lamina


def in_training(policy, samples=20000):
    """Each GEMM part's thread CPU time inside the MLP's ``fit`` (Dense's calls to
    ``parallel.matmul_tasks`` wrapped), under thread policy ``policy``: GFLOP/s per core
    in training, against the hot loops above."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from collections import defaultdict

    from common import mlp

    from lamina.backend import nn, parallel, threads

    threads.set_thread_policy(int(policy) if policy.isdigit() else policy)
    parts = defaultdict(list)
    plain = parallel.matmul_tasks

    def timed(a, b, out, epilogue=None):
        tasks = plain(a, b, out, epilogue)
        key = (a.shape, b.shape, "T" if a.strides[0] == a.itemsize else "N",
               "T" if b.strides[0] == b.itemsize else "N", len(tasks))

        def wrap(task):
            def run():
                start = time.thread_time()
                task()
                parts[key].append(time.thread_time() - start)
            return run
        return [wrap(task) for task in tasks]

    nn.matmul_tasks = timed
    model, x, y = mlp(samples, "adam")
    model.fit(x[:2048], y[:2048], batch_size=128, epochs=1, verbose=0)
    parts.clear()
    steps = samples // 128  # full batches (the last, short one is left out below)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"policy {policy}: step {wall / steps * 1e3:.2f} ms wall, {cpu / steps * 1e3:.2f} ms "
          f"CPU; load {os.getloadavg()[0]:.2f}")
    total = 0.0
    for (sa, sb, ta, tb, n), times in parts.items():
        total += sum(times)
        if sa[0] * sb[1] < 128 * 10 or len(times) < steps // 2:
            continue
        med = statistics.median(times)
        flops = 2 * sa[0] * sa[1] * sb[1] / n
        print(f"  {sa}{ta} @ {sb}{tb} in {n} part(s): {len(times) / steps:.1f} a step, "
              f"{med * 1e3:.3f} ms each, {flops / med / 1e9:.0f} GFLOP/s a core")
    print(f"  GEMM CPU time a step: {total / steps * 1e3:.2f} ms")


# ---------------------------------------------------------------- parent side


def configs(gemm_python, torch_python, jax_python):
    """(label, python, candidates, extra env) of each worker process."""
    one = {"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_THREADING_LAYER": "SEQUENTIAL"}
    out = [("default", gemm_python,
            ["numpy", "scipy", "openblas32", "blis", "mkl"],
            one)]
    out += [(f"CORETYPE={c}", gemm_python, ["numpy", "scipy", "openblas32"],
             {**one, "OPENBLAS_CORETYPE": c}) for c in CORETYPES]
    out.append(("MKL AVX512", gemm_python, ["mkl"],
                {**one, "MKL_ENABLE_INSTRUCTIONS": "AVX512"}))
    if torch_python:
        out.append(("torch", torch_python, ["torch"], one))
    if jax_python:
        # XLA runs a dot on its own threads, sized by the CPU affinity: pinned to one CPU
        # for the 1-stream figure (its 2-stream figure then shares that CPU: ignore it),
        # and on both CPUs as Keras runs it (whole products on XLA's threads: compare its
        # wall time, not the calling thread's CPU time)
        out.append(("jax 1 cpu", jax_python, ["jax"], {**one, "GEMM_SURVEY_CPUS": "0"}))
        out.append(("jax 2 cpus", jax_python, ["jax"], one))
    return out


def summarize(runs):
    table = {}
    for label, result in runs:
        for name, r in result.items():
            if name.startswith("_"):
                continue
            row = table.setdefault(f"{name} [{label}]", {"bits": r["bits"], "times": {}})
            for key, ts in r["times"].items():
                row["times"].setdefault(key, []).extend(ts)
    for row in table.values():
        med = {k: statistics.median(v) for k, v in row["times"].items()}
        row["ms"] = med
        flops = sum(2 * s[1] * s[2] * s[3] for s in SHAPES)
        for streams in ("1", "2", "1|cpu", "2|cpu"):
            total = sum(med[f"{s[0]}|{streams}"] for s in SHAPES)
            row[f"step_ms_{streams}"] = total * 1e3
            row[f"step_gflops_{streams}"] = flops / total / 1e9
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="outer rounds of all workers")
    parser.add_argument("--inner", type=int, default=3, help="rounds inside each worker")
    parser.add_argument("--only", default="", help="comma-separated config labels")
    parser.add_argument("--json", default="")
    parser.add_argument("--mlp", type=int, default=0, metavar="ROUNDS",
                        help="instead: the MLP's training step under OpenBLAS core types")
    parser.add_argument("--coretypes", default="default,Zen,Haswell")
    parser.add_argument("--training", default="", metavar="POLICY",
                        help="instead: GEMM parts timed inside the MLP's fit (1, auto)")
    parser.add_argument("--cuts", type=int, default=0, metavar="ROUNDS",
                        help="instead: rows vs columns cuts, and the backward's pair")
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    parser.add_argument("--mlp-worker", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker.split(","), args.inner)
        return
    if args.mlp_worker:
        mlp_worker(*map(int, args.mlp_worker.split(",")))
        return
    if args.training:
        for policy in args.training.split(","):
            in_training(policy)
        return
    if args.cuts:
        cuts_study(args.cuts)
        return
    if args.mlp:
        mlp_coretypes(args.mlp, 20000, 3, args.coretypes.split(","))
        return
    cfgs = configs(sys.executable, os.environ.get("LAMINA_BENCH_TORCH_PYTHON"),
                   os.environ.get("LAMINA_BENCH_JAX_PYTHON"))
    if args.only:
        cfgs = [c for c in cfgs if c[0] in args.only.split(",")]
    runs, loads = [], []
    for r in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for label, python, names, env in cfgs if r % 2 == 0 else cfgs[::-1]:
            cmd = [python, os.path.abspath(__file__), "--worker", ",".join(names),
                   "--inner", str(args.inner)]
            full_env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**full_env, **env},
                                  timeout=900)
            lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
            if proc.returncode or not lines:
                print(f"{label}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            runs.append((label, json.loads(lines[-1])))
    loads.append(os.getloadavg()[0])
    table = summarize(runs)
    print(f"load (1-min) over the run: {min(loads):.2f}-{max(loads):.2f}")
    print("step = the 8 GEMMs of one MLP step; 'cpu' = each thread's CPU time (the slower"
          " thread), which a neighbour's load on the other core does not inflate")
    print(f"{'candidate':34} {'1 stream':>14} {'2 streams wall':>15} {'2 streams cpu':>15}"
          "  det rows cols  err")
    for name, row in table.items():
        b = row["bits"]
        print(f"{name:34} {row['step_ms_1']:6.2f} ms {row['step_gflops_1']:4.0f}G "
              f"{row['step_ms_2']:6.2f} ms {row['step_gflops_2']:4.0f}G  "
              + (f"{'n/a (XLA threads)':>15}  " if name.startswith("jax") else
                 f"{row['step_ms_2|cpu']:6.2f} ms {row['step_gflops_2|cpu']:4.0f}G  ")
              + f"{'yes' if b['deterministic'] else 'NO':>3} "
              f"{'yes' if b['rows_exact'] else 'no':>4} "
              f"{'yes' if b['cols_exact'] else 'no':>4}  {b['rel_err_vs_f64']:.1e}")
    print("\nper shape, GFLOP/s (1 stream / 2 streams, by CPU time):")
    print(f"{'candidate':34} " + " ".join(f"{s[0]:>14}" for s in SHAPES))
    for name, row in table.items():
        cells = []
        for s in SHAPES:
            flops = 2 * s[1] * s[2] * s[3]
            cells.append(f"{flops / row['ms'][s[0] + '|1'] / 1e9:6.0f}/"
                         f"{flops / row['ms'][s[0] + '|2|cpu'] / 1e9:<6.0f}")
        print(f"{name:34} " + " ".join(f"{c:>14}" for c in cells))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"loads": loads, "table": table}, fh, indent=1)


if __name__ == "__main__":
    main()
