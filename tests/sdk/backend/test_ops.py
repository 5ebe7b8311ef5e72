"""Every op in ``lamina.ops``: forward against numpy, gradient against central differences.

One table. Each row is an op applied to fixed inputs; the row is checked three ways:
the float32 forward against a float64 numpy reference, the output and gradient dtypes
(float32 in, float32 out), and the float64 gradient against central differences with
``lamina.testing.check_gradients`` (relative error <= 1e-6).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lamina import ops
from lamina.backend import Tensor, Variable, gradients
from lamina.testing import check_gradients

RNG = np.random.default_rng(1234)


def rn(*shape):
    return RNG.standard_normal(shape)


def pos(*shape):
    return RNG.uniform(0.5, 2.0, shape)


def away(x, *kinks, gap=0.05):
    """Move entries of ``x`` that lie within ``gap`` of a kink to ``kink + gap``-ish."""
    x = np.array(x, dtype=np.float64)
    for k in kinks:
        near = np.abs(x - k) < gap
        x[near] = k + np.where(x[near] >= k, 1, -1) * (gap + 0.01)
    return x


def labels_dist(*shape):
    p = RNG.uniform(0.1, 1.0, shape)
    return p / p.sum(axis=-1, keepdims=True)


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis=-1):
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_softplus(x):
    return np.logaddexp(x, 0)


def np_elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


np_erf = np.vectorize(math.erf)


def np_logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def np_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def dropout_mask(shape, rate, seed):
    keep = np.random.default_rng(seed).random(shape, dtype=np.float32) >= rate
    return keep / (1 - rate)


def np_conv1d(x, k):
    windows = np.lib.stride_tricks.sliding_window_view(x, k.shape[0], axis=1)
    return np.einsum("bnck,kco->bno", windows, k)


def np_conv_transpose1d(x, k):
    n = x.shape[1]
    out = np.zeros((x.shape[0], n + k.shape[0] - 1, k.shape[1]))
    for j in range(k.shape[0]):
        out[:, j:j + n] += x @ k[j].T
    return out


def np_depthwise_conv1d(x, k):
    windows = np.lib.stride_tricks.sliding_window_view(x, k.shape[0], axis=1)
    out = np.einsum("bnck,kcm->bncm", windows, k)
    return out.reshape(out.shape[:2] + (-1,))


def mod_inputs(*shape):
    """``(x1, x2)`` with ``x1 / x2`` away from integers, where ``mod`` jumps."""
    x2 = pos(*shape)
    whole = RNG.integers(-3, 3, shape)
    return (whole + RNG.uniform(0.1, 0.9, shape)) * x2, x2


def np_normalize(x, axis=-1, order=2):
    return x / np.linalg.norm(x, ord=order, axis=axis, keepdims=True)


def np_bce(t, p):
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805
COND = RNG.random((3, 4)) > 0.5
COND_COL = np.array([[True], [False], [True]])
COND_ROWS = [RNG.random((3, 4)) > 0.6, RNG.random((3, 4)) > 0.4]
HAS_ZERO = np.array([[0.5, -1.5, 0.0, 2.0], [1.2, 0.8, -0.7, 1.1], [0.0, 0.9, 0.0, -1.3]])
SPECIAL = np.array([1.0, np.nan, np.inf, -np.inf, -2.0], dtype=np.float32)
TIES = np.array([[1.0, 3.0, 3.0, -1.0], [2.0, 0.5, 2.0, 0.1], [0.3, 0.2, 0.1, 0.0]])


def case(name, fn, ref, *inputs, wrt=None, dtype="float32", note=""):
    """One row: ``name`` is the op (used by the coverage test), ``note`` the variant."""
    label = f"{name}[{note}]" if note else name
    return pytest.param(name, fn, ref, inputs, wrt, dtype, id=label)


A34, B34 = rn(3, 4), rn(3, 4)
CASES = [
    # -- elementwise binary, with broadcasting --------------------------------------
    case("add", ops.add, np.add, rn(3, 1), rn(1, 4), note="(3,1)+(1,4)"),
    case("add", ops.add, np.add, rn(4), rn(2, 3, 4), note="(4,)+(2,3,4)"),
    case("add", ops.add, np.add, rn(), rn(2, 3), note="scalar+(2,3)"),
    case("add", lambda x: ops.add(x, 2.5), lambda x: x + 2.5, rn(2, 3), note="python-float"),
    case("add", lambda x: x + x, lambda x: 2 * x, rn(2, 3), note="x+x"),
    case("subtract", ops.subtract, np.subtract, rn(3, 1), rn(1, 4), note="(3,1)-(1,4)"),
    case("subtract", lambda x: 2.0 - x, lambda x: 2.0 - x, rn(4), note="rsub"),
    case("multiply", ops.multiply, np.multiply, rn(4), rn(2, 3, 4), note="(4,)*(2,3,4)"),
    case("multiply", ops.multiply, np.multiply, rn(), rn(3), note="scalar"),
    case("multiply", lambda x, y: x * y * x, lambda x, y: x * y * x, rn(3, 1), rn(1, 4),
         note="reuse"),
    case("divide", ops.divide, np.divide, rn(3, 1), pos(1, 4), note="(3,1)/(1,4)"),
    case("divide", lambda x: 1.0 / x, lambda x: 1.0 / x, pos(2, 3), note="rdiv"),
    case("true_divide", ops.true_divide, np.divide, rn(4), pos(2, 3, 4)),
    case("power", ops.power, np.power, pos(3, 1), rn(1, 4), note="tensor-exponent"),
    case("power", lambda x: ops.power(x, 3.0), lambda x: x**3, rn(2, 3), note="cube"),
    case("power", lambda x: x**2, lambda x: x**2, rn(2, 3), note="int-exponent"),
    case("power", lambda x: ops.power(x, 0.5), np.sqrt, pos(4), note="sqrt"),
    case("maximum", ops.maximum, np.maximum, A34, away(B34 - A34, 0) + A34, note="(3,4)"),
    case("maximum", ops.maximum, np.maximum, rn(3, 1), rn(1, 4) + 0.013, note="bcast"),
    case("maximum", lambda x: ops.maximum(x, 0.0), lambda x: np.maximum(x, 0),
         away(rn(3, 4), 0), note="scalar"),
    case("minimum", ops.minimum, np.minimum, A34, away(B34 - A34, 0) + A34, note="(3,4)"),
    case("minimum", lambda x: ops.minimum(x, 0.5), lambda x: np.minimum(x, 0.5),
         away(rn(5), 0.5), note="scalar"),
    # -- elementwise unary -----------------------------------------------------------
    case("negative", ops.negative, np.negative, rn(2, 3)),
    case("negative", lambda x: -x, np.negative, rn(2, 3), note="operator"),
    case("exp", ops.exp, np.exp, rn(2, 3)),
    case("log", ops.log, np.log, pos(2, 3)),
    case("log1p", ops.log1p, np.log1p, pos(2, 3) - 0.4),
    case("log1p", lambda x: ops.log1p(x) * 1e6, lambda x: np.log1p(x) * 1e6,
         np.array([1e-9, 1e-7, -1e-8, 1e-4]), note="tiny"),
    case("sqrt", ops.sqrt, np.sqrt, pos(2, 3)),
    case("square", ops.square, np.square, rn(2, 3)),
    case("abs", ops.abs, np.abs, away(rn(2, 3), 0)),
    case("abs", lambda x: abs(x), np.abs, away(rn(5), 0), note="operator"),
    case("sin", ops.sin, np.sin, rn(2, 3) * 3),
    case("cos", ops.cos, np.cos, rn(2, 3) * 3),
    case("tanh", ops.tanh, np.tanh, rn(2, 3) * 2),
    case("erf", ops.erf, np_erf, np.array([-5.0, -2.0, -0.7, -0.3, 0.0, 0.2, 0.46875, 0.9,
                                           2.5, 4.0, 4.5, 7.0])),
    case("sigmoid", ops.sigmoid, np_sigmoid, np.array([-40.0, -5.0, -0.3, 0.0, 0.7, 6.0, 40.0])),
    case("relu", ops.relu, lambda x: np.maximum(x, 0), away(rn(3, 4), 0)),
    case("relu6", ops.relu6, lambda x: np.clip(x, 0, 6), away(rn(3, 4) * 5 + 3, 0, 6)),
    case("softplus", ops.softplus, np_softplus, np.array([-50.0, -3.0, 0.0, 0.5, 3.0, 50.0])),
    case("softsign", ops.softsign, lambda x: x / (1 + np.abs(x)), away(rn(3, 4), 0)),
    case("silu", ops.silu, lambda x: x * np_sigmoid(x), rn(3, 4) * 3),
    case("swish", ops.swish, lambda x: x * np_sigmoid(x), rn(3, 4) * 3),
    case("log_sigmoid", ops.log_sigmoid, lambda x: -np_softplus(-x),
         np.array([-40.0, -2.0, 0.0, 1.0, 40.0])),
    case("leaky_relu", ops.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x),
         away(rn(3, 4), 0), note="default"),
    case("leaky_relu", lambda x: ops.leaky_relu(x, negative_slope=1.5),
         lambda x: np.where(x > 0, x, 1.5 * x), away(rn(3, 4), 0), note="slope>1"),
    case("elu", ops.elu, np_elu, away(rn(3, 4), 0)),
    case("elu", lambda x: ops.elu(x, alpha=0.5), lambda x: np_elu(x, 0.5), away(rn(3, 4), 0),
         note="alpha"),
    case("selu", ops.selu, lambda x: SELU_SCALE * np_elu(x, SELU_ALPHA), away(rn(3, 4), 0)),
    case("gelu", ops.gelu, np_gelu_tanh, rn(3, 4) * 2, note="approximate"),
    case("gelu", lambda x: ops.gelu(x, approximate=False),
         lambda x: 0.5 * x * (1 + np_erf(x / math.sqrt(2))), rn(3, 4) * 2, note="exact"),
    case("hard_sigmoid", ops.hard_sigmoid, lambda x: np.clip(x / 6 + 0.5, 0, 1),
         away(rn(3, 4) * 4, -3, 3)),
    case("hard_silu", ops.hard_silu, lambda x: x * np.clip(x / 6 + 0.5, 0, 1),
         away(rn(3, 4) * 4, -3, 3)),
    case("mish", ops.mish, lambda x: x * np.tanh(np_softplus(x)), rn(3, 4) * 3),
    case("clip", lambda x: ops.clip(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5),
         away(rn(4, 5), -0.5, 0.5), note="both-sides"),
    case("where", lambda x, y: ops.where(COND, x, y), lambda x, y: np.where(COND, x, y),
         rn(3, 4), rn(3, 4)),
    case("where", lambda x, y: ops.where(COND_COL, x, y), lambda x, y: np.where(COND_COL, x, y),
         rn(1, 4), rn(3, 1), note="bcast"),
    case("where", lambda x: ops.where(COND, x, 0.0), lambda x: np.where(COND, x, 0.0),
         rn(3, 4), note="scalar-branch"),
    case("cast", lambda x: ops.cast(x, "float64") * 2.0, lambda x: x * 2.0, rn(3),
         dtype="float64"),
    case("expm1", ops.expm1, np.expm1, rn(2, 3)),
    case("expm1", lambda x: ops.expm1(x) * 1e6, lambda x: np.expm1(x) * 1e6,
         np.array([1e-9, -1e-7, 1e-8, 1e-4]), note="tiny"),
    case("log2", ops.log2, np.log2, pos(2, 3)),
    case("log10", ops.log10, np.log10, pos(2, 3)),
    case("reciprocal", ops.reciprocal, np.reciprocal, pos(2, 3)),
    case("rsqrt", ops.rsqrt, lambda x: 1 / np.sqrt(x), pos(2, 3)),
    case("mod", ops.mod, np.mod, *mod_inputs(3, 4)),
    case("mod", ops.mod, np.mod, *[-v for v in mod_inputs(3, 4)], note="negative-divisor"),
    case("select", lambda x, y, d: ops.select(COND_ROWS, [x, y], d),
         lambda x, y, d: np.select(COND_ROWS, [x, y], d), rn(3, 4), rn(3, 4), rn(1, 4)),
    case("select", lambda x: ops.select(COND_ROWS, [x, 2.0 * x]),
         lambda x: np.select(COND_ROWS, [x, 2.0 * x]), rn(3, 4), note="default-0"),
    # -- reductions -----------------------------------------------------------------
    case("sum", ops.sum, np.sum, rn(2, 3, 4), note="all"),
    case("sum", lambda x: ops.sum(x, axis=1), lambda x: np.sum(x, axis=1), rn(2, 3, 4),
         note="axis=1"),
    case("sum", lambda x: ops.sum(x, axis=-1, keepdims=True),
         lambda x: np.sum(x, axis=-1, keepdims=True), rn(2, 3, 4), note="axis=-1,keepdims"),
    case("sum", lambda x: ops.sum(x, axis=(0, -1)), lambda x: np.sum(x, axis=(0, 2)),
         rn(2, 3, 4), note="axis=(0,-1)"),
    case("sum", lambda x: x.sum(axis=[0, 1], keepdims=True),
         lambda x: np.sum(x, axis=(0, 1), keepdims=True), rn(2, 3, 4), note="list-axis"),
    case("mean", ops.mean, np.mean, rn(2, 3, 4), note="all"),
    case("mean", lambda x: ops.mean(x, axis=-2), lambda x: np.mean(x, axis=-2), rn(2, 3, 4),
         note="axis=-2"),
    case("mean", lambda x: ops.mean(x, axis=(0, 2), keepdims=True),
         lambda x: np.mean(x, axis=(0, 2), keepdims=True), rn(2, 3, 4), note="keepdims"),
    case("max", ops.max, np.max, rn(3, 4), note="all"),
    case("max", lambda x: ops.max(x, axis=1), lambda x: np.max(x, axis=1), TIES,
         note="ties,axis=1"),
    case("max", lambda x: ops.max(x, axis=-1, keepdims=True),
         lambda x: np.max(x, axis=-1, keepdims=True), TIES, note="ties,keepdims"),
    case("max", lambda x: ops.max(x, axis=(0, 1)), lambda x: np.max(x, axis=(0, 1)),
         rn(3, 4, 2), note="axis=(0,1)"),
    case("min", lambda x: ops.min(x, axis=0), lambda x: np.min(x, axis=0), -TIES.T,
         note="ties,axis=0"),
    case("min", ops.min, np.min, rn(3, 4), note="all"),
    case("var", ops.var, np.var, rn(3, 4), note="all"),
    case("var", lambda x: ops.var(x, axis=-1, keepdims=True),
         lambda x: np.var(x, axis=-1, keepdims=True), rn(3, 4), note="axis=-1"),
    case("std", lambda x: ops.std(x, axis=0), lambda x: np.std(x, axis=0), rn(5, 3)),
    case("logsumexp", ops.logsumexp, np_logsumexp, rn(3, 4), note="all"),
    case("logsumexp", lambda x: ops.logsumexp(x, axis=-1),
         lambda x: np_logsumexp(x, axis=-1), rn(3, 4) * 30, note="axis=-1,large"),
    case("logsumexp", lambda x: ops.logsumexp(x, axis=0, keepdims=True),
         lambda x: np_logsumexp(x, axis=0, keepdims=True), rn(3, 4), note="keepdims"),
    case("norm", ops.norm, np.linalg.norm, rn(3, 4), note="all"),
    case("norm", lambda x: ops.norm(x, axis=-1, keepdims=True),
         lambda x: np.linalg.norm(x, axis=-1, keepdims=True), rn(3, 4), note="axis=-1"),
    case("amax", lambda x: ops.amax(x, axis=0), lambda x: np.amax(x, axis=0), rn(3, 4)),
    case("amin", lambda x: ops.amin(x, axis=-1, keepdims=True),
         lambda x: np.amin(x, axis=-1, keepdims=True), rn(3, 4)),
    case("prod", ops.prod, np.prod, pos(2, 3), note="all"),
    case("prod", lambda x: ops.prod(x, axis=1), lambda x: np.prod(x, axis=1), rn(3, 4, 2),
         note="axis=1"),
    case("prod", lambda x: ops.prod(x, axis=(0, 2), keepdims=True),
         lambda x: np.prod(x, axis=(0, 2), keepdims=True), rn(3, 4, 2), note="keepdims"),
    case("prod", lambda x: ops.prod(x, axis=-1), lambda x: np.prod(x, axis=-1), HAS_ZERO,
         note="zeros"),
    case("cumsum", ops.cumsum, np.cumsum, rn(2, 3), note="flat"),
    case("cumsum", lambda x: ops.cumsum(x, axis=1), lambda x: np.cumsum(x, axis=1),
         rn(2, 3, 4), note="axis=1"),
    case("cumprod", lambda x: ops.cumprod(x, axis=-1), lambda x: np.cumprod(x, axis=-1),
         rn(3, 4), note="axis=-1"),
    case("cumprod", lambda x: ops.cumprod(x, axis=0), lambda x: np.cumprod(x, axis=0),
         HAS_ZERO.T, note="zeros"),
    case("cumprod", ops.cumprod, np.cumprod, HAS_ZERO, note="flat,zeros"),
    case("average", ops.average, np.average, rn(3, 4), note="unweighted"),
    case("average", lambda x, w: ops.average(x, axis=1, weights=w),
         lambda x, w: np.average(x, axis=1, weights=w), rn(3, 4), pos(4), note="1d-weights"),
    case("average", lambda x, w: ops.average(x, axis=0, weights=w),
         lambda x, w: np.average(x, axis=0, weights=w), rn(3, 4), pos(3, 4),
         note="full-weights"),
    # -- shape ----------------------------------------------------------------------
    case("reshape", lambda x: ops.reshape(x, (4, -1)), lambda x: x.reshape(4, -1), rn(2, 3, 4)),
    case("reshape", lambda x: x.reshape(6, 4), lambda x: x.reshape(6, 4), rn(2, 3, 4),
         note="method"),
    case("transpose", ops.transpose, np.transpose, rn(2, 3, 4), note="reverse"),
    case("transpose", lambda x: ops.transpose(x, (1, 0, 2)),
         lambda x: np.transpose(x, (1, 0, 2)), rn(2, 3, 4), note="axes"),
    case("transpose", lambda x: ops.transpose(x, (0, -1, 1)),
         lambda x: np.transpose(x, (0, 2, 1)), rn(2, 3, 4), note="negative-axes"),
    case("transpose", lambda x: x.T, lambda x: x.T, rn(2, 3), note="T"),
    case("swapaxes", lambda x: ops.swapaxes(x, 0, -1), lambda x: np.swapaxes(x, 0, -1),
         rn(2, 3, 4)),
    case("moveaxis", lambda x: ops.moveaxis(x, 0, -1), lambda x: np.moveaxis(x, 0, -1),
         rn(2, 3, 4)),
    case("moveaxis", lambda x: ops.moveaxis(x, -1, 1), lambda x: np.moveaxis(x, -1, 1),
         rn(2, 3, 4), note="negative-source"),
    case("expand_dims", lambda x: ops.expand_dims(x, -1), lambda x: x[..., None], rn(2, 3)),
    case("expand_dims", lambda x: ops.expand_dims(x, 0), lambda x: x[None], rn(2, 3),
         note="axis=0"),
    case("squeeze", lambda x: ops.squeeze(x, axis=1), lambda x: np.squeeze(x, 1),
         rn(2, 1, 3, 1)),
    case("squeeze", ops.squeeze, np.squeeze, rn(2, 1, 3, 1), note="all"),
    case("broadcast_to", lambda x: ops.broadcast_to(x, (2, 3, 4)),
         lambda x: np.broadcast_to(x, (2, 3, 4)), rn(3, 1)),
    case("getitem", lambda x: x[1:, ::2], lambda x: x[1:, ::2], rn(4, 5), note="slices"),
    case("getitem", lambda x: x[-1], lambda x: x[-1], rn(4, 5), note="negative-int"),
    case("getitem", lambda x: x[..., None, 1], lambda x: x[..., None, 1], rn(2, 3, 4),
         note="ellipsis,newaxis"),
    case("getitem", lambda x: x[[0, 2, 0, 0]], lambda x: x[[0, 2, 0, 0]], rn(3, 4),
         note="fancy-duplicates"),
    case("getitem", lambda x: x[np.array([[1, 1], [0, 2]]), 1:],
         lambda x: x[np.array([[1, 1], [0, 2]]), 1:], rn(3, 4), note="fancy2d+slice"),
    case("getitem", lambda x: x[np.array([0, 0, 1]), np.array([2, 2, 3])],
         lambda x: x[np.array([0, 0, 1]), np.array([2, 2, 3])], rn(3, 4),
         note="fancy-pairs-duplicates"),
    case("getitem", lambda x: x[COND], lambda x: x[COND], rn(3, 4), note="bool-mask"),
    case("getitem", lambda x: ops.getitem(x, Tensor(np.array([2, 2]))),
         lambda x: x[[2, 2]], rn(3, 4), note="tensor-index"),
    case("concatenate", lambda x, y: ops.concatenate([x, y], axis=0),
         lambda x, y: np.concatenate([x, y], 0), rn(2, 3), rn(4, 3), note="axis=0"),
    case("concatenate", lambda x, y, z: ops.concatenate([x, y, z], axis=-1),
         lambda x, y, z: np.concatenate([x, y, z], -1), rn(2, 1), rn(2, 3), rn(2, 2),
         note="axis=-1"),
    case("concatenate", lambda x: ops.concatenate([x, x], axis=1),
         lambda x: np.concatenate([x, x], 1), rn(2, 3), note="same-twice"),
    case("stack", lambda x, y: ops.stack([x, y]), lambda x, y: np.stack([x, y]),
         rn(2, 3), rn(2, 3), note="axis=0"),
    case("stack", lambda x, y: ops.stack([x, y], axis=-1), lambda x, y: np.stack([x, y], -1),
         rn(2, 3), rn(2, 3), note="axis=-1"),
    case("split", lambda x: ops.stack([p * (i + 1.0) for i, p in enumerate(ops.split(x, 3))]),
         lambda x: np.stack([p * (i + 1.0) for i, p in enumerate(np.split(x, 3))]),
         rn(6, 2), note="sections"),
    case("split", lambda x: ops.concatenate(
        [p * (i + 1.0) for i, p in enumerate(ops.split(x, [1, 3], axis=-1))], axis=-1),
         lambda x: np.concatenate(
        [p * (i + 1.0) for i, p in enumerate(np.split(x, [1, 3], axis=-1))], axis=-1),
         rn(2, 5), note="indices,axis=-1"),
    case("tile", lambda x: ops.tile(x, (2, 3)), lambda x: np.tile(x, (2, 3)), rn(2, 3)),
    case("tile", lambda x: ops.tile(x, 2), lambda x: np.tile(x, 2), rn(2, 3), note="int"),
    case("tile", lambda x: ops.tile(x, (2, 1, 3)), lambda x: np.tile(x, (2, 1, 3)), rn(2, 3),
         note="more-reps-than-dims"),
    case("repeat", lambda x: ops.repeat(x, 2), lambda x: np.repeat(x, 2), rn(2, 3),
         note="flat"),
    case("repeat", lambda x: ops.repeat(x, [1, 0, 3], axis=1),
         lambda x: np.repeat(x, [1, 0, 3], axis=1), rn(2, 3), note="per-element"),
    case("pad", lambda x: ops.pad(x, [(1, 2), (0, 1)]), lambda x: np.pad(x, [(1, 2), (0, 1)]),
         rn(2, 3)),
    case("pad", lambda x: ops.pad(x, [(0, 0), (2, 0)], constant_values=1.5),
         lambda x: np.pad(x, [(0, 0), (2, 0)], constant_values=1.5), rn(2, 3), note="value"),
    case("take", lambda x: ops.take(x, [2, 0, 2, 2], axis=0),
         lambda x: np.take(x, [2, 0, 2, 2], axis=0), rn(3, 4), note="repeated,axis=0"),
    case("take", lambda x: ops.take(x, np.array([[1, 1], [3, 0]]), axis=-1),
         lambda x: np.take(x, np.array([[1, 1], [3, 0]]), axis=-1), rn(2, 3, 4),
         note="2d-indices,axis=-1"),
    case("take", lambda x: ops.take(x, np.array([[0, 1], [1, 1]]), axis=1),
         lambda x: np.take(x, np.array([[0, 1], [1, 1]]), axis=1), rn(2, 3, 4),
         note="axis=1"),
    case("take", lambda x: ops.take(x, [5, 5, -1]), lambda x: np.take(x, [5, 5, -1]),
         rn(2, 3), note="flat,negative"),
    case("take", lambda x: ops.take(x, 1, axis=0), lambda x: np.take(x, 1, axis=0), rn(3, 2),
         note="scalar-index"),
    case("flip", ops.flip, np.flip, rn(2, 3), note="all"),
    case("flip", lambda x: ops.flip(x, axis=-1), lambda x: np.flip(x, -1), rn(2, 3, 4),
         note="axis=-1"),
    case("roll", lambda x: ops.roll(x, 2), lambda x: np.roll(x, 2), rn(3, 4), note="flat"),
    case("roll", lambda x: ops.roll(x, (1, -5), axis=(0, 1)),
         lambda x: np.roll(x, (1, -5), axis=(0, 1)), rn(3, 4), note="axes"),
    case("unstack", lambda x: ops.stack([u * (i + 1.0) for i, u in
                                         enumerate(ops.unstack(x, axis=1))]),
         lambda x: np.stack([x[:, i] * (i + 1.0) for i in range(x.shape[1])]), rn(2, 3)),
    case("meshgrid", lambda x, y: ops.stack(ops.meshgrid(x, y)),
         lambda x, y: np.stack(np.meshgrid(x, y)), rn(3), rn(4), note="xy"),
    case("meshgrid", lambda x, y, z: ops.stack(ops.meshgrid(x, y, z, indexing="ij")),
         lambda x, y, z: np.stack(np.meshgrid(x, y, z, indexing="ij")), rn(3), rn(2), rn(4),
         note="ij"),
    case("take_along_axis",
         lambda x: ops.take_along_axis(x, np.array([[0, 0, 2], [3, 1, 1]]), axis=1),
         lambda x: np.take_along_axis(x, np.array([[0, 0, 2], [3, 1, 1]]), axis=1),
         rn(2, 4), note="duplicates"),
    case("take_along_axis", lambda x: ops.take_along_axis(x, np.array([[2], [0]]), axis=0),
         lambda x: np.take_along_axis(x, np.array([[2], [0]]), axis=0), rn(3, 1),
         note="axis=0"),
    case("slice", lambda x: ops.slice(x, (1, 0, 2), (2, -1, 2)),
         lambda x: x[1:3, :, 2:4], rn(3, 2, 5)),
    case("sort", ops.sort, np.sort, rn(3, 4), note="axis=-1"),
    case("sort", lambda x: ops.sort(x, axis=0), lambda x: np.sort(x, axis=0), rn(3, 4),
         note="axis=0"),
    case("top_k", lambda x: ops.top_k(x, 2)[0], lambda x: -np.sort(-x)[..., :2], rn(3, 5)),
    # -- linear algebra --------------------------------------------------------------
    case("matmul", ops.matmul, np.matmul, rn(3, 4), rn(4, 5), note="2d"),
    case("matmul", ops.matmul, np.matmul, rn(2, 3, 4), rn(4, 5), note="batch@2d"),
    case("matmul", ops.matmul, np.matmul, rn(3, 4), rn(2, 4, 5), note="2d@batch"),
    case("matmul", ops.matmul, np.matmul, rn(2, 3, 4), rn(2, 4, 5), note="batch@batch"),
    case("matmul", ops.matmul, np.matmul, rn(2, 1, 3, 4), rn(3, 4, 2), note="bcast-batch"),
    case("matmul", ops.matmul, np.matmul, rn(4), rn(4, 5), note="vec@mat"),
    case("matmul", ops.matmul, np.matmul, rn(3, 4), rn(4), note="mat@vec"),
    case("matmul", ops.matmul, np.matmul, rn(4), rn(4), note="vec@vec"),
    case("matmul", ops.matmul, np.matmul, rn(4), rn(2, 4, 3), note="vec@batch"),
    case("matmul", lambda x, y: x @ y, np.matmul, rn(3, 4), rn(4, 2), note="operator"),
    case("dot", ops.dot, np.dot, rn(3, 4), rn(4, 2)),
    case("einsum", lambda x, y: ops.einsum("ij,jk->ik", x, y),
         lambda x, y: np.einsum("ij,jk->ik", x, y), rn(3, 4), rn(4, 2), note="matmul"),
    case("einsum", lambda x, y: ops.einsum("bij,bkj->bik", x, y),
         lambda x, y: np.einsum("bij,bkj->bik", x, y), rn(2, 3, 4), rn(2, 5, 4), note="batch"),
    case("einsum", lambda x, y: ops.einsum("...ij,jk", x, y),
         lambda x, y: np.einsum("...ij,jk", x, y), rn(2, 3, 4), rn(4, 2),
         note="ellipsis,implicit"),
    case("einsum", lambda x: ops.einsum("ij->i", x), lambda x: np.einsum("ij->i", x),
         rn(3, 4), note="sum"),
    case("einsum", lambda x: ops.einsum("iij->ji", x), lambda x: np.einsum("iij->ji", x),
         rn(3, 3, 2), note="diagonal"),
    case("einsum", lambda x, y, z: ops.einsum("i,ij,j->", x, y, z),
         lambda x, y, z: np.einsum("i,ij,j->", x, y, z), rn(3), rn(3, 4), rn(4),
         note="three-operands"),
    case("tensordot", lambda x, y: ops.tensordot(x, y, axes=1),
         lambda x, y: np.tensordot(x, y, axes=1), rn(2, 3), rn(3, 4), note="axes=1"),
    case("tensordot", lambda x, y: ops.tensordot(x, y, axes=([1, 0], [0, 2])),
         lambda x, y: np.tensordot(x, y, axes=([1, 0], [0, 2])), rn(2, 3, 4), rn(3, 5, 2),
         note="axes-lists"),
    case("outer", ops.outer, np.outer, rn(3), rn(2, 2)),
    case("tril", ops.tril, np.tril, rn(3, 4)),
    case("tril", lambda x: ops.tril(x, k=-1), lambda x: np.tril(x, k=-1), rn(2, 3, 3),
         note="batch,k=-1"),
    case("triu", lambda x: ops.triu(x, k=1), lambda x: np.triu(x, k=1), rn(4, 3)),
    case("diag", ops.diag, np.diag, rn(3, 4), note="extract"),
    case("diag", lambda x: ops.diag(x, k=-1), lambda x: np.diag(x, k=-1), rn(3), note="build"),
    # -- fused neural-network primitives -----------------------------------------------
    case("dense", ops.dense, lambda x, k, b: x @ k + b, rn(5, 3), rn(3, 4), rn(4)),
    case("dense", ops.dense, np.matmul, rn(5, 3), rn(3, 4), note="no-bias"),
    case("dense", ops.dense, lambda x, k, b: x @ k + b, rn(2, 5, 3), rn(3, 4), rn(4),
         note="3d-input"),
    case("dense", lambda x, k, b: ops.dense(x, k, b, activation="relu"),
         lambda x, k, b: np.maximum(x @ k + b, 0),
         np.array([[1.0, -2.0], [0.5, 1.5], [-1.0, -0.3]]),
         np.array([[1.0, -1.0, 0.2], [0.3, 0.8, -0.5]]), np.array([0.1, -0.2, 0.15]),
         note="relu"),
    case("softmax", ops.softmax, np_softmax, rn(3, 4) * 3, note="axis=-1"),
    case("softmax", lambda x: ops.softmax(x, axis=0), lambda x: np_softmax(x, 0), rn(3, 4),
         note="axis=0"),
    case("log_softmax", ops.log_softmax, np_log_softmax, rn(3, 4) * 3),
    case("log_softmax", lambda x: ops.log_softmax(x, axis=1),
         lambda x: np_log_softmax(x, 1), rn(2, 3, 4), note="axis=1"),
    case("softmax_cross_entropy", ops.softmax_cross_entropy,
         lambda z, y: -np.sum(y * np_log_softmax(z), -1), rn(4, 5), labels_dist(4, 5),
         note="dense"),
    case("softmax_cross_entropy",
         lambda z, y: ops.softmax_cross_entropy(z, y, axis=0),
         lambda z, y: -np.sum(y * np_log_softmax(z, 0), 0), rn(5, 3), labels_dist(3, 5).T,
         note="dense,axis=0"),
    case("softmax_cross_entropy", lambda z, y: ops.softmax_cross_entropy(z, y, sparse=True),
         lambda z, y: -np.take_along_axis(np_log_softmax(z), y[:, None], -1)[:, 0],
         rn(4, 5), np.array([0, 4, 4, 2]), wrt=[0], note="sparse"),
    case("softmax_cross_entropy", lambda z, y: ops.softmax_cross_entropy(z, y, sparse=True),
         lambda z, y: -np.take_along_axis(np_log_softmax(z), y[..., None], -1)[..., 0],
         rn(2, 3, 5), np.array([[0, 1, 4], [3, 3, 0]]), wrt=[0], note="sparse,3d"),
    case("sigmoid_cross_entropy", ops.sigmoid_cross_entropy,
         lambda z, y: -(y * np.log(np_sigmoid(z)) + (1 - y) * np.log(1 - np_sigmoid(z))),
         rn(3, 4) * 3, RNG.uniform(0, 1, (3, 4))),
    case("dropout", lambda x: ops.dropout(x, 0.4, rng=np.random.default_rng(7)),
         lambda x: x * dropout_mask(x.shape, 0.4, 7), rn(5, 6)),
    case("binary_crossentropy", ops.binary_crossentropy, np_bce,
         RNG.uniform(0, 1, (3, 4)), RNG.uniform(0.05, 0.95, (3, 4)), note="probabilities"),
    case("binary_crossentropy",
         lambda t, z: ops.binary_crossentropy(t, z, from_logits=True),
         lambda t, z: np_bce(t, np_sigmoid(z)), RNG.uniform(0, 1, (3, 4)), rn(3, 4) * 3,
         note="from_logits"),
    case("binary_crossentropy", lambda t, z: ops.binary_crossentropy(t, ops.sigmoid(z)),
         lambda t, z: np_bce(t, np_sigmoid(z)), RNG.uniform(0, 1, (3, 4)), rn(3, 4) * 3,
         note="sigmoid-output"),
    case("categorical_crossentropy", ops.categorical_crossentropy,
         lambda t, p: -np.sum(t * np.log(p / p.sum(-1, keepdims=True)), -1),
         labels_dist(4, 5), RNG.uniform(0.1, 1.0, (4, 5)), note="probabilities"),
    case("categorical_crossentropy",
         lambda t, z: ops.categorical_crossentropy(t, z, from_logits=True, axis=0),
         lambda t, z: -np.sum(t * np_log_softmax(z, 0), 0), labels_dist(3, 5).T, rn(5, 3),
         note="from_logits,axis=0"),
    case("sparse_categorical_crossentropy", ops.sparse_categorical_crossentropy,
         lambda t, p: -np.log(np.take_along_axis(p / p.sum(-1, keepdims=True), t[:, None],
                                                 -1)[:, 0]),
         np.array([0, 4, 4, 2]), labels_dist(4, 5), wrt=[1], note="probabilities"),
    case("sparse_categorical_crossentropy",
         lambda t, z: ops.sparse_categorical_crossentropy(t, z, from_logits=True),
         lambda t, z: -np.take_along_axis(np_log_softmax(z), t, -1)[..., 0],
         np.array([[[1], [0]], [[3], [3]]]), rn(2, 2, 4), wrt=[1],
         note="from_logits,trailing-1"),
    case("normalize", ops.normalize, np_normalize, rn(3, 4), note="l2"),
    case("normalize", lambda x: ops.normalize(x, axis=0, order=1),
         lambda x: np_normalize(x, axis=0, order=1), away(rn(3, 4), 0), note="l1,axis=0"),
    case("normalize", lambda x: ops.normalize(x, order=3),
         lambda x: np_normalize(x, order=3), away(rn(3, 4), 0), note="l3"),
    # -- convolution and pooling (backend/conv_ops.py; tests/sdk/backend/test_conv.py) --
    case("conv", ops.conv, np_conv1d, rn(2, 6, 3), rn(3, 3, 4)),
    case("conv_transpose", ops.conv_transpose, np_conv_transpose1d, rn(2, 4, 3), rn(3, 2, 3)),
    case("depthwise_conv", ops.depthwise_conv, np_depthwise_conv1d, rn(2, 6, 3), rn(3, 3, 2)),
    case("separable_conv", ops.separable_conv,
         lambda x, k, p: np_depthwise_conv1d(x, k) @ p[0], rn(2, 6, 3), rn(3, 3, 2),
         rn(1, 6, 4)),
    case("max_pool", lambda x: ops.max_pool(x, 2), lambda x: x.reshape(2, 3, 2, 3).max(2),
         rn(2, 6, 3)),
    case("average_pool", lambda x: ops.average_pool(x, 2),
         lambda x: x.reshape(2, 3, 2, 3).mean(2), rn(2, 6, 3)),
]


def _as_float32(a):
    a = np.asarray(a)
    return a.astype(np.float32) if np.issubdtype(a.dtype, np.floating) else a


@pytest.mark.parametrize("name,fn,ref,inputs,wrt,dtype", CASES)
def test_forward_matches_numpy(name, fn, ref, inputs, wrt, dtype):
    arrays = [_as_float32(a) for a in inputs]
    out = fn(*[Tensor(a) for a in arrays])
    assert isinstance(out, Tensor)
    expected = ref(*[a.astype(np.float64) if a.dtype == np.float32 else a for a in arrays])
    assert out.shape == np.shape(expected)
    assert out.dtype == dtype
    np.testing.assert_allclose(out.data, expected, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("name,fn,ref,inputs,wrt,dtype", CASES)
def test_float32_gradients_keep_dtype_and_shape(name, fn, ref, inputs, wrt, dtype):
    variables = [Variable(_as_float32(a), dtype=_as_float32(a).dtype) for a in inputs]
    out = fn(*variables)
    floats = [v for v in variables if v.dtype == "float32"]
    for v, g in zip(floats, gradients(ops.sum(out), floats)):
        assert g.dtype == np.float32
        assert g.shape == v.shape
        assert np.all(np.isfinite(g))


@pytest.mark.parametrize("name,fn,ref,inputs,wrt,dtype", CASES)
def test_gradient_matches_central_differences(name, fn, ref, inputs, wrt, dtype):
    assert check_gradients(fn, list(inputs), wrt=wrt) <= 1e-6


# -- ops without a gradient: forward only, and they never join the graph --------------
X = RNG.standard_normal((3, 4)).astype(np.float32)
Y = np.where(COND, X, RNG.standard_normal((3, 4)).astype(np.float32))
NO_GRAD_CASES = [
    # As Keras: int32 indices, of the flattened tensor by default.
    ("argmax", lambda x: ops.argmax(x), lambda x: np.argmax(x).astype(np.int32)),
    ("argmax", lambda x: ops.argmax(x, axis=0), lambda x: np.argmax(x, 0).astype(np.int32)),
    ("argmax", lambda x: ops.argmax(x, axis=-1, keepdims=True),
     lambda x: np.argmax(x, -1, keepdims=True).astype(np.int32)),
    ("argmin", lambda x: ops.argmin(x), lambda x: np.argmin(x).astype(np.int32)),
    ("equal", lambda x: ops.equal(x, Y), lambda x: x == Y),
    ("not_equal", lambda x: ops.not_equal(x, Y), lambda x: x != Y),
    ("greater", lambda x: ops.greater(x, Y), lambda x: x > Y),
    ("greater_equal", lambda x: ops.greater_equal(x, Y), lambda x: x >= Y),
    ("less", lambda x: ops.less(x, Y), lambda x: x < Y),
    ("less_equal", lambda x: ops.less_equal(x, Y), lambda x: x <= Y),
    ("sign", ops.sign, np.sign),
    ("one_hot", lambda x: ops.one_hot(np.array([0, 2, 1]), 4),
     lambda x: np.eye(4, dtype=np.float32)[[0, 2, 1]]),
    ("zeros", lambda x: ops.zeros((2, 3)), lambda x: np.zeros((2, 3), np.float32)),
    ("ones", lambda x: ops.ones((2, 3)), lambda x: np.ones((2, 3), np.float32)),
    ("zeros_like", ops.zeros_like, np.zeros_like),
    ("ones_like", ops.ones_like, np.ones_like),
    ("shape", lambda x: Tensor(np.array(ops.shape(x))), lambda x: np.array(x.shape)),
    ("convert_to_tensor", lambda x: ops.convert_to_tensor(x.data.astype(np.float64)),
     lambda x: x),
    ("convert_to_numpy", lambda x: Tensor(ops.convert_to_numpy(x)), lambda x: x),
    ("stop_gradient", ops.stop_gradient, lambda x: x),
    ("logical_and", lambda x: ops.logical_and(ops.greater(x, 0), COND),
     lambda x: np.logical_and(x > 0, COND)),
    ("logical_or", lambda x: ops.logical_or(ops.greater(x, 0), COND),
     lambda x: np.logical_or(x > 0, COND)),
    ("logical_xor", lambda x: ops.logical_xor(ops.greater(x, 0), COND),
     lambda x: np.logical_xor(x > 0, COND)),
    ("logical_not", lambda x: ops.logical_not(ops.greater(x, 0)), lambda x: ~(x > 0)),
    ("isnan", lambda x: ops.isnan(SPECIAL), lambda x: np.isnan(SPECIAL)),
    ("isinf", lambda x: ops.isinf(SPECIAL), lambda x: np.isinf(SPECIAL)),
    ("isfinite", lambda x: ops.isfinite(SPECIAL), lambda x: np.isfinite(SPECIAL)),
    ("round", ops.round, np.round),
    ("round", lambda x: ops.round(x, 1), lambda x: np.round(x, 1)),
    ("floor", ops.floor, np.floor),
    ("floor", lambda x: ops.floor(np.array([3, -2])), lambda x: np.array([3.0, -2.0], "f4")),
    ("ceil", ops.ceil, np.ceil),
    ("floor_divide", lambda x: ops.floor_divide(x, 0.7), lambda x: np.floor_divide(x, 0.7)),
    ("any", lambda x: ops.any(ops.greater(x, 1.0), axis=1), lambda x: np.any(x > 1.0, 1)),
    ("all", lambda x: ops.all(ops.greater(x, -1.0)), lambda x: np.all(x > -1.0)),
    ("count_nonzero", lambda x: ops.count_nonzero(ops.greater(x, 0), axis=0),
     lambda x: np.count_nonzero(x > 0, axis=0).astype(np.int32)),
    ("nonzero", lambda x: ops.stack(list(ops.nonzero(ops.greater(x, 0)))),
     lambda x: np.stack(np.nonzero(x > 0))),
    ("argsort", ops.argsort, lambda x: np.argsort(x, kind="stable").astype(np.int32)),
    ("argsort", lambda x: ops.argsort(x, axis=0),
     lambda x: np.argsort(x, axis=0, kind="stable").astype(np.int32)),
    ("top_k", lambda x: ops.top_k(x, 3)[1],
     lambda x: np.argsort(-x, kind="stable")[:, :3].astype(np.int32)),
    ("arange", lambda x: ops.arange(2, 11, 3), lambda x: np.arange(2, 11, 3, dtype=np.int32)),
    ("arange", lambda x: ops.arange(4.0), lambda x: np.arange(4, dtype=np.float32)),
    ("linspace", lambda x: ops.linspace(0, 1, 5), lambda x: np.linspace(0, 1, 5, dtype="f4")),
    ("eye", lambda x: ops.eye(3, 4, k=1), lambda x: np.eye(3, 4, 1, dtype=np.float32)),
    ("identity", lambda x: ops.identity(3), lambda x: np.eye(3, dtype=np.float32)),
    ("full", lambda x: ops.full((2, 3), 1.5), lambda x: np.full((2, 3), 1.5, np.float32)),
    ("full_like", lambda x: ops.full_like(x, 2), lambda x: np.full_like(x, 2)),
]


@pytest.mark.parametrize("name,fn,ref", NO_GRAD_CASES, ids=[c[0] for c in NO_GRAD_CASES])
def test_ops_without_gradient(name, fn, ref):
    x = Variable(X)
    out = fn(x)
    expected = ref(X)
    assert out.dtype == np.asarray(expected).dtype.name
    np.testing.assert_array_equal(out.data, expected)
    assert not out.requires_grad


def test_the_tables_cover_every_public_op():
    covered = {p.values[0] for p in CASES} | {c[0] for c in NO_GRAD_CASES}
    # Ops checked in their own tables (test_ops_nn.py, test_ops_numpy*.py, ...).
    elsewhere = ops._TESTED_IN_OPS_NN
    public = set(ops.__all__) - {"Tensor", "Variable"}
    assert public - covered - elsewhere == set()


def test_star_import_brings_every_keras_op():
    namespace = {}
    exec("from lamina.ops import *", namespace)  # noqa: S102 - the statement under test
    for name in ("absolute", "arctan2", "scan", "ctc_loss", "svd", "fft", "segment_sum"):
        assert name in namespace, name


def test_new_ops_record_graph_nodes_on_keras_tensors():
    import lamina as keras

    a = keras.Input(shape=(5,))
    values, indices = ops.top_k(ops.cumsum(a, axis=-1), 2)
    logp = ops.einsum("bi,ij->bj", ops.normalize(a), np.eye(5, 3, dtype="float32"))
    model = keras.Model(a, [values, indices, logp, ops.conv(ops.expand_dims(a, -1),
                                                            np.ones((2, 1, 1), "float32"))])
    x = RNG.standard_normal((4, 5)).astype(np.float32)
    got = model.predict(x, verbose=0)
    np.testing.assert_allclose(got[0], -np.sort(-np.cumsum(x, -1))[:, :2], rtol=1e-6)
    np.testing.assert_array_equal(got[1], np.argsort(-np.cumsum(x, -1), kind="stable")[:, :2])
    normalized = x / np.linalg.norm(x, axis=-1, keepdims=True)
    np.testing.assert_allclose(got[2], normalized[:, :3], rtol=1e-6)
    np.testing.assert_allclose(got[3][..., 0], x[:, :-1] + x[:, 1:], rtol=1e-6)


def test_cumprod_gradient_is_exact_with_zeros():
    x = Variable(np.array([2.0, 0.0, 3.0, 0.0, 5.0]), dtype="float64")
    (g,) = gradients(ops.sum(ops.cumprod(x)), [x])
    # d/dx_i sum_j prod_{k<=j} x_k, by hand: only prefixes through the first zero survive.
    np.testing.assert_allclose(g, [1.0, 2.0 + 6.0, 0.0, 0.0, 0.0])
