"""lamina.backend.aot: numba's kernels built ahead of time into a library that a later
process runs without importing numba, with the JIT's bits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

from lamina.backend import aot, compiled, gemm, warm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("cc") is None,
    reason="the library is built on Linux with a C compiler")

GEMM = "lamina.backend.gemm_kernels.gemm_driver"
ADAM = "lamina.optimizers.kernels._adam"
MASK = "lamina.distribute.keys_kernels.masked_scale_rows"
SPIN = "lamina.backend.spin_kernels.spin_while"
STORE_SPIN = "lamina.backend.spin_kernels.store_then_spin"


def _train_mlp_forced():
    """What a Dense model with dropout and Adam compiles: its kernels at every size,
    and the GEMM driver at every operand layout (as ``lamina warm`` does)."""
    import lamina as keras

    rng = np.random.default_rng(0)
    x = rng.random((64, 28, 28, 1), np.float32)
    y = rng.integers(0, 10, 64)
    with warm._forced():
        keras.utils.set_random_seed(0)
        warm._fit(warm._mlp(keras), x, y)
    warm._gemm_layouts()
    from lamina.backend import spin_kernels  # the pool's waits, even where it does not spin

    spin_kernels.spin_while(np.zeros(1, np.int64), 0, 0, 0)
    spin_kernels.store_then_spin(np.zeros(1, np.int64), 0, np.zeros(1, np.int64), 0, 0, 0)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A library built in this process from the MLP's overloads; yields its folder's
    parent (a ``LAMINA_AOT_DIR``)."""
    where = tmp_path_factory.mktemp("aot")
    with aot.disabled():
        _train_mlp_forced()
        built = warm.build_library(where)
    assert built.get("built") is True, built
    yield where
    aot.reset()


@pytest.fixture
def loaded(library, monkeypatch):
    monkeypatch.setenv("LAMINA_AOT_DIR", str(library))
    aot.reset()
    found = aot.library()
    assert found is not None
    yield found
    aot.reset()


def _manifest(library):
    (folder,) = [p for p in library.iterdir() if (p / aot.MANIFEST).is_file()]
    return folder, json.loads((folder / aot.MANIFEST).read_text())


def test_the_manifest_lists_the_mlps_kernels_and_why_others_stay_on_the_jit(library):
    folder, manifest = _manifest(library)
    assert {ADAM, MASK, SPIN, STORE_SPIN} <= set(manifest["entries"])
    assert manifest["cpu"] == aot.cpu_signature()
    assert manifest["offsets"] == list(aot.array_offsets())
    # every source a built kernel comes from, by content
    assert set(manifest["sources"]) >= {"lamina.optimizers.kernels",
                                        "lamina.distribute.keys_kernels"}
    assert aot.sources_hash(manifest["sources"]) == manifest["sources"]
    for reasons in manifest["skipped"].values():  # a reason each, never a silent drop
        assert all(isinstance(r, str) and r for r in reasons)
    assert not list(folder.glob("*.o")) and not list(folder.glob("*.c"))


def test_adam_from_the_library_gives_the_jits_bits(loaded):
    from lamina.optimizers import kernels

    rng = np.random.default_rng(1)
    n = 70_001  # not a multiple of any vector width
    g = rng.standard_normal(n).astype(np.float32)
    g[:4] = [0.0, -0.0, 1e-38, 3e38]  # zeros, a denormal-adjacent, an overflowing square
    w = rng.standard_normal(n).astype(np.float32)
    m = rng.standard_normal(n).astype(np.float32)
    v = rng.random(n).astype(np.float32)
    constants = (np.float32(0.1), np.float32(0.001), np.float32(0.00123), np.float32(1e-7))
    entry = aot.entry(ADAM)
    ours = [w.copy(), m.copy(), v.copy()]
    jit = [w.copy(), m.copy(), v.copy()]
    entry(g, *ours, *constants)
    kernels._adam.jit(g, *jit, *constants)
    assert entry.calls == 1 and entry.misses == 0
    for a, b in zip(ours, jit):
        assert a.tobytes() == b.tobytes()


