"""Compile Lamina's kernels before the first job needs them (``lamina warm``).

numba compiles a kernel the first time a process calls it with new argument types, and
caches the machine code on disk: next to Lamina's sources, or under
``$NUMBA_CACHE_DIR``, keyed by the source file and the CPU. Later processes on the same
CPU load it in milliseconds. On a fresh machine or container, the first processes pay
the compiles instead: ~15 s for a Dense, convnet, LSTM and attention model on this
project's 2-core machines, and every replica of a first job pays them at once.

:func:`warm` trains tiny models of every family that has kernels (Dense with dropout
under each optimizer with a kernel, a convnet, an LSTM, multi-head attention), with the
kernels forced at every size (``LAMINA_KERNELS=numba``; Lamina's GEMM for every
float32 product where it runs), and a two-replica
data-parallel ``fit`` (the collective's and the shared update's kernels) in two
processes of :mod:`lamina.distribute.local`. The Docker image runs it at build, as its
runtime user, so that its workers' replicas load every kernel from the cache.

    lamina warm                # compile and cache; prints what it compiled and loaded
    lamina warm --no-replicas  # the in-process models only
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np


def dispatchers() -> list:
    """The numba dispatchers of every loaded Lamina module: the compiled
    :class:`lamina.backend.compiled.kernel` functions and the modules' own ``njit`` ones."""
    if "numba" not in sys.modules:  # nothing compiled (kernels off, or the library's)
        return []
    from numba.core.dispatcher import Dispatcher

    from lamina.backend.compiled import kernel

    found, seen = [], set()
    for name, module in list(sys.modules.items()):
        if not name.startswith("lamina.") or module is None:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, kernel):
                value = value._compiled
            if isinstance(value, Dispatcher) and id(value) not in seen:
                seen.add(id(value))
                found.append(value)
    return found


def cache_counts() -> dict:
    """``{"compiled": n, "loaded": n}``: this process's kernel compiles so far (numba
    cache misses) and kernels loaded from the cache (hits), over :func:`dispatchers`."""
    counts = {"compiled": 0, "loaded": 0}
    for dispatcher in dispatchers():
        stats = dispatcher.stats
        counts["compiled"] += sum(stats.cache_misses.values())
        counts["loaded"] += sum(stats.cache_hits.values())
    return counts


def library_counts() -> dict:
    """``{"library_calls": n, "numba": imported?}``: this process's calls that ran in the
    ahead-of-time library (:mod:`lamina.backend.aot`), and whether numba was imported."""
    from lamina.backend import aot

    found = aot.library()
    calls = 0 if found is None else sum(e.calls for e in found["entries"].values())
    return {"library_calls": calls, "numba": "numba" in sys.modules}


def _fit(model, x, y, optimizer="adam", batch_size=16) -> None:
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)


def _mlp(keras):
    layers = keras.layers
    return keras.Sequential([
        keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(32, activation="relu"),
        layers.Dropout(0.2), layers.Dense(10, activation="softmax")])


def _models() -> None:
    """Every model family with kernels, trained briefly (the caller forces kernels)."""
    import lamina as keras

    layers = keras.layers
    rng = np.random.default_rng(0)
    x = rng.random((48, 28, 28, 1), np.float32)
    y = rng.integers(0, 10, 48)
    optimizers = [keras.optimizers.Adam(), keras.optimizers.Adam(amsgrad=True),
                  keras.optimizers.AdamW(), keras.optimizers.SGD(),
                  keras.optimizers.SGD(momentum=0.9),
                  keras.optimizers.SGD(momentum=0.9, nesterov=True),
                  keras.optimizers.RMSprop(), keras.optimizers.RMSprop(centered=True,
                                                                      momentum=0.9),
                  keras.optimizers.Adagrad(), keras.optimizers.Adamax(),
                  keras.optimizers.Lion()]
    for optimizer in optimizers:
        _fit(_mlp(keras), x, y, optimizer)
    _fit(keras.Sequential([
        keras.Input((28, 28, 1)), layers.Conv2D(8, 3, activation="relu"),
        layers.MaxPooling2D(2), layers.Conv2D(8, 3, activation="relu"),
        layers.MaxPooling2D(2), layers.Flatten(), layers.Dropout(0.5),
        layers.Dense(10, activation="softmax")]), x, y)
    _fit(keras.Sequential([keras.Input((28, 28)), layers.LSTM(16),
                           layers.Dense(10, activation="softmax")]), x[..., 0], y)
    inputs = keras.Input((16, 8))
    h = layers.MultiHeadAttention(2, 4, dropout=0.1)(inputs, inputs)
    h = layers.LayerNormalization()(layers.Add()([inputs, h]))
    h = layers.Dense(16, activation="relu")(h)
    outputs = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling1D()(h))
    _fit(keras.Model(inputs, outputs), rng.random((48, 16, 8), np.float32), y)
    _collective()


def _collective() -> None:
    """The shared-memory collective's weighted sums, which only replicas run: called here
    with the types they take, so that the ahead-of-time library has them too."""
    from lamina.distribute import shm_kernels

    slot, out, weight = np.ones(64, np.float32), np.empty(64, np.float32), np.float32(0.5)
    shm_kernels.weighted_pair(slot, slot, weight, weight, out)
    shm_kernels.weighted_add(slot, weight, out)


