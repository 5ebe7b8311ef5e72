"""The fast paths of ``backend/nn.py`` against the general forms they replace, bit for
bit: the sparse cross-entropy's row index (vs ``take_along_axis``/``put_along_axis``),
the ufunc reductions of softmax (vs ``np.max``/``np.sum``), ReluDense's float mask."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import losses, ops
from lamina.backend import Tensor
from lamina.backend import nn as _nn
from lamina.backend.autodiff import gradients
from lamina.testing import check_gradients

RNG = np.random.default_rng(13)
DTYPES = [np.float16, np.float32, np.float64]


def ref_log_softmax(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    shifted -= np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return shifted


def ref_softmax(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= np.sum(shifted, axis=axis, keepdims=True)
    return shifted


def ref_sparse(logits, labels, g, axis=-1):
    """The general path: per-sample loss and the logits' gradient."""
    logp = ref_log_softmax(logits, axis)
    idx = np.expand_dims(labels, axis)
    loss = -np.squeeze(np.take_along_axis(logp, idx, axis=axis), axis=axis)
    probs = np.exp(logp)
    np.put_along_axis(probs, idx, np.take_along_axis(probs, idx, axis=axis) - 1, axis=axis)
    return loss, probs * np.expand_dims(g, axis)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


SPARSE_CASES = [
    ((128, 10), (128,)),
    ((2, 3, 5), (2, 3)),
    ((5,), ()),
    ((1, 7), (1,)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,label_shape", SPARSE_CASES)
def test_sparse_cross_entropy_matches_take_along_axis(dtype, shape, label_shape):
    logits = (RNG.standard_normal(shape) * 4).astype(dtype)
    labels = RNG.integers(0, shape[-1], label_shape)
    labels.flat[0] = -1  # a negative id wraps in both forms
    g = RNG.uniform(0.1, 1, label_shape).astype(dtype)
    ctx = _nn.SoftmaxCrossEntropy()
    ctx.needs = (True, False)
    loss = ctx.forward(logits, labels, sparse=True)
    assert ctx.rows is not None  # the fast path ran
    ref_loss, ref_grad = ref_sparse(logits, labels, g)
    same_bits(loss, ref_loss)
    same_bits(ctx.backward(g)[0], ref_grad)


def test_sparse_cross_entropy_promotes_like_the_reference():
    logits = RNG.standard_normal((6, 4)).astype(np.float32)
    labels, g = RNG.integers(0, 4, 6), RNG.uniform(0.1, 1, 6)  # float64 upstream gradient
    ctx = _nn.SoftmaxCrossEntropy()
    ctx.forward(logits, labels, sparse=True)
    same_bits(ctx.backward(g)[0], ref_sparse(logits, labels, g)[1])


@pytest.mark.parametrize("case", ["fortran", "axis0", "broadcast_labels"])
def test_sparse_cross_entropy_general_path(case):
    logits = RNG.standard_normal((6, 4)).astype(np.float32)
    labels, g, axis = RNG.integers(0, 4, 6), RNG.uniform(0.1, 1, 6).astype(np.float32), -1
    if case == "fortran":
        logits = np.asfortranarray(logits)
    elif case == "axis0":
        logits, axis = np.ascontiguousarray(logits.T), 0
    else:  # ids of shape (1, 6) broadcast against logits (2, 6, 4)
        logits, labels = np.stack([logits, logits[::-1]]), labels[None]
        g = RNG.uniform(0.1, 1, (2, 6)).astype(np.float32)
    ctx = _nn.SoftmaxCrossEntropy()
    loss = ctx.forward(logits, labels, sparse=True, axis=axis)
    assert ctx.rows is None  # the general path ran
    ref_loss, ref_grad = ref_sparse(logits, labels, g, axis)
    same_bits(loss, ref_loss)
    same_bits(ctx.backward(g)[0], ref_grad)


def test_sparse_cross_entropy_axis0_gradient():
    labels = np.array([0, 3, 3, 1, 2])
    check_gradients(lambda z: ops.softmax_cross_entropy(z, labels, sparse=True, axis=0),
                    [RNG.standard_normal((4, 5))])


def test_out_of_range_label_raises():
    with pytest.raises(IndexError):
        _nn.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([0, 3]), sparse=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_reductions_match_max_and_sum(dtype, axis):
    x = (RNG.standard_normal((3, 4, 5)) * 5).astype(dtype)
    same_bits(_nn._softmax(x, axis), ref_softmax(x, axis))
    same_bits(_nn._log_softmax(x, axis), ref_log_softmax(x, axis))


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("trailing_one", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_categorical_loss_matches_reference(from_logits, trailing_one, weighted):
    """The loss as fit computes it: labels (n,) or (n, 1), logits or softmax output,
    with and without sample weights; value and the logits' gradient."""
    z = Tensor(RNG.standard_normal((16, 10)).astype(np.float32), requires_grad=True)
    labels = RNG.integers(0, 10, 16)
    weights = RNG.uniform(0, 2, 16).astype(np.float32) if weighted else None
    y_true = labels[:, None] if trailing_one else labels
    y_pred = z if from_logits else ops.softmax(z)
    loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits)(
        y_true, y_pred, sample_weight=weights)
    (gz,) = gradients(loss, [z])
    per_sample = -ref_log_softmax(z.data, -1)[np.arange(16), labels]
    w = np.ones(16, np.float32) if weights is None else weights
    expected = np.sum(per_sample * w) / np.float32(16)
    np.testing.assert_allclose(float(loss.data), expected, rtol=1e-6)
    probs = ref_softmax(z.data, -1)
    probs[np.arange(16), labels] -= 1
    np.testing.assert_allclose(np.asarray(gz), probs * w[:, None] / 16, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_dense_backward_matches_bool_mask(dtype):
    x = RNG.standard_normal((8, 6)).astype(dtype)
    kernel = RNG.standard_normal((6, 5)).astype(dtype)
    bias = RNG.standard_normal(5).astype(dtype)
    g = RNG.standard_normal((8, 5)).astype(dtype)
    g[0, :3] = [np.nan, np.inf, -np.inf]  # NaN/inf times a zero mask stay NaN, as before
    fused, plain = _nn.ReluDense(), _nn.Dense()
    fused.needs = plain.needs = (True, True, True)
    out = fused.forward(x, kernel, bias)
    plain.forward(x, kernel, bias)
    with np.errstate(invalid="ignore"):  # inf * 0, in both forms
        pairs = list(zip(fused.backward(g), plain.backward(g * (out > 0))))
    for a, b in pairs:
        same_bits(a, b)
