"""The fused LSTM's compiled kernels (rnn_lstm_kernels) against its numpy path: values,
states and every gradient over odd shapes and options, float64 central differences,
bit-identical seeded training, and the switch back to numpy."""

import os
import subprocess
import sys

import numpy as np
import pytest

from lamina.backend import compiled, rnn_lanes, rnn_lstm_kernels
from lamina.backend.rnn_lstm import LSTMSequence
from lamina.backend.tensor import Tensor
from lamina.testing import check_gradients
from tests.sdk.backend.blas_counts import count_inside, other_blas_or_skip
from tests.sdk.backend.lstm_reference import reference as _reference

pytest.importorskip("numba")

TWO_LANES = 2 * rnn_lanes.MIN_LANE_BATCH + 1  # an odd batch cut into two lanes


def _case(rng, batch, steps, features=3, units=4, dtype=np.float64):
    arrays = [rng.standard_normal((batch, steps, features)),
              rng.standard_normal((features, 4 * units)) * 0.5,
              rng.standard_normal((units, 4 * units)) * 0.5,
              rng.standard_normal(4 * units) * 0.3,
              rng.standard_normal((batch, units)), rng.standard_normal((batch, units))]
    return [a.astype(dtype) for a in arrays]


def _step(choice, args, g, **kw):
    """Forward and backward on path ``choice``: packed outputs, then every gradient."""
    with compiled.use_kernels(choice):
        tensors = [a if a is None else Tensor(a, requires_grad=True) for a in args]
        out = LSTMSequence.apply(*tensors, **kw)
        assert (out._ctx.kernel_state is not None) == (choice == "numba")
        return [out.data, *out._ctx.backward(g)]


OPTIONS = [dict(),
           dict(return_sequences=True),
           dict(go_backwards=True),
           dict(masked=True, return_sequences=True),
           dict(masked=True, dropout=True, go_backwards=True, return_sequences=True),
           dict(dropout=True),
           dict(zero_state=True),
           dict(no_state=True, no_bias=True, return_sequences=True)]


def _options(rng, args, masked=False, dropout=False, zero_state=False, no_state=False,
             no_bias=False, **kw):
    x, h0 = args[0], args[4]
    if masked:
        mask = rng.random(x.shape[:2]) > 0.3
        mask[0] = False  # a sample masked at every step
        kw["mask"] = mask
    if dropout:
        kw["recurrent_mask"] = ((rng.random(h0.shape) > 0.4) / 0.6).astype(x.dtype)
    if zero_state:
        args[4], args[5] = np.zeros_like(h0), np.zeros_like(h0)
    if no_state:
        args[4] = args[5] = None
    if no_bias:
        args[3] = None
    return args, kw


@pytest.mark.parametrize("dtype, tol", [(np.float32, dict(rtol=2e-4, atol=2e-5)),
                                        (np.float64, dict(rtol=1e-9, atol=1e-11))])
@pytest.mark.parametrize("batch, steps", [(1, 1), (5, 1), (TWO_LANES, 1), (7, 6),
                                          (TWO_LANES, 9), (40, 13)])
@pytest.mark.parametrize("option", range(len(OPTIONS)))
def test_kernels_match_the_numpy_path(dtype, tol, batch, steps, option):
    rng = np.random.default_rng(batch * 100 + steps * 10 + option)
    args, kw = _options(rng, _case(rng, batch, steps, dtype=dtype), **OPTIONS[option])
    k = steps if kw.get("return_sequences") else 1
    g = rng.standard_normal((batch, k + 1, 4)).astype(dtype)
    kernels, numpy_path = _step("numba", args, g, **kw), _step("numpy", args, g, **kw)
    assert kernels[0].dtype == dtype
    for got, want in zip(kernels, numpy_path):
        assert (got is None) == (want is None)
        if want is not None:
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_allclose(got, want, **tol)


def test_float32_tanh_is_within_a_few_ulp():
    # One step of one unit whose carry is g = tanh(x): i = 1 and f = 0 exactly in float32.
    x = np.linspace(-12, 12, 20001).astype(np.float32)
    kernel = np.array([[0, 0, 1, 0]], np.float32)
    bias = np.array([20, -20, 0, 20], np.float32)
    with compiled.use_kernels("numba"):
        packed = LSTMSequence.apply(x[:, None, None], kernel, np.zeros((1, 4), np.float32),
                                    bias, None, None).data
    carry = packed[:, -1, 0]
    np.testing.assert_array_equal(np.abs(carry) <= 1, True)
    np.testing.assert_allclose(carry, np.tanh(x.astype(np.float64)), rtol=3e-7, atol=1e-7)


@pytest.mark.parametrize("batch", [3, TWO_LANES])
@pytest.mark.parametrize("option", [0, 3, 4, 7])
def test_kernel_path_float64_gradients(batch, option):
    rng = np.random.default_rng(option)
    args, kw = _options(rng, _case(rng, batch, 5), **OPTIONS[option])
    present = [a for a in args if a is not None]
    slots = [i for i, a in enumerate(args) if a is not None]

    def fn(*tensors):
        full = list(args)
        for i, t in zip(slots, tensors):
            full[i] = t
        out = LSTMSequence.apply(*full, **kw)
        assert out._ctx.kernel_state is not None
        return out

    with compiled.use_kernels("numba"):
        check_gradients(fn, present)


def test_kernel_path_matches_the_step_equations():
    rng = np.random.default_rng(9)
    x, kernel, rec, bias, h0, c0 = _case(rng, TWO_LANES, 6)
    mask = rng.random(x.shape[:2]) > 0.3
    rmask = (rng.random(h0.shape) > 0.5) * 2.0
    with compiled.use_kernels("numba"):
        packed = LSTMSequence.apply(x, kernel, rec, bias, h0, c0, mask=mask,
                                    recurrent_mask=rmask, go_backwards=True,
                                    return_sequences=True).data
    seq, _, c = _reference(x, kernel, rec, bias, h0, c0, mask, rmask, True)
    np.testing.assert_allclose(packed[:, :-1], seq, atol=1e-12)
    np.testing.assert_allclose(packed[:, -1], c, atol=1e-12)


