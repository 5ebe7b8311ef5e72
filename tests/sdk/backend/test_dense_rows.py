"""Dense with a row-split backward (``lamina.backend.dense_rows``): gradients against
float64 central differences and a float64 numpy reference, the choice of path, and the
bits independent of the thread count."""

from __future__ import annotations

import numpy as np
import pytest

from lamina.backend import Tensor, Variable, autodiff, nn
from lamina.backend import dense_rows as dr
from lamina.testing import check_gradients

RNG = np.random.default_rng(5)


def rn(*shape):
    return RNG.standard_normal(shape)


GRADIENT_TABLE = [
    pytest.param(lambda x, k, b: dr.RowSplitDense.apply(x, k, b, parts=3),
                 [rn(2, 7, 3), rn(3, 4), rn(4)], id="dense,3-ranges"),
    pytest.param(lambda x, k, b: dr.RowSplitDense.apply(x, k, b, parts=1),
                 [rn(5, 3), rn(3, 4), rn(4)], id="dense,1-range"),
    pytest.param(lambda x, k: dr.RowSplitDense.apply(x, k, parts=4),
                 [rn(9, 3), rn(3, 2)], id="dense,no-bias,uneven"),
    # an output at least twice as wide as the input: the bias rides in the GEMM
    pytest.param(lambda x, k, b: dr.RowSplitDense.apply(x, k, b, parts=3),
                 [rn(2, 7, 3), rn(3, 8), rn(8)], id="dense,wide,bias-in-gemm"),
    pytest.param(lambda x, k, b: dr.RowSplitReluDense.apply(x, k, b, parts=2),
                 [np.array([[1.0], [0.5], [-1.0], [2.0]]), np.array([[1.0, -1.0, 0.3]]),
                  np.array([0.1, -0.2, 0.15])], id="relu,wide,bias-in-gemm"),
    # relu: pre-activations away from the kink (central differences straddle it)
    pytest.param(lambda x, k, b: dr.RowSplitReluDense.apply(x, k, b, parts=2),
                 [np.array([[1.0, -2.0], [0.5, 1.5], [-1.0, -0.3], [2.0, 0.4]]),
                  np.array([[1.0, -1.0, 0.2], [0.3, 0.8, -0.5]]),
                  np.array([0.1, -0.2, 0.15])], id="relu,2-ranges"),
]


@pytest.mark.parametrize("fn, inputs", GRADIENT_TABLE)
def test_gradients_match_central_differences(fn, inputs):
    assert check_gradients(fn, inputs) <= 1e-6


@pytest.mark.parametrize("units", [5, 12], ids=["narrow", "wide"])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("parts", [1, 3])
def test_forward_and_gradients_match_numpy(relu, parts, units):
    x, kernel, bias, g = rn(4, 25, 6), rn(6, units), rn(units), rn(4, 25, units)
    cls = dr.RowSplitReluDense if relu else dr.RowSplitDense
    xs, ks, bs = (Variable(a, dtype=a.dtype) for a in (x, kernel, bias))
    out = cls.apply(xs, ks, bs, parts=parts)
    gx, gk, gb = autodiff.gradients(out, [xs, ks, bs], output_gradient=g)
    ref = x @ kernel + bias
    if relu:
        ref = np.maximum(ref, 0)
        g = g * (ref > 0)
    np.testing.assert_allclose(out.data, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx, g @ kernel.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gk, x.reshape(-1, 6).T @ g.reshape(-1, units), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(gb, g.reshape(-1, units).sum(0), rtol=1e-12, atol=1e-12)


def test_gradients_nobody_needs_are_skipped():
    ctx = dr.RowSplitDense()
    ctx.needs = (False, True, False)
    ctx.forward(np.ones((10, 3), np.float32), np.ones((3, 2), np.float32),
                np.zeros(2, np.float32), parts=3)
    gx, gk, gb = ctx.backward(np.ones((10, 2), np.float32))
    assert gx is None and gb is None
    np.testing.assert_array_equal(gk, np.full((3, 2), 10, np.float32))


def test_row_parts_follow_the_shapes():
    assert dr.row_parts(8192, (32, 384)) == 4
    assert dr.row_parts(2048, (128, 32)) == 2
    assert dr.row_parts(128, (784, 512)) == 0  # the MLP: few rows, a large kernel
    assert dr.row_parts(1 << 20, (512, 512)) == 0  # partial kernels would cost too much


def test_dense_picks_the_row_split_only_where_it_pays():
    small = dr.dense(Tensor(np.ones((4, 3), np.float32)), Variable(np.ones((3, 2))))
    assert small.data.shape == (4, 2)
    many = Variable(np.ones((2 * dr.MIN_PART_ROWS, 3), np.float32))
    out = dr.dense(many, Variable(np.ones((3, 2), np.float32)), activation="relu")
    assert isinstance(out._ctx, dr.RowSplitReluDense) and out._ctx.parts == 2
    few = Variable(np.ones((8, 3), np.float32))
    assert type(dr.dense(few, Variable(np.ones((3, 2), np.float32)))._ctx) is nn.Dense
    with pytest.raises(ValueError, match="activation='tanh'"):
        dr.dense(few, Variable(np.ones((3, 2), np.float32)), activation="tanh")
    with pytest.raises(ValueError, match="parts=0"):
        dr.RowSplitDense.apply(few, Variable(np.ones((3, 2), np.float32)), parts=0)


def _train_step_bits(units):
    x = np.random.default_rng(0).standard_normal((3 * dr.MIN_PART_ROWS, 16))
    xs = Variable(x.astype(np.float32))
    ks = Variable(np.random.default_rng(1).standard_normal((16, units)).astype(np.float32))
    bs = Variable(np.full(units, 0.1, np.float32))
    out = dr.dense(xs, ks, bs, activation="relu")
    assert isinstance(out._ctx, dr.RowSplitReluDense)
    g = np.random.default_rng(2).standard_normal(out.shape).astype(np.float32)
    return [out.data.tobytes()] + [a.tobytes() for a in autodiff.gradients(
        out, [xs, ks, bs], output_gradient=g)]


@pytest.mark.parametrize("units", [24, 40], ids=["narrow", "wide"])
def test_threads_do_not_change_the_bits(pool_of_two, units):
    with_worker = _train_step_bits(units)
    from lamina.backend.threads import set_thread_policy

    set_thread_policy(1)
    try:
        alone = _train_step_bits(units)
    finally:
        set_thread_policy("auto")
    assert with_worker == alone


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"Received: x.shape=\(3,\), kernel.shape=\(3, 2\), "
                                         r"parts=2"):
        dr.RowSplitDense.apply(rn(3), rn(3, 2), parts=2)
    with pytest.raises(ValueError, match="Received: activation='tanh'"):
        dr.dense(rn(4, 3), Variable(rn(3, 2)), activation="tanh")
