"""Lamina's BLAS threads: one-thread BLAS under the policy, the user's limit, and
one_blas_thread over the other BLAS libraries (scipy's OpenBLAS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import types

import pytest

from lamina.backend import blas_threads, threads
from tests.sdk.backend.blas_counts import environ_with_coretype, numpys_wheel_openblas_or_skip

threadpoolctl = pytest.importorskip("threadpoolctl")


pytestmark = pytest.mark.usefixtures("auto_policy")


def test_policy_is_validated():
    with pytest.raises(ValueError, match=r"Received: policy='fast'"):
        blas_threads.set_thread_policy("fast")
    with pytest.raises(ValueError, match=r"Received: policy=0"):
        blas_threads.set_thread_policy(0)


def test_blas_runs_one_thread_and_off_gives_it_back():
    ctl = blas_threads._controller()
    if not ctl:
        pytest.skip("no OpenBLAS found by threadpoolctl")
    before = blas_threads._state["ceiling"] or ctl.get_num_threads()
    blas_threads.tick(now=float("inf"))
    assert ctl.get_num_threads() == 1
    blas_threads.set_thread_policy("off")
    assert ctl.get_num_threads() == before
    assert threads.worker_count() == 0


def test_user_limit_caps_the_pool():
    if not blas_threads._controller():
        pytest.skip("no OpenBLAS found by threadpoolctl")
    # BLAS back at its own count first: while Lamina holds it at one thread, a user limit
    # of one looks like Lamina's own setting.
    blas_threads.set_thread_policy("off")
    blas_threads.set_thread_policy("auto")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        blas_threads.tick(now=float("inf"))
        assert threads.worker_count() == 0
    blas_threads.set_thread_policy("auto")
    blas_threads.tick(now=float("inf"))
    cores = len(os.sched_getaffinity(0))
    assert threads.worker_count() == min(cores, blas_threads._state["ceiling"]) - 1


@pytest.mark.parametrize("variables, expected", [
    ({}, None),
    ({"OMP_NUM_THREADS": "3"}, 3),
    ({"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "1"}, 2),  # OpenBLAS's precedence
    ({"GOTO_NUM_THREADS": "4", "OMP_NUM_THREADS": "1"}, 4),
    ({"OPENBLAS_NUM_THREADS": "0", "OMP_NUM_THREADS": "2"}, 2),  # 0 or junk: the next
    ({"OPENBLAS_NUM_THREADS": "many", "OMP_NUM_THREADS": " 1 "}, 1),
])
def test_environment_threads_follows_openblas_precedence(monkeypatch, variables, expected):
    for name in blas_threads.BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert blas_threads.environment_threads() == expected


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
@pytest.mark.parametrize("later, workers", [(None, 1), ("1", 0)])
def test_a_count_the_environment_set_after_numpy_loaded_caps_the_pool(later, workers):
    """As in a Ray actor whose worker process imported numpy before Ray set
    ``OMP_NUM_THREADS`` to the actor's CPUs: OpenBLAS took two threads at load, then the
    variable says one. Lamina's first use takes the lower count."""
    numpys_wheel_openblas_or_skip()
    code = ("import os, numpy; "
            f"later = {later!r}; "
            "os.environ.update({} if later is None else {'OMP_NUM_THREADS': later}); "
            "from lamina.backend import threads; print(threads.worker_count())")
    env = {name: value for name, value in os.environ.items()
           if name not in blas_threads.BLAS_THREAD_VARIABLES and name != "LAMINA_THREADS"}
    env["OMP_NUM_THREADS"] = "2"  # OpenBLAS loads with two threads
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(workers)], done.stdout


def _other_blas():
    """scipy's OpenBLAS (the library numba's np.dot calls), as one_blas_thread sees it."""
    pytest.importorskip("scipy")
    import scipy.linalg.cython_blas  # noqa: F401  (loads the library)

    if not blas_threads._controller():
        pytest.skip("no OpenBLAS found by threadpoolctl")
    others = blas_threads._other_blas()
    if not others:
        pytest.skip("scipy's BLAS is numpy's here")
    return others


