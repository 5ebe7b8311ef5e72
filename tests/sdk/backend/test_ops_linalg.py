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


def _flat(factors):
    return ops.concatenate([ops.reshape(f, (-1,)) for f in factors])


def _np_flat(factors):
    return np.concatenate([np.reshape(f, -1) for f in factors])


def _sym(a):
    return ops.add(a, ops.swapaxes(a, -1, -2))


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
    case("qr", lambda a: _flat(linalg.qr(a)), lambda a: _np_flat(np.linalg.qr(a)), rn(2, 4, 3)),
    case("qr", lambda a: _flat(linalg.qr(a)), lambda a: _np_flat(np.linalg.qr(a)), rn(3, 5),
         note="wide"),
    case("qr", lambda a: _flat(linalg.qr(a, mode="complete")),
         lambda a: _np_flat(np.linalg.qr(a, mode="complete")), rn(3, 3), note="complete"),
    case("svd", lambda a: _flat(linalg.svd(a, full_matrices=False)),
         lambda a: _np_flat(np.linalg.svd(a, full_matrices=False)), rn(2, 4, 3), note="reduced"),
    case("svd", lambda a: _flat(linalg.svd(a)), lambda a: _np_flat(np.linalg.svd(a)), rn(3, 3),
         note="square"),
    case("svd", lambda a: linalg.svd(a, compute_uv=False),
         lambda a: np.linalg.svd(a, compute_uv=False), rn(3, 5), note="values"),
    case("eigh", lambda a: _flat(linalg.eigh(_sym(a))),
         lambda a: _np_flat(np.linalg.eigh(a + np.swapaxes(a, -1, -2))), rn(2, 3, 3)),
    case("logdet", linalg.logdet, lambda a: np.linalg.slogdet(a)[1], well(2, 3, 3)),
    case("pinv", linalg.pinv, np.linalg.pinv, rn(2, 4, 3)),
    case("pinv", linalg.pinv, np.linalg.pinv, rn(2, 5), note="wide"),
    case("lstsq", linalg.lstsq, lambda a, b: np.linalg.lstsq(a, b)[0], rn(5, 3), rn(5, 2)),
    case("lstsq", linalg.lstsq, lambda a, b: np.linalg.lstsq(a, b)[0], rn(2, 4), rn(2),
         note="underdetermined"),
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


def test_factorisations_reconstruct_their_input():
    a = rn(2, 4, 3).astype("float32")
    q, r = linalg.qr(a, mode="complete")
    assert q.shape == (2, 4, 4) and r.shape == (2, 4, 3)
    np.testing.assert_allclose(q.data @ r.data, a, atol=1e-5)
    u, s, vh = linalg.svd(a)
    assert (u.shape, s.shape, vh.shape) == ((2, 4, 4), (2, 3), (2, 3, 3))
    np.testing.assert_allclose((u.data[..., :3] * s.data[:, None]) @ vh.data, a, atol=1e-5)
    w, v = linalg.eig(np.array([[2.0, 1.0], [0.0, 3.0]]))
    np.testing.assert_allclose(np.sort(w.data.real), [2.0, 3.0])
    assert not w.requires_grad
    with pytest.raises(ValueError, match="mode=economic"):
        linalg.qr(a, mode="economic")
    with pytest.raises(ValueError, match=r"a.shape=\(2, 4, 3\)"):
        linalg.lstsq(a, a)


def test_svd_full_matrices_gradient_through_extra_columns_is_refused():
    from lamina.backend import Variable, gradients

    x = Variable(rn(4, 2))
    u, _, _ = linalg.svd(x)
    with pytest.raises(NotImplementedError, match="full_matrices=False"):
        gradients(ops.sum(u), [x])
    (g,) = gradients(ops.sum(u[:, :2] ** 2 * 0.0 + linalg.svd(x, compute_uv=False)[0]), [x])
    assert np.all(np.isfinite(g))


def test_lu_factor_matches_scipy():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    for a in (rn(4, 4), rn(3, 5), rn(5, 3)):
        lu, piv = linalg.lu_factor(a)
        want_lu, want_piv = scipy_linalg.lu_factor(a)
        np.testing.assert_allclose(lu.data, want_lu, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(piv.data, want_piv)
        assert piv.dtype == "int32"
    batch = rn(2, 3, 3)
    lu, piv = linalg.lu_factor(batch)
    for i in range(2):
        np.testing.assert_allclose(lu.data[i], scipy_linalg.lu_factor(batch[i])[0], atol=1e-12)
        np.testing.assert_array_equal(piv.data[i], scipy_linalg.lu_factor(batch[i])[1])


@pytest.mark.parametrize("name", ["qr", "svd", "eigh", "pinv", "logdet", "lu_factor", "eig"])
def test_decompositions_inside_functional_models(name):
    import lamina

    inputs = lamina.Input((3, 3))
    outputs = getattr(ops, name)(inputs)
    model = lamina.Model(inputs, list(outputs) if isinstance(outputs, tuple) else outputs)
    a = rn(2, 3, 3)
    x = (a @ np.swapaxes(a, -1, -2) + 3 * np.eye(3)).astype("float32")
    want = getattr(ops, name)(x)
    got = model.predict(x, verbose=0)
    for g, w in zip(got if isinstance(want, tuple) else [got],
                    want if isinstance(want, tuple) else [want]):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-5, atol=1e-6)


def test_qr_complete_gradient_through_extra_columns_is_refused():
    from lamina.backend import Variable, gradients

    x = Variable(rn(4, 2))
    q, r = linalg.qr(x, mode="complete")
    with pytest.raises(NotImplementedError, match="mode='reduced'"):
        gradients(ops.sum(q), [x])
    assert check_gradients(lambda a: _flat([linalg.qr(a, mode="complete")[0][:, :2],
                                            linalg.qr(a, mode="complete")[1]]),
                           [rn(4, 2)]) <= 1e-6
