"""The fused convolution + ReLU + max-pool primitive and the graph rule that picks it."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import ops
from lamina.backend import Variable, conv_ops, gradients, im2col, no_grad
from lamina.backend.conv_pool import ConvReluMaxPool
from lamina.backend.pooling import MaxPool
from lamina.testing import check_gradients

FUSED_CASES = [
    # (input shape, kernel shape, conv strides, conv padding, pool, pool strides, pool padding)
    ((2, 8, 9, 3), (3, 3, 3, 4), 1, "valid", 2, None, "valid"),
    ((2, 7, 7, 2), (3, 3, 2, 3), 1, "same", 2, None, "same"),
    ((2, 9, 8, 1), (3, 3, 1, 5), 1, "valid", 3, 2, "valid"),
    ((1, 9, 9, 2), (2, 2, 2, 3), 2, "same", (2, 1), (1, 1), "same"),
    ((2, 10, 3), (3, 3, 4), 1, "causal", 2, None, "valid"),
    ((1, 5, 4, 5, 2), (2, 2, 2, 2, 3), 1, "valid", 2, None, "same"),
    ((2, 6, 6, 4), (3, 3, 2, 6), 1, "same", 2, None, "valid"),  # two groups
]


def _fused(x, kernel, bias, strides, padding, pool, pool_strides, pool_padding):
    y = conv_ops.conv(x, kernel, strides, padding, bias=bias, activation="relu")
    return conv_ops.max_pool(y, pool, pool_strides, pool_padding)


def _plain(x, kernel, bias, strides, padding, pool, pool_strides, pool_padding):
    y = ops.relu(conv_ops.conv(x, kernel, strides, padding, bias=bias))
    return conv_ops.max_pool(y, pool, pool_strides, pool_padding)


@pytest.mark.parametrize("xs, ks, strides, padding, pool, pool_strides, pool_padding",
                         FUSED_CASES)
def test_fused_primitive_gradients(xs, ks, strides, padding, pool, pool_strides,
                                   pool_padding):
    rng = np.random.default_rng(0)
    x, kernel = rng.standard_normal(xs), rng.standard_normal(ks)
    bias = rng.standard_normal(ks[-1]) * 0.5
    args = (strides, padding, pool, pool_strides, pool_padding)

    def fn(a, k, b):
        out = _fused(a, k, b, *args)
        assert isinstance(out._ctx, ConvReluMaxPool)  # the graph rule picked the fused op
        return out

    check_gradients(fn, [x, kernel, bias])
    with no_grad():
        want = _plain(x, kernel, bias, *args).data
    variables = [Variable(a, dtype="float64") for a in (x, kernel, bias)]
    np.testing.assert_allclose(fn(*variables).data, want, rtol=1e-12)


def _grads(fused, x, kernel, bias, weights, extra=None, at_relu=False):
    """Gradients of ``sum(weights * maxpool(relu(conv)))`` (+ ``sum(extra * relu(conv))``)
    w.r.t. input, kernel and bias (and the ReLU output), fused primitive or plain ops."""
    xv, kv, bv = (Variable(a, dtype="float64") for a in (x, kernel, bias))
    y = conv_ops.conv(xv, kv, bias=bv, activation="relu" if fused else None)
    if not fused:
        y = ops.relu(y)
    pooled = conv_ops.max_pool(y, 2, padding="same")
    assert isinstance(pooled._ctx, ConvReluMaxPool if fused else MaxPool)
    loss = ops.sum(ops.multiply(pooled, weights))
    if extra is not None:
        loss = ops.add(loss, ops.sum(ops.multiply(y, extra)))
    return gradients(loss, [xv, kv, bv] + ([y] if at_relu else []))


@pytest.mark.parametrize("case", ["alone", "second consumer", "gradient at the relu"])
def test_fused_primitive_matches_the_plain_ops(case):
    # A negative bias leaves many windows all zero (ties at 0 whose winner must get no
    # gradient through the ReLU); constant input patches give ties at positive values.
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 9, 9, 3)).round()
    x[:, :4, :4] = 1.0
    kernel, bias = rng.standard_normal((3, 3, 3, 4)), rng.standard_normal(4) - 1.0
    weights = rng.standard_normal((2, 4, 4, 4))
    extra = rng.standard_normal((2, 7, 7, 4)) if case == "second consumer" else None
    at_relu = case == "gradient at the relu"
    fused = _grads(True, x, kernel, bias, weights, extra, at_relu)
    plain = _grads(False, x, kernel, bias, weights, extra, at_relu)
    assert np.count_nonzero(plain[-1]) and np.count_nonzero(plain[0])
    for got, want in zip(fused, plain):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_rule_keeps_the_plain_pool_where_it_does_not_apply():
    x = Variable(np.random.default_rng(1).standard_normal((1, 6, 6, 2)))
    kernel = Variable(np.ones((3, 3, 2, 2)))
    linear = conv_ops.conv(x, kernel)  # no fused ReLU
    assert isinstance(conv_ops.max_pool(linear, 2)._ctx, MaxPool)
    with no_grad():  # nothing recorded: nothing to fuse
        y = conv_ops.conv(x, kernel, activation="relu")
        assert y._ctx is None and conv_ops.max_pool(y, 2)._ctx is None
    y = conv_ops.conv(x, kernel, activation="relu")
    assert isinstance(conv_ops.max_pool(y, 2, data_format="channels_last")._ctx,
                      ConvReluMaxPool)


def test_fused_backward_is_the_same_in_batch_parts(monkeypatch):
    rng = np.random.default_rng(3)
    x, kernel, bias = (rng.standard_normal((5, 8, 8, 2)), rng.standard_normal((3, 3, 2, 4)),
                       rng.standard_normal(4))
    g = rng.standard_normal((5, 3, 3, 4))

    def run():
        xv, kv, bv = (Variable(a, dtype="float64") for a in (x, kernel, bias))
        out = _fused(xv, kv, bv, 1, "valid", 2, None, "valid")
        return gradients(out, [xv, kv, bv], output_gradient=g)

    monkeypatch.setattr(im2col, "PART_BYTES", 1 << 30)
    whole = run()
    monkeypatch.setattr(im2col, "PART_BYTES", 1)
    for got, want in zip(run(), whole):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_conv_output_is_freed_when_nothing_else_holds_it():
    # The fused node keeps only the pooled values and winners: once nothing else holds
    # the convolution's output, it is gone, and the gradients are still those of the
    # plain ops.
    import gc
    import weakref

    rng = np.random.default_rng(4)
    x, kernel, bias = (rng.standard_normal((2, 8, 8, 3)), rng.standard_normal((3, 3, 3, 4)),
                       rng.standard_normal(4) - 0.5)
    variables = [Variable(a, dtype="float64") for a in (x, kernel, bias)]

    def pooled_only(fused):
        y = conv_ops.conv(variables[0], variables[1], bias=variables[2],
                          activation="relu" if fused else None)
        if not fused:
            y = ops.relu(y)
        return conv_ops.max_pool(y, 2), weakref.ref(y)

    pooled, y_ref = pooled_only(True)
    gc.collect()
    assert y_ref() is None
    node = pooled._ctx
    assert isinstance(node, ConvReluMaxPool)
    assert node.parents[3] is None and node.needs == (True, True, True, False)
    got = gradients(pooled, variables, output_gradient=np.ones(pooled.shape))
    plain, _ = pooled_only(False)
    want = gradients(plain, variables, output_gradient=np.ones(plain.shape))
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