def _counts(controllers):
    return [ctl.get_num_threads() for ctl in controllers]


def test_one_blas_thread_covers_every_blas_nests_and_respects_the_users_limit():
    others = _other_blas()
    ours = blas_threads._controller()
    before = _counts(others)
    with threadpoolctl.threadpool_limits(3, user_api="blas"):  # the user's, outside
        assert _counts(others) == [3] * len(others)
        with blas_threads.one_blas_thread():
            assert ours.get_num_threads() == 1  # (numpy's, held by the policy)
            assert _counts(others) == [1] * len(others)
            with blas_threads.one_blas_thread():
                pass
            assert _counts(others) == [1] * len(others)  # the inner exit gave nothing back
        assert _counts(others) == [3] * len(others)
        assert blas_threads._state["ceiling"] == 3  # numpy's count became the pool's cap
    assert _counts(others) == before


def _spy_on_set_threads(controllers, monkeypatch):
    """The thread counts Lamina sets on ``controllers``, as (index, count)."""
    calls, real = [], blas_threads._set_threads

    def spy(ctl, count):
        calls.extend((n, count) for n, c in enumerate(controllers) if c is ctl)
        real(ctl, count)

    monkeypatch.setattr(blas_threads, "_set_threads", spy)
    return calls


@pytest.mark.parametrize("first", ["main", "other"])
def test_overlapping_blocks_of_two_threads_give_blas_back_exactly_once(first, monkeypatch):
    """A enters, B enters, A leaves, B leaves; A is the main thread or another one (a
    pool worker: the counts are then set and given back from threads that never set
    them before)."""
    others = _other_blas()
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        calls = _spy_on_set_threads(others, monkeypatch)
        a_in, b_in, a_out, seen = (threading.Event(), threading.Event(), threading.Event(),
                                   [])

        def a():
            with blas_threads.one_blas_thread():
                a_in.set()
                assert b_in.wait(10)
            a_out.set()

        def b():
            assert a_in.wait(10)
            with blas_threads.one_blas_thread():
                b_in.set()
                assert a_out.wait(10)
                seen.append(_counts(others))

        runs = [threading.Thread(target=b if first == "main" else a)]
        runs[0].start()
        (a if first == "main" else b)()
        runs[0].join(10)
        assert seen == [[1] * len(others)]  # not given back while B's block was open
        assert _counts(others) == [2] * len(others)
        every = range(len(others))
        assert calls == [(n, 1) for n in every] + [(n, 2) for n in every]


def test_policy_off_leaves_every_blas_alone(monkeypatch):
    others = _other_blas()
    blas_threads.set_thread_policy("off")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        calls = _spy_on_set_threads(others, monkeypatch)
        with blas_threads.one_blas_thread():
            assert blas_threads._controller().get_num_threads() == 2
            assert _counts(others) == [2] * len(others)
        assert calls == []
        assert blas_threads._blas["depth"] == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_child_forked_inside_a_block_gets_blas_back():
    others = _other_blas()
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        with blas_threads.one_blas_thread():
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child reports through its exit code
                ok = False
                try:
                    # The parent's block never closes here: the child got its count back.
                    ok = _counts(others) == [2] * len(others)
                    with blas_threads.one_blas_thread():
                        ok = ok and _counts(others) == [1] * len(others)
                    ok = ok and _counts(others) == [2] * len(others)
                finally:
                    os._exit(0 if ok else 1)
            assert _counts(others) == [1] * len(others)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert _counts(others) == [2] * len(others)


