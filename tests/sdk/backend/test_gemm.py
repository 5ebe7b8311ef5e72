"""Lamina's float32 GEMM (backend.gemm, backend.gemm_kernels) against float64 products."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from lamina.backend import gemm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


@pytest.fixture
def kernel():
    found = gemm.kernel()
    if found is None:
        pytest.skip(f"Lamina's GEMM kernel cannot run here: {gemm._why_not()}")
    from lamina.backend import gemm_kernels

    return lambda a, b, out, accumulate=False: gemm_kernels.gemm_driver(
        found, a, b, out, accumulate)


def _operand(rng, shape, layout):
    """A float32 array of ``shape``: C order, a transposed view (F order), or a view
    with neither axis contiguous (every other row and column of a bigger array)."""
    if layout == "c":
        return rng.standard_normal(shape).astype(np.float32)
    if layout == "t":
        return rng.standard_normal(shape[::-1]).astype(np.float32).T
    return rng.standard_normal((2 * shape[0], 2 * shape[1])).astype(np.float32)[::2, ::2]


def _check(product, a, b, accumulate=False, start=None):
    ref = a.astype(np.float64) @ b.astype(np.float64)
    if accumulate:
        ref += start
    # float32 summation of k terms: error bound ~ k * eps * sum |a_i b_i|
    bound = 4 * max(a.shape[1], 1) * np.finfo(np.float32).eps * (
        np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64) + (
            np.abs(start) if accumulate else 0))
    err = np.abs(product.astype(np.float64) - ref)
    assert np.all(err <= bound + 1e-30), float((err - bound).max())


@pytest.mark.parametrize("m", [1, 5, 12, 13, 130, 401])
@pytest.mark.parametrize("k", [1, 7, 256, 300, 600])
@pytest.mark.parametrize("n", [1, 10, 16, 17, 33, 100])
def test_products_of_every_edge_match_float64(kernel, m, k, n):
    """Rows not a multiple of the tile's 12, columns not a multiple of its 32 or 16 (the
    masks), ``k`` over one and several blocks."""
    rng = np.random.default_rng(m * 10007 + k * 101 + n)
    a, b = _operand(rng, (m, k), "c"), _operand(rng, (k, n), "c")
    out = np.full((m, n), np.nan, np.float32)
    kernel(a, b, out)
    _check(out, a, b)


@pytest.mark.parametrize("a_layout", ["c", "t", "strided"])
@pytest.mark.parametrize("b_layout", ["c", "t", "strided"])
def test_every_operand_layout_matches_float64(kernel, a_layout, b_layout):
    """Read in place (rows or columns contiguous) or packed (neither): the same values,
    and the same bits, since the order of the sums is the same."""
    rng = np.random.default_rng(7)
    a, b = _operand(rng, (77, 530), a_layout), _operand(rng, (530, 45), b_layout)
    out = np.empty((77, 45), np.float32)
    kernel(a, b, out)
    _check(out, a, b)
    plain = np.empty_like(out)
    kernel(np.ascontiguousarray(a), np.ascontiguousarray(b), plain)
    assert out.tobytes() == plain.tobytes()


def test_out_may_be_a_slice_and_nothing_outside_it_is_written(kernel):
    rng = np.random.default_rng(1)
    a, b = _operand(rng, (29, 64), "c"), _operand(rng, (64, 21), "c")
    big = np.full((40, 50), 7.0, np.float32)
    kernel(a, b, big[3:32, 5:26])
    _check(big[3:32, 5:26], a, b)
    outside = np.ones(big.shape, bool)
    outside[3:32, 5:26] = False
    assert np.all(big[outside] == 7.0)


def test_accumulate_adds_to_out(kernel):
    rng = np.random.default_rng(2)
    a, b = _operand(rng, (50, 700), "c"), _operand(rng, (700, 40), "t")
    start = rng.standard_normal((50, 40)).astype(np.float32)
    out = start.copy()
    kernel(a, b, out, True)
    _check(out, a, b, accumulate=True, start=start)


def test_empty_products(kernel):
    out = np.full((4, 3), 5.0, np.float32)
    kernel(np.empty((4, 0), np.float32), np.empty((0, 3), np.float32), out)
    assert np.all(out == 0.0)
    out[:] = 5.0
    kernel(np.empty((4, 0), np.float32), np.empty((0, 3), np.float32), out, True)
    assert np.all(out == 5.0)
    kernel(np.empty((0, 5), np.float32), np.ones((5, 3), np.float32),
           np.empty((0, 3), np.float32))


@pytest.mark.parametrize("m, k, n", [(128, 784, 512), (128, 512, 784), (37, 1000, 99)])
def test_any_row_or_column_cut_gives_the_bits_of_the_whole(kernel, m, k, n):
    """Cuts anywhere, not only at the tile's multiples (the pool's parts, ranges of a
    layer's rows): every element is summed in the same order wherever it sits."""
    rng = np.random.default_rng(m + k + n)
    a, b = _operand(rng, (m, k), "c"), _operand(rng, (k, n), "t")
    whole = np.empty((m, n), np.float32)
    kernel(a, b, whole)
    for cut in (1, 5, 12, 13, m // 2, m - 1):
        out = np.empty_like(whole)
        kernel(a[:cut], b, out[:cut])
        kernel(a[cut:], b, out[cut:])
        assert out.tobytes() == whole.tobytes(), f"rows cut at {cut}"
    for cut in (1, 15, 16, 17, 32, 33, n // 2, n - 1):
        out = np.empty_like(whole)
        kernel(a, b[:, :cut], out[:, :cut])
        kernel(a, b[:, cut:], out[:, cut:])
        assert out.tobytes() == whole.tobytes(), f"columns cut at {cut}"


@pytest.mark.parametrize("m, k, n", [(64, 512, 512), (1, 7, 33), (13, 300, 100),
                                     (30, 600, 45), (128, 512, 784)])
def test_a_product_with_a_transposed_weight_runs_flipped_with_the_same_bits(kernel, m, k,
                                                                             n):
    """``g @ W.T`` with few rows is computed as ``(W @ g.T).T`` (packing ``g.T`` instead
    of ``W.T``): the bits of the direct product, and nothing written outside ``out``."""
    rng = np.random.default_rng(m * k + n)
    a, b = _operand(rng, (m, k), "c"), _operand(rng, (k, n), "t")
    assert gemm.transposes(a, b)
    direct = np.empty((m, n), np.float32)
    kernel(a, b, direct)
    big = np.full((m + 2, n + 3), 7.0, np.float32)
    with gemm.use_gemm("lamina"):
        gemm.matmul_into(a, b, big[1:-1, 2:-1])
    assert big[1:-1, 2:-1].tobytes() == direct.tobytes()
    outside = np.ones(big.shape, bool)
    outside[1:-1, 2:-1] = False
    assert np.all(big[outside] == 7.0)
    _check(direct, a, b)


def test_only_a_packed_right_operand_that_costs_more_is_flipped():
    rng = np.random.default_rng(3)
    w_t = _operand(rng, (512, 512), "t")  # columns contiguous: packed when not flipped
    assert gemm.transposes(_operand(rng, (64, 512), "c"), w_t)
    assert not gemm.transposes(_operand(rng, (512, 512), "c"), w_t)  # as many rows
    assert not gemm.transposes(_operand(rng, (64, 512), "c"),
                               _operand(rng, (512, 512), "c"))  # read in place already
    assert not gemm.transposes(_operand(rng, (64, 512), "strided"), w_t)
    assert not gemm.transposes(_operand(rng, (64, 512), "c"),
                               _operand(rng, (512, 512), "strided"))


def test_the_choice_decides_which_kernel_runs(kernel):
    rng = np.random.default_rng(3)
    a, b = _operand(rng, (128, 300), "c"), _operand(rng, (300, 64), "c")
    ours = np.empty((128, 64), np.float32)
    kernel(a, b, ours)
    with gemm.use_gemm("lamina"):
        assert gemm.uses_kernel(a, b)
        assert gemm.matmul(a, b).tobytes() == ours.tobytes()
        small = a[:2, :3], b[:3, :4]  # every size under "lamina"
        assert gemm.uses_kernel(*small)
        assert not gemm.uses_kernel(a.astype(np.float64), b)  # float32 only
    with gemm.use_gemm("auto"):
        assert 2 * 128 * 300 * 64 >= gemm.MIN_FLOPS
        assert gemm.matmul(a, b).tobytes() == ours.tobytes()
        assert not gemm.uses_kernel(*small)  # under MIN_FLOPS: numpy's BLAS
    with gemm.use_gemm("blas"):
        assert not gemm.uses_kernel(a, b)
        assert gemm.matmul(a, b).tobytes() == np.matmul(a, b).tobytes()


def test_blas_threads_policy_off_keeps_blas_under_auto(kernel, auto_policy):
    """``LAMINA_THREADS=off`` gives the threading to BLAS: the kernel (on the pool's
    threads only) then stays out under ``auto``; ``lamina`` still runs it."""
    from lamina.backend import blas_threads

    rng = np.random.default_rng(5)
    a, b = _operand(rng, (128, 300), "c"), _operand(rng, (300, 64), "c")
    blas_threads.set_thread_policy("off")
    with gemm.use_gemm("auto"):
        assert not gemm.uses_kernel(a, b)
    with gemm.use_gemm("lamina"):
        assert gemm.uses_kernel(a, b)


def test_read_only_operands_and_strided_outputs_take_blas(kernel):
    rng = np.random.default_rng(4)
    a, b = _operand(rng, (64, 300), "c"), _operand(rng, (300, 96), "c")
    with gemm.use_gemm("lamina"):
        frozen = a.copy()
        frozen.flags.writeable = False
        out = gemm.matmul_into(frozen, b, np.empty((64, 96), np.float32))
        assert out.tobytes() == np.matmul(a, b).tobytes()
        strided = np.empty((96, 64), np.float32).T  # rows not contiguous
        gemm.matmul_into(a, b, strided)
        blas = np.matmul(a, b, out=np.empty((96, 64), np.float32).T)
        assert strided.tobytes() == blas.tobytes()


def test_set_gemm_names_the_bad_value():
    with pytest.raises(ValueError, match=r"`value` must be one of auto, lamina, blas\. "
                                         r"Received: value='mkl'"):
        gemm.set_gemm("mkl")


def _fresh(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "sdk"), **env),
                          timeout=120)