def test_default_activations_take_the_kernels_unless_numpy_is_chosen():
    for choice in ("numba", "auto"):
        with compiled.use_kernels(choice):
            assert rnn_lstm_kernels.applies("tanh", "sigmoid", np.float32)
            assert rnn_lstm_kernels.applies("tanh", "sigmoid", np.float64)
            assert not rnn_lstm_kernels.applies("relu", "sigmoid", np.float32)
            assert not rnn_lstm_kernels.applies("tanh", "hard_sigmoid", np.float64)
            assert not rnn_lstm_kernels.applies("tanh", "sigmoid", np.float16)
    with compiled.use_kernels("numpy"):
        assert not rnn_lstm_kernels.applies("tanh", "sigmoid", np.float32)


def test_lamina_kernels_numpy_runs_the_numpy_path():
    code = ("import numpy as np\n"
            "from lamina.backend.rnn_lstm import LSTMSequence\n"
            "from lamina.backend.tensor import Tensor\n"
            "x = Tensor(np.ones((4, 3, 2), np.float32), requires_grad=True)\n"
            "k = np.ones((2, 8), np.float32); r = np.ones((2, 8), np.float32)\n"
            "out = LSTMSequence.apply(x, k, r, None, None, None)\n"
            "print(out._ctx.kernel_state is None, getattr(out._ctx, 'lanes', None) is not None)\n")
    for choice, expected in (("numpy", "True True"), ("auto", "False False"),
                             ("numba", "False False")):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True, env={**os.environ, "LAMINA_KERNELS": choice})
        assert result.stdout.strip() == expected, (choice, result.stdout)


_FIT = """
import numpy as np
import lamina
from lamina import layers
lamina.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.standard_normal((96, 7, 5)).astype(np.float32)
y = rng.integers(0, 3, 96)
model = lamina.Sequential([lamina.Input((7, 5)), layers.LSTM(12),
                           layers.Dense(3, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy")
model.fit(x, y, batch_size=32, epochs=2, verbose=0)
np.save(OUT, np.concatenate([w.ravel() for w in model.get_weights()]))
"""


@pytest.mark.parametrize("choice", ["numba", "numpy"])
def test_seeded_fit_twice_gives_bit_identical_weights(choice, tmp_path):
    runs = []
    for n in range(2):
        out = tmp_path / f"w{n}.npy"
        subprocess.run([sys.executable, "-c", f"OUT = {str(out)!r}\n" + _FIT], check=True,
                       env={**os.environ, "LAMINA_KERNELS": choice})
        runs.append(np.load(out))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert np.all(np.isfinite(runs[0]))


def test_numbas_blas_runs_on_one_thread_inside_the_kernels_only(monkeypatch):
    """numba's np.dot calls scipy's OpenBLAS: one thread in every kernel call (the lanes
    are the parallelism), its count given back after them."""
    others = other_blas_or_skip()
    import threadpoolctl

    inside = count_inside(monkeypatch, rnn_lstm_kernels, ("lstm_forward", "lstm_backward"),
                          others)
    rng = np.random.default_rng(5)
    args = _case(rng, TWO_LANES, 6, dtype=np.float32)
    g = rng.standard_normal((TWO_LANES, 2, 4)).astype(np.float32)
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        _step("numba", args, g)
        after = [ctl.get_num_threads() for ctl in others]
    assert len(inside) >= 4 and all(counts == [1] * len(others) for counts in inside)
    assert after == [2] * len(others)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_after_the_kernels_ran_gets_the_same_bits():
    rng = np.random.default_rng(6)
    args = _case(rng, TWO_LANES, 5, dtype=np.float32)
    g = rng.standard_normal((TWO_LANES, 2, 4)).astype(np.float32)
    parent = _step("numba", args, g)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        same = False
        try:
            child = _step("numba", args, g)
            same = all(np.array_equal(a, b) for a, b in zip(parent, child))
        finally:
            os._exit(0 if same else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strided_gemm_gives_the_bits_of_np_dot_on_a_copy(dtype):
    """The kernels' GEMM reads a strided slice in place (numba's BLAS entry with a leading
    dimension); numba's np.dot on a contiguous copy makes the same BLAS call."""
    import numba

    rnn_lstm_kernels._load_numbas_blas()
    gemm, n_ = rnn_lstm_kernels._xxgemm, rnn_lstm_kernels._N

    @numba.njit
    def strided(w, a, s, blas, ab, out):  # out = w @ a[:, s]
        m, k = w.shape
        width = a.shape[2]
        gemm(blas, n_, n_, width, m, k, ab.ctypes, a[0, s].ctypes,
             a.strides[0] // a.itemsize, w.ctypes, k, ab[1:].ctypes, out.ctypes, width)

    @numba.njit
    def copied(w, a, s, out):
        np.dot(w, np.ascontiguousarray(a[:, s]), out)

    rng = np.random.default_rng(7)
    w = rng.standard_normal((96, 45)).astype(dtype)
    a = rng.standard_normal((45, 5, 33)).astype(dtype)
    blas, ab = rnn_lstm_kernels.gemm_args(dtype)
    for s in (0, 3):
        got, want = np.full((96, 33), np.nan, dtype), np.empty((96, 33), dtype)
        strided(w, a, s, blas, ab, got)
        copied(w, a, s, want)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(got, w @ a[:, s], rtol=1e-4 if dtype == np.float32 else 1e-12)