def _forced():
    """Kernels at every size: numba's (``LAMINA_KERNELS=numba``) and, where it runs,
    Lamina's GEMM for every float32 product (tiny models' products are under
    ``gemm.MIN_FLOPS``, a real model's are not: its driver's layouts must compile too)."""
    import contextlib

    from lamina.backend import compiled, gemm

    stack = contextlib.ExitStack()
    stack.enter_context(compiled.use_kernels("numba"))
    if gemm.kernel() is not None:
        stack.enter_context(gemm.use_gemm("lamina"))
    return stack


def _gemm_layouts() -> None:
    """Lamina's GEMM driver for every operand layout a product's parts can have (C order,
    a transposed view, a column range; ``out`` whole or a column range): the pool cuts
    products into column ranges only when they are large, which warm's models are not."""
    from lamina.backend import gemm

    if gemm.kernel() is None:
        return
    base = np.ones((8, 8), np.float32)
    layouts = {"C": base, "F": base.T, "A": base[:, :4]}
    for a in layouts.values():
        for b in layouts.values():
            b = b[:a.shape[1]]
            for out in (np.empty((8, b.shape[1]), np.float32),
                        np.empty((8, b.shape[1] + 1), np.float32)[:, 1:]):
                with gemm.use_gemm("lamina"):
                    gemm.matmul_into(a, b, out, True)


def _replica() -> dict:
    """One rank of the data-parallel warm-up (run by :func:`lamina.distribute.local.launch`
    in its own process): the MLP under the rank's strategy; its cache counts."""
    import lamina as keras

    rng = np.random.default_rng(0)
    x = rng.random((96, 28, 28, 1), np.float32)
    y = rng.integers(0, 10, 96)
    with _forced():
        keras.utils.set_random_seed(0)
        _fit(_mlp(keras), x, y, batch_size=32)
    return {**cache_counts(), **library_counts()}


def warm(replicas: bool = True) -> dict:
    """Compile (or load) every kernel the model families use; returns
    ``{"compiled", "loaded", "seconds", "replicas": [per-rank counts]}``.

    Raises:
        RuntimeError: when numba is not installed (``pip install lamina[fast]``) or
            ``LAMINA_KERNELS=numpy`` turns the kernels off.
    """
    from lamina.backend import compiled

    if compiled.choice() == "numpy":
        raise RuntimeError("LAMINA_KERNELS=numpy turns Lamina's compiled kernels off: "
                           "nothing to warm")
    if not compiled._numba_imports():
        raise RuntimeError("numba is not installed: Lamina's kernels are off "
                           "(pip install lamina[fast])")
    from lamina.backend import aot

    start = time.perf_counter()
    with aot.disabled():
        with _forced():
            _models()
        _gemm_layouts()
        result = {**cache_counts(), "replicas": []}
        result["library"] = build_library()
    if replicas:
        import lamina
        from lamina.distribute import local

        size = sum(int(w.data.size) for w in _mlp(lamina).trainable_weights)
        result["replicas"] = local.launch(_replica, 2, n=size)
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def build_library(where=None) -> dict:
    """Build (or find up to date) the ahead-of-time library of every overload this
    process compiled (:mod:`lamina.backend.aot`), in ``where`` (default: its
    ``LAMINA_AOT_DIR``); ``{"path", "entries", "skipped",
    "built"}``, or ``{"error": why}`` when it cannot be built (no C compiler): the
    kernels then load from numba's cache as before."""
    from lamina.backend import aot, gemm, threads
    from lamina.backend.compiled import kernel

    # What the runtime looks up: every @kernel, the GEMM's driver and the pool's waits
    # (not the helpers those call: their code is inside their callers').
    wanted = {gemm.DRIVER, *threads.SPIN_KERNELS}
    for name, module in list(sys.modules.items()):
        if name.startswith("lamina.") and module is not None:
            wanted |= {value.qualified_name for value in list(vars(module).values())
                       if isinstance(value, kernel)}
    by_name = {f"{d.py_func.__module__}.{d.py_func.__qualname__}": d
               for d in dispatchers() if d.signatures}
    by_name = {name: d for name, d in by_name.items() if name in wanted}
    extra = {}
    if gemm.kernel() is not None:
        from lamina.backend import gemm_kernels

        extra[gemm.UKR_SYMBOL] = gemm_kernels.kernel_ir(gemm.UKR_SYMBOL)
    try:
        return aot.build(by_name, extra, where=where)
    except RuntimeError as exc:
        return {"error": str(exc)}


def describe(result: dict) -> str:
    """One line for the command's output."""
    ranks = "".join(f"; replica {rank}: {r['compiled']} compiled, {r['loaded']} loaded"
                    for rank, r in enumerate(result["replicas"]))
    where = os.environ.get("NUMBA_CACHE_DIR") or ("numba's default: next to Lamina's "
                                                  "sources, or the user's cache folder")
    library = result.get("library") or {}
    if "error" in library:
        built = f"; no ahead-of-time library: {library['error']}"
    elif library:
        skipped = sum(len(v) for v in library["skipped"].values())
        built = (f"; ahead-of-time library {'built' if library['built'] else 'up to date'}: "
                 f"{library['entries']} overloads, {skipped} left to numba's JIT "
                 f"({library['path']})")
    else:
        built = ""
    return (f"warmed in {result['seconds']} s: {result['compiled']} kernels compiled, "
            f"{result['loaded']} loaded from the cache{ranks} (cache: {where}){built}")