@pytest.mark.parametrize("paths, numpys", [
    (["/sp/scipy.libs/libscipy_openblas-6c.so", "/sp/numpy.libs/libscipy_openblas64_-32.so"],
     1),
    (["/sp/numpy.libs/libscipy_openblas64_-32.so", "/sp/scipy.libs/libscipy_openblas-6c.so"],
     0),
    (["/sp/scipy/.dylibs/libscipy_openblas.dylib", "/sp/numpy/.dylibs/libscipy_openblas64_.dylib"],
     1),
    (["/sp/scipy.libs/libscipy_openblas-6c.so", "/usr/lib/libopenblas.so.0"], 1),
    (["/opt/conda/lib/libopenblas.so"], 0),
    (["libopenblas.so"], 0),
])
def test_numpys_openblas_is_told_apart_from_scipys(paths, numpys):
    """threadpoolctl lists the libraries in an order that varies with the process's hash
    seed: the policy must hold numpy's, and one_blas_thread cover the others."""
    controllers = [types.SimpleNamespace(filepath=path) for path in paths]
    assert blas_threads._numpys(controllers) is controllers[numpys]


@pytest.mark.parametrize("hash_seed", ["0", "3"])  # (either order, on this machine)
def test_the_policy_holds_numpys_openblas_when_scipy_loaded_first(hash_seed):
    _other_blas()
    code = ("import scipy.linalg.cython_blas, numpy; from lamina.backend import blas_threads; "
            "print(blas_threads._controller().filepath, numpy.__file__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
    held, numpy_file = out.stdout.split()
    if "numpy.libs" not in held and "scipy.libs" not in held:
        pytest.skip("OpenBLAS does not come from numpy's and scipy's wheels here")
    assert os.path.dirname(held) == os.path.dirname(numpy_file) + ".libs"


@pytest.mark.parametrize("core, coretype_env, cpu_avx512, noted", [
    ("Haswell", "Haswell", True, True),
    ("Haswell", "Zen", True, True),  # (OpenBLAS runs Zen on Haswell's kernels)
    ("SkylakeX", "SkylakeX", True, False),
    ("Cooperlake", "Cooperlake", True, False),
    ("Haswell", None, True, False),  # OpenBLAS's own choice
    ("Haswell", "Haswell", False, False),  # no AVX-512 to lose
    ("Haswell", "Haswell", None, False),  # CPU unknown: nothing to claim
    (None, "Haswell", True, False),  # not an OpenBLAS threadpoolctl sees
])
def test_coretype_note_only_when_the_variable_holds_openblas_below_the_cpu(
        core, coretype_env, cpu_avx512, noted):
    note = blas_threads.coretype_note(core, coretype_env, cpu_avx512)
    assert (note is not None) == noted
    if noted:
        assert f"OPENBLAS_CORETYPE={coretype_env} " in note
        assert f"its {core} kernels" in note and "unset OPENBLAS_CORETYPE" in note


def test_cpu_flags_are_whole_words_of_the_first_flags_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw\n\n"
                       "processor\t: 1\nflags\t\t: fpu sse\n")
    assert blas_threads._cpu_has("avx512f", str(cpuinfo)) is True
    assert blas_threads._cpu_has("avx512", str(cpuinfo)) is False
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: Other\n")
    assert blas_threads._cpu_has("avx2", str(cpuinfo)) is None
    assert blas_threads._cpu_has("avx2", str(tmp_path / "missing")) is None


@pytest.mark.parametrize("coretype", ["Haswell", "SkylakeX", None])
def test_describe_blas_reports_the_kernels_numpys_openblas_loaded(coretype):
    """OpenBLAS reads OPENBLAS_CORETYPE once, when numpy loads it: a fresh process each."""
    ctl = numpys_wheel_openblas_or_skip()
    code = ("import json; from lamina.backend import blas_threads; "
            "print(json.dumps(blas_threads.describe_blas()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=environ_with_coretype(coretype))
    report = json.loads(out.stdout)
    avx512 = blas_threads._cpu_has("avx512f")
    assert report["library"] == "openblas" and report["version"] == ctl.version
    assert report["coretype_env"] == coretype and report["cpu_avx512"] == avx512
    if coretype == "Haswell":
        assert report["core"] == "Haswell"
        assert (report["note"] is not None) == bool(avx512)
    elif coretype == "SkylakeX" and avx512:
        assert report["core"] == "SkylakeX" and report["note"] is None
    else:
        assert report["note"] is None