@pytest.mark.skipif(gemm.kernel() is None, reason="Lamina's GEMM needs AVX-512")
@pytest.mark.parametrize("shape", [(128, 784, 512), (37, 300, 45), (12, 32, 32), (1, 5, 3)])
def test_the_gemm_driver_from_the_library_gives_the_jits_bits_at_every_layout(loaded, shape):
    from lamina.backend import gemm_kernels

    m, k, n = shape
    rng = np.random.default_rng(2)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    jit_ukr = gemm_kernels.compile_kernel()
    ukr = gemm.KERNEL_TYPE(aot.exported(gemm.UKR_SYMBOL))
    entry = aot.entry(GEMM)
    wide = np.zeros((m, n + 3), np.float32)
    built = 0
    for left in (a, np.asfortranarray(a), np.pad(a, ((0, 0), (0, 2)))[:, :k]):
        for right in (b, np.asfortranarray(b)):
            for accumulate in (False, True):
                for out, jit_out in ((np.ones((m, n), np.float32), np.ones((m, n), np.float32)),
                                     (wide.copy()[:, 1:n + 1], wide.copy()[:, 1:n + 1])):
                    if entry.find((ukr, left, right, out, accumulate)) is None:
                        continue  # a layout warm's products do not have: numba's
                    built += 1
                    entry(ukr, left, right, out, accumulate)
                    gemm_kernels.gemm_driver(jit_ukr, left, right, jit_out, accumulate)
                    assert out.tobytes() == jit_out.tobytes()
                    # the library's register kernel under numba's driver: the same too
                    again = np.ones_like(jit_out) if out.base is None else \
                        wide.copy()[:, 1:n + 1]
                    gemm_kernels.gemm_driver(ukr, left, right, again, accumulate)
                    assert again.tobytes() == jit_out.tobytes()
    assert built >= 12, built  # C, F and strided a; C and F b; out whole and a column range


def test_dropouts_keyed_mask_from_the_library_gives_the_jits_bits(loaded):
    from lamina.distribute import keys_kernels

    rng = np.random.default_rng(3)
    v = rng.standard_normal((33, 517)).astype(np.float32)
    v[0, :3] = [np.nan, -0.0, np.inf]
    keys = rng.integers(0, 2 ** 63, 33, dtype=np.int64).astype(np.uint64)
    entry = aot.entry(MASK)
    for lo, hi in ((0, 33), (5, 17)):
        ours, jit = np.zeros_like(v), np.zeros_like(v)
        args = (v, keys, np.uint32(0x60000000), np.float32(1.25), lo, hi)
        entry(*args, ours)
        keys_kernels.masked_scale_rows.jit(*args, jit)
        assert ours.tobytes() == jit.tobytes()
    assert entry.misses == 0


def test_the_pools_waits_from_the_library_return_what_they_saw(loaded):
    spin, store = aot.entry(SPIN), aot.entry(STORE_SPIN)
    word = np.array([7], np.int64)
    assert spin(word, 0, 5, 0) == 7  # differs at once
    assert spin(word, 7, 3, 0) == 7  # still equal after its turns: the last value seen
    cell = np.zeros(1, np.int64)
    assert store(cell, 42, word, 0, 5, 2) == 7
    assert cell[0] == 42
    assert spin.misses == store.misses == 0


def test_other_argument_types_fall_back_to_numba(loaded):
    """A read-only gradient, or float64: no overload was built for them; numba's JIT
    runs the call, with the numpy path's bits."""
    from lamina.optimizers import kernels

    rng = np.random.default_rng(4)
    g = rng.standard_normal(100).astype(np.float32)
    g.flags.writeable = False
    w = rng.standard_normal(100).astype(np.float32)
    m, v = np.zeros_like(w), np.zeros_like(w)
    entry = aot.entry(ADAM)
    bound = entry.with_fallback(kernels._adam.jit)
    reference = [w.copy(), m.copy(), v.copy()]
    constants = (np.float32(0.1), np.float32(0.001), np.float32(0.001), np.float32(1e-7))
    bound(g, w, m, v, *constants)
    kernels._adam.jit(g, *reference, *constants)
    assert bound.misses == 1 and bound.calls == 0
    assert w.tobytes() == reference[0].tobytes()
    with pytest.raises(TypeError, match="no compiled overload"):
        entry(g.astype(np.float64), w, m, v, *constants)  # no fallback given


def test_a_library_for_other_sources_or_another_cpu_is_not_used(library, tmp_path,
                                                                 monkeypatch):
    folder, manifest = _manifest(library)
    for change in ("sources", "cpu", "format"):
        where = tmp_path / change
        shutil.copytree(folder, where / folder.name)
        edited = dict(manifest)
        if change == "sources":
            edited["sources"] = {name: "0" * 64 for name in manifest["sources"]}
        elif change == "cpu":
            edited["cpu"] = "another CPU"
        else:
            edited["format"] = aot.FORMAT + 1
        (where / folder.name / aot.MANIFEST).write_text(json.dumps(edited))
        assert aot._current(where) is None, change
        monkeypatch.setenv("LAMINA_AOT_DIR", str(where))
        aot.reset()
        assert aot.library() is None and aot.entry(ADAM) is None
    monkeypatch.setenv("LAMINA_AOT_DIR", str(library))
    monkeypatch.setenv("LAMINA_AOT", "0")  # the switch turns a good library off
    aot.reset()
    assert aot.library() is None
    aot.reset()


