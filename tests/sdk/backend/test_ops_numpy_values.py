"""``keras.ops.numpy``: every call recorded from Keras 3.15.1 replayed on Lamina (dtypes,
shapes, values), the no-gradient ops, errors, and the new ops in a functional model.

The fixture and the script that made it are in tests/fixtures/ops_numpy/.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import lamina as keras
from lamina import ops
from lamina.backend import Tensor, Variable, gradients

FIXTURE = (pathlib.Path(__file__).parents[2] / "fixtures" / "ops_numpy" / "keras_numpy.json")
RECORD = json.loads(FIXTURE.read_text())


def _decode(a):
    if isinstance(a, dict) and "array" in a:
        return np.asarray(a["array"], dtype=a["dtype"])
    if isinstance(a, list) and a and isinstance(a[0], dict):
        return [_decode(v) for v in a]
    return a


def _check(got, want, label):
    if "sequence" in want:
        assert isinstance(got, (tuple, list)), label
        assert len(got) == len(want["sequence"]), label
        for g, w in zip(got, want["sequence"]):
            _check(g, w, label)
        return
    if "int" in want:
        assert isinstance(got, int) and got == want["int"], label
        return
    assert isinstance(got, Tensor), label
    assert got.dtype == want["dtype"], (label, got.dtype, want["dtype"])
    assert list(got.shape) == want["shape"], (label, got.shape, want["shape"])
    expected = np.asarray(want["array"], dtype=want["dtype"])
    if want["dtype"] in ("float32", "float64"):
        np.testing.assert_allclose(got.data, expected, rtol=2e-6, atol=1e-6, equal_nan=True,
                                   err_msg=label)
    else:
        np.testing.assert_array_equal(got.data, expected, err_msg=label)


@pytest.mark.parametrize("record", RECORD["calls"], ids=[c["id"] for c in RECORD["calls"]])
def test_matches_keras(record):
    fn = getattr(ops.numpy, record["name"])
    args = [_decode(a) for a in record["args"]]
    kwargs = {k: _decode(v) for k, v in record["kwargs"].items()}
    _check(fn(*args, **kwargs), record["keras"], record["id"])



# -- errors name the argument and echo the value, as Keras's ---------------------------
F32 = np.array([0.5, 1.5], dtype=np.float32)
I32 = np.array([1, 2], dtype=np.int32)


@pytest.mark.parametrize("call,error,match", [
    (lambda: ops.bitwise_and(F32, I32), TypeError, "x.dtype=float32"),
    (lambda: ops.left_shift(np.array([True]), np.array([True])), TypeError, "x.dtype=bool"),
    (lambda: ops.gcd(I32, F32), TypeError, "x2.dtype=float32"),
    (lambda: ops.ldexp(F32, F32), TypeError, "x2 dtype=float32"),
    (lambda: ops.quantile(F32, 1.5), ValueError, "q=1.5"),
    (lambda: ops.percentile(F32, -1), ValueError, "q=-1"),
    (lambda: ops.quantile(F32, 0.5, method="cubic"), ValueError, "method='cubic'"),
    (lambda: ops.pad(F32, 1, mode="reflect", constant_values=0), ValueError, "mode=reflect"),
    (lambda: ops.pad(F32, 1, mode="circular"), ValueError, "mode='circular'"),
    (lambda: ops.pad(F32, -1), ValueError, "pad_width=-1"),
    (lambda: ops.searchsorted(F32, F32, side="middle"), ValueError, "side='middle'"),
    (lambda: ops.hsplit(np.zeros((2, 3)), 2), ValueError, "indices_or_sections=2"),
    (lambda: ops.vsplit(F32, 2), ValueError, r"shape=\(2,\)"),
    (lambda: ops.bincount(np.array([1, -1])), ValueError, "min\\(x\\)=-1"),
    (lambda: ops.bincount(I32, sparse=True), ValueError, "sparse=True"),
    (lambda: ops.unravel_index(np.array([12]), (3, 4)), ValueError, r"indices=\[12\]"),
    (lambda: ops.cross(np.zeros(4), np.zeros(3)), ValueError, "x1 has 4"),
    (lambda: ops.correlate(F32, F32, mode="causal"), ValueError, "mode='causal'"),
    (lambda: ops.histogram(F32, bins=0), ValueError, "bins=0"),
    (lambda: ops.slogdet(np.zeros((2, 3))), ValueError, r"shape=\(2, 3\)"),
    (lambda: ops.rot90(np.zeros((2, 2)), axes=(1, 1)), ValueError, r"axes=\(1, 1\)"),
])
def test_errors_echo_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


# -- behaviours the tables do not reach -----------------------------------------------
def test_max_and_min_initial_cover_empty_reductions():
    empty = np.zeros((0, 3), dtype=np.float32)
    np.testing.assert_array_equal(ops.max(empty, axis=0, initial=-2.0).data, [-2.0] * 3)
    np.testing.assert_array_equal(ops.min(empty, initial=4.0).data, 4.0)


def test_integer_reductions_keep_keras_dtypes():
    ints = np.array([[1, 2], [3, 4]], dtype=np.int32)
    assert ops.sum(ints).dtype == "int32" and ops.sum(ints).item() == 10
    assert ops.sum(ints > 1).dtype == "int32"
    assert ops.prod(ints.astype(np.int8), axis=0).dtype == "int32"
    assert ops.cumsum(ints, axis=1).dtype == "int32"
    np.testing.assert_array_equal(ops.cumprod(ints).data, [1, 2, 6, 24])


def test_unique_values_carry_the_gradient_to_first_occurrences():
    x = Variable(np.array([2.0, 1.0, 2.0, 3.0], dtype=np.float32))
    values, counts = ops.unique(x, return_counts=True)
    (g,) = gradients(ops.sum(values * np.array([1.0, 10.0, 100.0], "f4")), [x])
    np.testing.assert_array_equal(counts.data, [1, 2, 1])
    np.testing.assert_array_equal(g, [10.0, 1.0, 0.0, 100.0])


def test_ops_record_nodes_in_a_functional_model():
    a = keras.Input(shape=(6,))
    b = keras.Input(shape=(6,))
    stats = ops.stack([ops.median(a, axis=-1), ops.nanmax(a, axis=-1), ops.ptp(b, axis=-1)],
                      axis=-1)
    mixed = ops.hypot(ops.arctan2(a, b), ops.cbrt(b))
    padded = ops.pad(a, [(0, 0), (2, 1)], mode="reflect")
    halves = ops.hsplit(a, 2)[1]
    ranks = ops.argmax(ops.diff(b), axis=-1, keepdims=True)
    assert ops.ndim(a) == 2 and ops.size(a) is None
    model = keras.Model([a, b], [stats, mixed, padded, halves, ranks])
    xa = RNG_MODEL.standard_normal((3, 6)).astype(np.float32)
    xb = RNG_MODEL.standard_normal((3, 6)).astype(np.float32)
    got = model.predict([xa, xb], verbose=0)
    np.testing.assert_allclose(
        got[0], np.stack([np.median(xa, -1), xa.max(-1), np.ptp(xb, -1)], -1), rtol=1e-6)
    np.testing.assert_allclose(got[1], np.hypot(np.arctan2(xa, xb), np.cbrt(xb)), rtol=1e-5)
    np.testing.assert_array_equal(got[2], np.pad(xa, [(0, 0), (2, 1)], mode="reflect"))
    np.testing.assert_array_equal(got[3], xa[:, 3:])
    np.testing.assert_array_equal(got[4], np.argmax(np.diff(xb), -1)[:, None])
    assert got[4].dtype == np.int32


def test_vectorize_records_a_node():
    a = keras.Input(shape=(3,))
    out = ops.vectorize(lambda v: ops.sum(v * v), signature="(n)->()")(a)
    model = keras.Model(a, out)
    x = RNG_MODEL.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), (x * x).sum(-1), rtol=1e-6)


RNG_MODEL = np.random.default_rng(5)


def test_where_with_the_condition_alone_gives_indices():
    cond = np.array([[True, False], [False, True]])
    rows, cols = ops.where(cond)
    np.testing.assert_array_equal(rows.data, [0, 1])
    np.testing.assert_array_equal(cols.data, [0, 1])
    with pytest.raises(ValueError, match="x2=None"):
        ops.where(cond, np.ones(2))
    assert ops.arange(1, 4, None).data.tolist() == [1, 2, 3]


def test_convert_to_tensor_takes_keras_sparse_and_ragged():
    assert ops.convert_to_tensor([1.0, 2.0], sparse=True).shape == (2,)
    with pytest.raises(ValueError, match="ragged=True"):
        ops.convert_to_tensor([[1.0], [2.0, 3.0]], ragged=True)


def test_fmod_is_exact_for_large_quotients_and_silent_on_edge_values():
    a = np.array([1e7 + 0.5, -5.3, 2.0, np.inf, 1.0], "float32")
    b = np.array([0.3, 1.1, 0.0, 1.0, np.inf], "float32")
    with np.errstate(invalid="ignore"):
        expected = np.fmod(a, b)
    np.testing.assert_array_equal(ops.fmod(a, b).data, expected)
