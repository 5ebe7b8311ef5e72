"""LayerNormalization's row-range path of ``Normalize`` (statistics over trailing axes,
several row ranges on the thread pool) against float64 numpy formulas; the result does
not depend on the number of threads."""

from __future__ import annotations

import numpy as np
import pytest

from lamina.backend import Variable, autodiff
from lamina.backend import normalization as norm
from lamina.backend.threads import get_thread_policy, set_thread_policy

RNG = np.random.default_rng(3)


def reference(x, gamma, beta, g, eps=1e-3):
    """Output and (x, gamma, beta) gradients of LayerNorm over the last axis."""
    mean = x.mean(-1, keepdims=True)
    inv = 1 / np.sqrt(x.var(-1, keepdims=True) + eps)
    xhat = (x - mean) * inv
    ghat = g * gamma
    gx = inv * (ghat - ghat.mean(-1, keepdims=True)
                - xhat * (ghat * xhat).mean(-1, keepdims=True))
    lead = tuple(range(x.ndim - 1))
    return xhat * gamma + beta, gx, (g * xhat).sum(lead), g.sum(lead)


def run(x, gamma, beta, g):
    xs, gs, bs = (Variable(a, dtype=a.dtype) for a in (x, gamma, beta))
    out, mean, var = norm.normalize(xs, gs, bs, axes=(x.ndim - 1,), epsilon=1e-3)
    grads = autodiff.gradients(out, [xs, gs, bs], output_gradient=g)
    return out.data, grads, mean, var


@pytest.mark.parametrize("threads", [1, 2])
def test_row_ranges_match_numpy(threads):
    x = RNG.standard_normal((12, 600, 40)) * 3 + 1  # 288,000 elements: two row ranges
    gamma, beta = RNG.standard_normal(40), RNG.standard_normal(40)
    g = RNG.standard_normal(x.shape)
    assert norm._row_layout(x, (2,), gamma, beta) == (7200, 40)
    assert x.size >= 2 * norm.ROW_PART_ELEMENTS
    previous = get_thread_policy()
    try:
        set_thread_policy(threads)
        out, (gx, ggamma, gbeta), mean, var = run(x, gamma, beta, g)
    finally:
        set_thread_policy(previous)
    ref_out, ref_gx, ref_gamma, ref_beta = reference(x, gamma, beta, g)
    np.testing.assert_allclose(out, ref_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gx, ref_gx, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(ggamma, ref_gamma, rtol=1e-10)
    np.testing.assert_allclose(gbeta, ref_beta, rtol=1e-10)
    np.testing.assert_allclose(mean, x.mean(-1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(var, x.var(-1, keepdims=True), rtol=1e-10)


def test_threads_do_not_change_the_bits():
    x = RNG.standard_normal((8, 320, 128)).astype(np.float32)  # two row ranges
    gamma = RNG.standard_normal(128).astype(np.float32)
    beta = RNG.standard_normal(128).astype(np.float32)
    g = RNG.standard_normal(x.shape).astype(np.float32)
    previous = get_thread_policy()
    results = []
    try:
        for threads in (1, 2):
            set_thread_policy(threads)
            out, grads, _, _ = run(x, gamma, beta, g)
            results.append([out, *grads])
    finally:
        set_thread_policy(previous)
    for a, b in zip(*results):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape, axes, pshape", [
    ((3, 4, 6), (1,), (4, 1)),        # not the trailing axes
    ((3, 4, 6), (2,), (1, 4, 6)),     # gamma varies along a non-reduced axis
])
def test_other_layouts_are_not_rows(shape, axes, pshape):
    x = np.zeros(shape)
    assert norm._row_layout(x, axes, np.ones(pshape)) is None
    assert norm._row_layout(x.astype(np.float16), (2,)) is None
    assert norm._row_layout(np.zeros((6, 4)).T, (1,)) is None


@pytest.mark.parametrize("with_gamma", [True, False])
@pytest.mark.parametrize("wanted", [(True, True, True), (True, False, False),
                                    (False, True, False)])
def test_row_backward_without_gamma_or_some_gradients(with_gamma, wanted):
    """The row backward with gamma or without it (``scale=False``), asked for the input's
    gradient alone or gamma's alone: the shared product ``g * xhat`` serves each case."""
    x = RNG.standard_normal((4, 3, 10)) * 2 - 1
    gamma = RNG.standard_normal(10) if with_gamma else np.ones(10)
    beta = RNG.standard_normal(10)
    g = RNG.standard_normal(x.shape)
    if not with_gamma:  # no gamma, no gradient of it (the walk never asks)
        wanted = (wanted[0], False, wanted[2])
    _, ref_gx, ref_gamma, ref_beta = reference(x, gamma, beta, g)
    layout = norm._row_layout(x, (2,))
    _, xhat, _, _, inv = norm._rows_forward(x, gamma if with_gamma else None, beta, 1e-3,
                                            layout)
    gx, ggamma, gbeta = norm._rows_backward(g, xhat, inv, gamma if with_gamma else None,
                                            wanted)
    for got, ref, want in zip((gx, ggamma, gbeta), (ref_gx, ref_gamma, ref_beta), wanted):
        if want:
            np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
        else:
            assert got is None


@pytest.mark.parametrize("rows, count", [(37, 32), (5, 32), (64, 8), (3, 200)])
@pytest.mark.parametrize("op", [np.multiply, np.add])
def test_columnwise_matches_broadcasting(rows, count, op):
    """Wide-row passes (tiled vector) and the leftover rows give numpy's broadcast bits,
    in place too."""
    a = RNG.standard_normal((rows, count)).astype(np.float32)
    vec = RNG.standard_normal(count).astype(np.float32)
    expected = op(a, vec)
    np.testing.assert_array_equal(norm._columnwise(op, a, vec, np.empty_like(a)), expected)
    np.testing.assert_array_equal(norm._columnwise(op, a, vec, a), expected)
