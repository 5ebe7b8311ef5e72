"""Keras's ``ops.nn`` names added to ``lamina.ops.nn``: forward against float64 numpy,
gradient against central differences (``lamina.testing.check_gradients``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lamina import ops
from lamina.backend import Tensor
from lamina.ops import nn
from lamina.testing import check_gradients

RNG = np.random.default_rng(7)


def rn(*shape):
    return RNG.standard_normal(shape)


def away(x, *kinks, gap=0.05):
    x = np.array(x, dtype=np.float64)
    for k in kinks:
        near = np.abs(x - k) < gap
        x[near] = k + np.where(x[near] >= k, 1, -1) * (gap + 0.01)
    return x


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_sparsemax(x):
    out = np.zeros_like(x)
    for i, row in enumerate(x.reshape(-1, x.shape[-1])):
        z = np.sort(row)[::-1]
        k = np.arange(1, len(z) + 1)
        kz = k[1 + k * z > np.cumsum(z)].max()
        tau = (z[:kz].sum() - 1) / kz
        out.reshape(-1, x.shape[-1])[i] = np.maximum(row - tau, 0)
    return out


def np_attention(q, k, v, causal=False):
    g = q.shape[2] // k.shape[2]
    k, v = np.repeat(k, g, axis=2), np.repeat(v, g, axis=2)
    logits = np.einsum("btnh,bsnh->bnts", q, k) / math.sqrt(q.shape[-1])
    if causal:
        logits = np.where(np.tril(np.ones(logits.shape[-2:], bool)), logits, -1e30)
    return np.einsum("bnts,bsnh->btnh", np_softmax(logits), v)


def np_layer_norm(x, g, b):
    m, v = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - m) / np.sqrt(v + 1e-7) * g + b


def case(name, fn, ref, *inputs, note=""):
    return pytest.param(fn, ref, inputs, id=f"{name}[{note}]" if note else name)


X = away(rn(3, 5) * 2, -1, 1, 0.5, -0.5, 0)
def np_adaptive(x, out, fn):
    for axis, o in zip((1, 2), out):
        n = x.shape[axis]
        parts = [fn(np.take(x, range(j * n // o, -(-(j + 1) * n // o)), axis=axis), axis=axis,
                    keepdims=True) for j in range(o)]
        x = np.concatenate(parts, axis=axis)
    return x


def np_unfold(x, k, d, p, s):
    x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    n, c, h, w = x.shape
    oh, ow = (h - d * (k - 1) - 1) // s + 1, (w - d * (k - 1) - 1) // s + 1
    out = np.zeros((n, c, k, k, oh, ow))
    for i in range(k):
        for j in range(k):
            out[:, :, i, j] = x[:, :, i * d:i * d + s * (oh - 1) + 1:s,
                                j * d:j * d + s * (ow - 1) + 1:s]
    return out.reshape(n, c * k * k, oh * ow)


def np_fold(cols, out, k, d, p, s):
    n, ckk, _ = cols.shape
    c = ckk // (k * k)
    hp, wp = out[0] + 2 * p, out[1] + 2 * p
    oh, ow = (hp - d * (k - 1) - 1) // s + 1, (wp - d * (k - 1) - 1) // s + 1
    blocks = cols.reshape(n, c, k, k, oh, ow)
    res = np.zeros((n, c, hp, wp))
    for i in range(k):
        for j in range(k):
            res[:, :, i * d:i * d + s * (oh - 1) + 1:s, j * d:j * d + s * (ow - 1) + 1:s] += \
                blocks[:, :, i, j]
    return res[:, :, p:p + out[0], p:p + out[1]]


CASES = [
    case("fold", lambda x: nn.fold(x, (5, 6), 2, dilation=2, padding=1, stride=2),
         lambda x: np_fold(x, (5, 6), 2, 2, 1, 2), rn(2, 12, 9)),
    case("fold", lambda x: nn.fold(x, 4, 3), lambda x: np_fold(x, (4, 4), 3, 1, 0, 1),
         rn(1, 18, 4), note="overlapping"),
    case("adaptive_average_pool", lambda x: nn.adaptive_average_pool(x, (2, 3)),
         lambda x: np_adaptive(x, (2, 3), np.mean), rn(2, 5, 7, 3)),
    case("adaptive_max_pool", lambda x: nn.adaptive_max_pool(x, 3),
         lambda x: np_adaptive(x, (3, 3), np.max), rn(2, 5, 7, 3)),
    case("unfold", lambda x: nn.unfold(x, 2, dilation=2, padding=1, stride=2),
         lambda x: np_unfold(x, 2, 2, 1, 2), rn(2, 3, 5, 6)),
    case("unfold", lambda x: nn.unfold(x, 3), lambda x: np_unfold(x, 3, 1, 0, 1),
         rn(1, 2, 4, 4), note="defaults"),
    case("celu", nn.celu, lambda x: np.where(x > 0, x, np.expm1(x)), X),
    case("celu", lambda x: nn.celu(x, alpha=0.5),
         lambda x: np.where(x > 0, x, 0.5 * np.expm1(x / 0.5)), X, note="alpha"),
    case("glu", nn.glu, lambda x: x[:, :2] * np_sigmoid(x[:, 2:]), rn(3, 4)),
    case("hard_shrink", nn.hard_shrink, lambda x: np.where(np.abs(x) > 0.5, x, 0), X),
    case("soft_shrink", nn.soft_shrink,
         lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0)), X),
    case("hard_tanh", nn.hard_tanh, lambda x: np.clip(x, -1, 1), X),
    case("hard_swish", nn.hard_swish, lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
         away(rn(3, 4) * 4, -3, 3)),
    case("tanh_shrink", nn.tanh_shrink, lambda x: x - np.tanh(x), X),
    case("threshold", lambda x: nn.threshold(x, 0.3, -2.0),
         lambda x: np.where(x > 0.3, x, -2.0), away(X, 0.3)),
    case("sparse_plus", nn.sparse_plus,
         lambda x: np.where(x <= -1, 0, np.where(x >= 1, x, (x + 1) ** 2 / 4)), X),
    case("sparse_sigmoid", nn.sparse_sigmoid,
         lambda x: np.where(x <= -1, 0, np.where(x >= 1, 1, (x + 1) / 2)), X),
    case("squareplus", nn.squareplus, lambda x: (x + np.sqrt(x**2 + 4)) / 2, X),
    case("sparsemax", nn.sparsemax, np_sparsemax, rn(4, 6)),
    case("moments", lambda x: nn.moments(x, [0, 1])[1], lambda x: x.var((0, 1)), rn(3, 4, 2)),
    case("moments", lambda x: nn.moments(x, -1, keepdims=True)[0],
         lambda x: x.mean(-1, keepdims=True), rn(3, 4), note="keepdims"),
    case("batch_normalization", lambda x, m, v, o, s: nn.batch_normalization(
        x, m, v, axis=1, offset=o, scale=s),
         lambda x, m, v, o, s: (x - m[:, None]) / np.sqrt(v[:, None] + 1e-3) * s[:, None]
         + o[:, None], rn(2, 3, 4), rn(3), RNG.uniform(0.5, 2, 3), rn(3), rn(3)),
    case("layer_normalization", nn.layer_normalization, np_layer_norm, rn(3, 5), rn(5), rn(5)),
    case("rms_normalization", nn.rms_normalization,
         lambda x, s: x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-7) * s, rn(3, 5), rn(5)),
    case("psnr", lambda a, b: nn.psnr(a, b, 1.0),
         lambda a, b: -10 * np.log10(((a - b) ** 2).mean()), rn(2, 4, 4), rn(2, 4, 4)),
    case("depth_to_space", lambda x: nn.depth_to_space(x, 2),
         lambda x: x.reshape(1, 2, 3, 2, 2, 2).transpose(0, 1, 3, 2, 4, 5).reshape(1, 4, 6, 2),
         rn(1, 2, 3, 8)),
    case("space_to_depth", lambda x: nn.space_to_depth(x, 2, data_format="channels_first"),
         lambda x: x.reshape(1, 2, 2, 2, 3, 2).transpose(0, 1, 3, 5, 2, 4).reshape(1, 8, 2, 3),
         rn(1, 2, 4, 6)),
    case("dot_product_attention", nn.dot_product_attention, np_attention,
         rn(2, 3, 4, 2), rn(2, 5, 2, 2), rn(2, 5, 2, 2), note="gqa"),
    case("dot_product_attention", lambda q, k, v: nn.dot_product_attention(
        q, k, v, is_causal=True), lambda q, k, v: np_attention(q, k, v, causal=True),
         rn(1, 3, 2, 2), rn(1, 3, 2, 2), rn(1, 3, 2, 2), note="causal"),
]


@pytest.mark.parametrize("fn,ref,inputs", CASES)
def test_forward_matches_numpy(fn, ref, inputs):
    out = fn(*[Tensor(np.asarray(a, np.float32)) for a in inputs])
    assert out.dtype == "float32"
    np.testing.assert_allclose(out.data, ref(*inputs), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("fn,ref,inputs", CASES)
def test_gradient_matches_central_differences(fn, ref, inputs):
    assert check_gradients(fn, list(inputs)) <= 1e-6


def test_one_hot_and_multi_hot_follow_keras():
    got = ops.one_hot(np.array([0, 2, -1]), 3, axis=0).data
    np.testing.assert_array_equal(got, np.eye(3, dtype="float32")[[0, 2, 1]].T * [1, 1, 0])
    hot = nn.multi_hot(np.array([[0, 2], [1, 1]]), 4).data
    np.testing.assert_array_equal(hot, [[1, 0, 1, 0], [0, 1, 0, 0]])
    with pytest.raises(ValueError, match="sparse=True"):
        ops.one_hot([0], 2, sparse=True)


def test_every_keras_nn_name_has_keras_parameters():
    import inspect
    import json
    from pathlib import Path

    fixture = Path(__file__).parents[2] / "fixtures/keras_surface/keras-3.15.1.json"
    names = json.loads(fixture.read_text())["modules"]["ops.nn"]
    for name in [n for n in names if hasattr(nn, n)]:
        params = inspect.signature(getattr(nn, name)).parameters
        assert set(names[name]["params"]) <= set(params), name


def test_nn_ops_record_nodes_on_keras_tensors():
    import lamina as keras

    a = keras.Input(shape=(4,))
    model = keras.Model(a, nn.layer_normalization(nn.sparsemax(a)))
    x = rn(2, 4).astype("float32")
    got = model.predict(x, verbose=0)
    np.testing.assert_allclose(got, np_layer_norm(np_sparsemax(x), 1, 0), rtol=1e-4, atol=1e-4)
