"""Keras's ``ops.linalg`` names: forward against float64 numpy, gradient against central
differences (``lamina.testing.check_gradients``)."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import ops
from lamina.backend import Tensor
from lamina.ops import linalg
from lamina.testing import check_gradients

RNG = np.random.default_rng(11)


def rn(*shape):
    return RNG.standard_normal(shape)


def well(*shape):
    """Well-conditioned square matrices: identity-dominated."""
    return rn(*shape) * 0.3 + np.eye(shape[-1]) * 2


def spd(a):
    return a @ np.swapaxes(a, -1, -2) + 3 * np.eye(a.shape[-1])


def case(name, fn, ref, *inputs, note=""):
    return pytest.param(fn, ref, inputs, id=f"{name}[{note}]" if note else name)


def _spd_ops(a):
    return ops.add(ops.matmul(a, ops.swapaxes(a, -1, -2)), 3 * np.eye(a.shape[-1], dtype=a.dtype))


CASES = [
    case("inv", linalg.inv, np.linalg.inv, well(2, 3, 3)),
    case("det", linalg.det, np.linalg.det, well(2, 3, 3)),
    case("solve", linalg.solve, np.linalg.solve, well(2, 3, 3), rn(2, 3, 2)),
    case("solve", linalg.solve, lambda a, b: np.linalg.solve(a, b[:, None])[:, 0],
         well(3, 3), rn(3), note="vector"),
    case("solve_triangular", lambda a, b: linalg.solve_triangular(a, b, lower=True),
         lambda a, b: np.linalg.solve(np.tril(a), b), well(3, 3), rn(3, 2), note="lower"),
    case("solve_triangular", linalg.solve_triangular,
         lambda a, b: np.linalg.solve(np.triu(a), b), well(2, 3, 3), rn(2, 3, 1), note="upper"),
    case("cholesky", lambda a: linalg.cholesky(_spd_ops(a)),
         lambda a: np.linalg.cholesky(spd(a)), rn(2, 3, 3)),
    case("cholesky", lambda a: linalg.cholesky(_spd_ops(a), upper=True),
         lambda a: np.swapaxes(np.linalg.cholesky(spd(a)), -1, -2), rn(3, 3), note="upper"),
    case("cholesky_inverse", linalg.cholesky_inverse,
         lambda lo: np.linalg.inv(np.tril(lo) @ np.tril(lo).T), np.tril(well(3, 3))),
]


@pytest.mark.parametrize("fn,ref,inputs", CASES)
def test_forward_matches_numpy(fn, ref, inputs):
    out = fn(*[Tensor(np.asarray(a, np.float32)) for a in inputs])
    assert out.dtype == "float32"
    np.testing.assert_allclose(out.data, ref(*inputs), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("fn,ref,inputs", CASES)
def test_gradient_matches_central_differences(fn, ref, inputs):
    assert check_gradients(fn, list(inputs)) <= 1e-6


def test_matrix_rank_and_errors():
    a = np.array([[1.0, 2.0], [2.0, 4.0]], "float32")
    assert int(linalg.matrix_rank(a).data) == 1
    with pytest.raises(ValueError, match="positive definite"):
        linalg.cholesky(-np.eye(2))


def test_linalg_names_have_keras_parameters():
    import inspect
    import json
    from pathlib import Path

    fixture = Path(__file__).parents[2] / "fixtures/keras_surface/keras-3.15.1.json"
    names = json.loads(fixture.read_text())["modules"]["ops.linalg"]
    for name in [n for n in names if hasattr(linalg, n)]:
        params = inspect.signature(getattr(linalg, name)).parameters
        assert set(names[name]["params"]) <= set(params), name


@pytest.mark.parametrize("name", ["inv", "det", "cholesky", "cholesky_inverse"])
def test_linalg_ops_inside_functional_models(name):
    import lamina

    inputs = lamina.Input((3, 3))
    model = lamina.Model(inputs, getattr(ops, name)(inputs))
    a = np.random.default_rng(0).standard_normal((2, 3, 3))
    spd = (a @ np.swapaxes(a, -1, -2) + 3 * np.eye(3)).astype("float32")
    want = getattr(ops, name)(spd).numpy()
    np.testing.assert_allclose(model.predict(spd, verbose=0), want, rtol=1e-5, atol=1e-6)