def test_the_switch_comes_from_the_environment_through_the_parser():
    done = _fresh("from lamina.backend import gemm; print(gemm.choice())",
                  LAMINA_GEMM="BLAS")
    assert done.returncode == 0 and done.stdout.strip() == "blas", done.stderr
    done = _fresh("from lamina.backend import gemm; gemm.choice()", LAMINA_GEMM="fast")
    assert done.returncode != 0 and "LAMINA_GEMM" in done.stderr and "'fast'" in done.stderr


def test_asking_for_the_kernel_where_it_cannot_run_is_an_error():
    """``LAMINA_GEMM=lamina`` with compiled kernels off: a RuntimeError that says why."""
    done = _fresh("import numpy as np; from lamina.backend import gemm; "
                  "gemm.matmul(np.ones((4, 4), np.float32), np.ones((4, 4), np.float32))",
                  LAMINA_GEMM="lamina", LAMINA_KERNELS="numpy")
    assert done.returncode != 0
    assert "LAMINA_GEMM=lamina, but Lamina's GEMM kernel cannot run here" in done.stderr
    assert "LAMINA_KERNELS" in done.stderr or "no AVX-512" in done.stderr


def test_describe_says_which_gemm_runs():
    with gemm.use_gemm("blas"):
        assert gemm.describe() == "numpy's BLAS (LAMINA_GEMM=blas)"
    with gemm.use_gemm("auto"):
        why = gemm._why_not()
        if why is None:
            assert gemm.describe().startswith("Lamina's AVX-512 kernel for float32 products")
        else:
            assert gemm.describe() == f"numpy's BLAS ({why})"


def test_negative_strides_read_and_write_the_right_elements(kernel):
    """Reversed views (``x[::-1]``, ``w[:, ::-1]``, a reversed ``out``): the offsets the
    driver passes wrap in unsigned arithmetic, the kernel's strides are negative."""
    rng = np.random.default_rng(6)
    a, b = _operand(rng, (50, 300), "c"), _operand(rng, (300, 70), "c")
    for left, right in ((a[::-1], b), (a, b[::-1]), (a[:, ::-1], b[::-1]), (a, b[:, ::-1])):
        out = np.empty((left.shape[0], right.shape[1]), np.float32)
        kernel(left, right, out)
        _check(out, left, right)
    flipped = np.empty((50, 70), np.float32)[::-1]
    kernel(a, b, flipped)
    _check(flipped, a, b)
