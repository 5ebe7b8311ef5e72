"""The fused Normalize primitive: forward against numpy, gradients against float64
central differences, for the BatchNorm (NHWC and NCHW), LayerNorm and GroupNorm layouts."""

import numpy as np
import pytest

from lamina.backend.normalization import normalize
from lamina.testing import check_gradients

# (input shape, reduced axes, parameter shape): BatchNorm NHWC / NCHW / dense,
# LayerNorm over the last axis and the last two, GroupNorm's grouped view.
LAYOUTS = [
    ((4, 3, 3, 5), (0, 1, 2), (5,)),
    ((4, 5, 3, 3), (0, 2, 3), (5, 1, 1)),
    ((6, 4), (0,), (4,)),
    ((3, 4, 6), (2,), (6,)),
    ((3, 4, 6), (1, 2), (4, 6)),
    ((2, 3, 2, 3), (1, 3), (2, 3)),
]


def _reference(x, axes, gamma, beta, eps, mean=None, var=None):
    if mean is None:
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    out = (x - mean) / np.sqrt(var + eps)
    if gamma is not None:
        out = out * gamma
    if beta is not None:
        out = out + beta
    return out


@pytest.mark.parametrize("shape, axes, pshape", LAYOUTS)
@pytest.mark.parametrize("affine", [(True, True), (True, False), (False, True), (False, False)])
def test_forward_matches_numpy_with_batch_statistics(shape, axes, pshape, affine):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype("float32") * 3 + 1
    gamma = rng.standard_normal(pshape).astype("float32") if affine[0] else None
    beta = rng.standard_normal(pshape).astype("float32") if affine[1] else None
    out, mean, var = normalize(x, gamma, beta, axes=axes, epsilon=1e-3)
    np.testing.assert_allclose(out.data, _reference(x.astype("float64"), axes, gamma, beta,
                                                    1e-3), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mean, x.mean(axis=axes, keepdims=True), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var, x.var(axis=axes, keepdims=True), rtol=1e-5)
    assert out.data.dtype == np.float32


def test_forward_with_fixed_statistics_returns_no_batch_statistics():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4)).astype("float32")
    mean, var = rng.standard_normal((1, 4)), rng.random((1, 4)) + 0.5
    out, bm, bv = normalize(x, None, None, axes=(0,), epsilon=1e-3, mean=mean, variance=var)
    assert bm is None and bv is None
    np.testing.assert_allclose(out.data, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-5)


@pytest.mark.parametrize("shape, axes, pshape", LAYOUTS)
@pytest.mark.parametrize("fixed", [False, True])
def test_gradients_match_central_differences(shape, axes, pshape, fixed):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    gamma, beta = rng.standard_normal(pshape), rng.standard_normal(pshape)
    stats = {}
    if fixed:
        keep = tuple(1 if a in axes else d for a, d in enumerate(shape))
        stats = {"mean": rng.standard_normal(keep), "variance": rng.random(keep) + 0.5}

    def fn(x, g, b):
        return normalize(x, g, b, axes=axes, epsilon=1e-3, **stats)[0]

    check_gradients(fn, [x, gamma, beta], rtol=1e-6)


@pytest.mark.parametrize("shape, axes, pshape", LAYOUTS[:2] + LAYOUTS[3:4])
def test_gradients_without_gamma_and_beta(shape, axes, pshape):
    x = np.random.default_rng(3).standard_normal(shape)
    check_gradients(lambda x: normalize(x, axes=axes, epsilon=1e-3)[0], [x], rtol=1e-6)