def test_an_up_to_date_library_is_not_built_again(library):
    """Same overloads (other tests may have compiled new ones: built for them once),
    same sources, same CPU: the library there is kept."""
    with aot.disabled():
        first = warm.build_library(library)
        again = warm.build_library(library)
    assert again["built"] is False and again["path"] == first["path"]
    assert again["entries"] == first["entries"]
    assert again["path"] == str(_manifest(library)[0])


def test_building_without_a_compiler_says_so(tmp_path):
    with pytest.raises(RuntimeError, match="C compiler"):
        aot.build({}, {}, where=tmp_path, compiler=str(tmp_path / "no-such-cc"))
    assert list(tmp_path.iterdir()) == []  # nothing half-built left behind


FIT = r"""
import hashlib, json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import lamina as keras, lamina_models
from lamina.backend import aot
rng = np.random.default_rng(0)
x = rng.random((512, 28, 28, 1), np.float32)
y = rng.integers(0, 10, 512)
keras.utils.set_random_seed(0)
model = lamina_models.build("mlp", keras)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
model.fit(x, y, batch_size=128, epochs=2, verbose=0)
digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
entries = (aot.library() or {}).get("entries", {})
print(json.dumps({"weights": digest, "numba": "numba" in sys.modules,
                  "llvmlite": "llvmlite" in sys.modules,
                  "calls": sum(e.calls for e in entries.values()),
                  "misses": sum(e.misses for e in entries.values())}))
"""


def test_a_process_with_the_library_trains_the_mlp_without_numba_to_the_jits_weights(
        library):
    """The benchmark MLP (512-wide layers: every kernel pays, the products take Lamina's
    GEMM where the CPU has AVX-512) trains through the library without importing numba
    or llvmlite, to the bits numba's JIT gives."""
    runs = {}
    for name, extra in (("library", {}), ("jit", {"LAMINA_AOT": "0"})):
        env = {**os.environ, "LAMINA_AOT_DIR": str(library), "LAMINA_KERNELS": "auto",
               **extra}
        env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "sdk"),
                                             env.get("PYTHONPATH", "")])
        done = subprocess.run([sys.executable, "-c", FIT, os.path.join(ROOT, "bench")],
                              capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        runs[name] = json.loads(done.stdout.strip().splitlines()[-1])
    assert runs["library"]["weights"] == runs["jit"]["weights"]
    assert runs["library"]["numba"] is False and runs["library"]["llvmlite"] is False
    assert runs["library"]["calls"] > 0 and runs["library"]["misses"] == 0
    assert runs["jit"]["numba"] is True and runs["jit"]["calls"] == 0
    assert compiled.choice() == "auto"


@pytest.mark.slow
def test_ctrl_c_during_fit_on_the_library_stops_cleanly(library, monkeypatch):
    """The pool's waits and the products run from the library (no GIL held in them):
    SIGINT still stops ``fit`` with KeyboardInterrupt, as on numba's JIT."""
    from tests.sdk.backend.interrupt import interrupt_fit

    monkeypatch.setenv("LAMINA_AOT_DIR", str(library))
    code, out = interrupt_fit(
        (256,), 'lamina.layers.Dense(1024, "relu"), lamina.layers.Dense(10)', 4096)
    assert code == 3 and "interrupted" in out


def _adam_in_child(conn):
    w = np.ones(1000, np.float32)
    aot.entry(ADAM)(np.ones(1000, np.float32), w, np.zeros_like(w), np.zeros_like(w),
                    np.float32(0.1), np.float32(0.001), np.float32(0.5), np.float32(1e-7))
    conn.send(w.tobytes())
    conn.close()


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_runs_the_loaded_library(loaded):
    import multiprocessing

    w = np.ones(1000, np.float32)
    aot.entry(ADAM)(np.ones(1000, np.float32), w, np.zeros_like(w), np.zeros_like(w),
                    np.float32(0.1), np.float32(0.001), np.float32(0.5), np.float32(1e-7))
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_adam_in_child, args=(child,))
    proc.start()
    assert parent.poll(30), "the forked child hung"
    assert parent.recv() == w.tobytes()
    proc.join(10)
    assert proc.exitcode == 0
