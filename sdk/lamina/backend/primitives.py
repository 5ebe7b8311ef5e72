"""The primitive set: each op's forward and its vector-Jacobian product, side by side.

Elementwise: Add Subtract Multiply Divide Power Maximum Minimum Negative Exp Log
Log1p Sqrt Sin Cos Tanh Sigmoid Relu Abs Erf Softplus Clip Where Cast
Reductions: Sum Max
Shape: Reshape Transpose BroadcastTo GetItem Concatenate Pad Take ScatterAdd
Linear algebra: MatMul
(Fused neural-network primitives live in ``nn.py``.)

Backward methods may return gradients with broadcast shapes: the walk in
``autodiff.gradients`` reduces them to each input's shape.
"""

from __future__ import annotations

import math

import numpy as np

from lamina.backend.autodiff import Function
from lamina.backend.parallel import dot


# -- elementwise binary ------------------------------------------------------------
class Add(Function):
    def forward(self, a, b):
        return np.add(a, b)

    def backward(self, g):
        return g, g


class Subtract(Function):
    def forward(self, a, b):
        return np.subtract(a, b)

    def backward(self, g):
        return g, (-g if self.needs[1] else None)


class Multiply(Function):
    __slots__ = ("a", "b")

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.multiply(a, b)

    def backward(self, g):
        return (g * self.b if self.needs[0] else None, g * self.a if self.needs[1] else None)


class Divide(Function):
    __slots__ = ("a", "b")

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.divide(a, b)

    def backward(self, g):
        ga = g / self.b if self.needs[0] else None
        gb = -g * self.a / np.square(self.b) if self.needs[1] else None
        return ga, gb


class Power(Function):
    __slots__ = ("a", "b", "out")

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = np.power(a, b)
        return self.out

    def backward(self, g):
        # ``self.b - 1`` keeps a Python exponent a Python number, so a float32 base keeps
        # a float32 gradient (np.subtract would make it a float64 scalar).
        ga = g * self.b * np.power(self.a, self.b - 1) if self.needs[0] else None
        gb = None
        if self.needs[1]:
            safe = np.where(self.a > 0, self.a, 1)
            gb = g * self.out * np.log(safe)
        return ga, gb


class Maximum(Function):
    __slots__ = ("mask",)

    def forward(self, a, b):
        self.mask = np.greater_equal(a, b)
        return np.maximum(a, b)

    def backward(self, g):
        return (g * self.mask if self.needs[0] else None,
                g * ~self.mask if self.needs[1] else None)


class Minimum(Function):
    __slots__ = ("mask",)

    def forward(self, a, b):
        self.mask = np.less_equal(a, b)
        return np.minimum(a, b)

    def backward(self, g):
        return (g * self.mask if self.needs[0] else None,
                g * ~self.mask if self.needs[1] else None)


# -- elementwise unary -------------------------------------------------------------
class Negative(Function):
    def forward(self, a):
        return np.negative(a)

    def backward(self, g):
        return (-g,)


class Exp(Function):
    __slots__ = ("out",)

    def forward(self, a):
        self.out = np.exp(a)
        return self.out

    def backward(self, g):
        return (g * self.out,)


class Log(Function):
    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, g):
        return (g / self.a,)


class Log1p(Function):
    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        return np.log1p(a)

    def backward(self, g):
        return (g / (1 + self.a),)


class Sqrt(Function):
    __slots__ = ("out",)

    def forward(self, a):
        self.out = np.sqrt(a)
        return self.out

    def backward(self, g):
        return (g / (2 * self.out),)


class Sin(Function):
    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        return np.sin(a)

    def backward(self, g):
        return (g * np.cos(self.a),)


class Cos(Function):
    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        return np.cos(a)

    def backward(self, g):
        return (-g * np.sin(self.a),)


class Tanh(Function):
    __slots__ = ("out",)

    def forward(self, a):
        self.out = np.tanh(a)
        return self.out

    def backward(self, g):
        return (g * (1 - np.square(self.out)),)


def stable_sigmoid(a: np.ndarray) -> np.ndarray:
    """Sigmoid without overflow: exp of a non-positive number only."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(np.result_type(a), copy=False)


class Sigmoid(Function):
    __slots__ = ("out",)

    def forward(self, a):
        self.out = stable_sigmoid(a)
        return self.out

    def backward(self, g):
        return (g * self.out * (1 - self.out),)


class Relu(Function):
    __slots__ = ("out",)

    def forward(self, a):
        self.out = np.maximum(a, 0)
        return self.out

    def backward(self, g):
        return (np.multiply(g, self.out > 0),)


class Abs(Function):
    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        return np.abs(a)

    def backward(self, g):
        return (g * np.sign(self.a),)


# W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp.
# 23 (1969): three rational approximations (erf on |x| <= 0.46875, erfc on (0.46875, 4],
# erfc on (4, inf)), vectorised, float64, max error ~1e-16 (checked against math.erf).
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
          2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
          2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
          1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
          3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
          1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
          6.05183413124413191e-2, 2.33520497626869185e-3)
_SQRT_1_PI = 0.56418958354775628695


def _erfc_tail(y):
    """erfc(y) for y > 0.46875 (float64), with exp(-y*y) split to keep its accuracy."""
    out = np.empty_like(y)
    mid = y <= 4.0
    ym = y[mid]
    num, den = _ERF_C[8] * ym, ym
    for c, d in zip(_ERF_C[:7], _ERF_D[:7]):
        num, den = (num + c) * ym, (den + d) * ym
    out[mid] = (num + _ERF_C[7]) / (den + _ERF_D[7])
    # erfc underflows to 0 beyond ~26.6; clamping keeps inf/huge inputs free of nan.
    yt = np.minimum(y[~mid], 30.0)
    z = 1.0 / (yt * yt)
    num, den = _ERF_P[5] * z, z
    for p, q in zip(_ERF_P[:4], _ERF_Q[:4]):
        num, den = (num + p) * z, (den + q) * z
    out[~mid] = (_SQRT_1_PI - z * (num + _ERF_P[4]) / (den + _ERF_Q[4])) / yt
    y = np.minimum(y, 30.0)
    head = np.trunc(y * 16.0) / 16.0
    return out * np.exp(-head * head) * np.exp(-(y - head) * (y + head))


def erf_float64(x) -> np.ndarray:
    """The error function of ``x``, elementwise, in float64 (NaN stays NaN)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.abs(x)
    out = np.empty_like(x)
    small = y <= 0.46875
    xs = x[small]
    z = xs * xs
    num, den = _ERF_A[4] * z, z
    for a, b in zip(_ERF_A[:3], _ERF_B[:3]):
        num, den = (num + a) * z, (den + b) * z
    out[small] = xs * (num + _ERF_A[3]) / (den + _ERF_B[3])
    large = ~small & ~np.isnan(x)
    out[large] = np.copysign((0.5 - _erfc_tail(y[large])) + 0.5, x[large])
    out[np.isnan(x)] = np.nan
    return out


class Erf(Function):
    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        return erf_float64(a).astype(np.result_type(a), copy=False)

    def backward(self, g):
        return (g * (2 / math.sqrt(math.pi)) * np.exp(-np.square(self.a)),)


class Softplus(Function):
    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        return np.logaddexp(a, 0).astype(np.result_type(a), copy=False)

    def backward(self, g):
        return (g * stable_sigmoid(self.a),)


class Clip(Function):
    __slots__ = ("mask",)

    def forward(self, a, lo, hi):
        self.mask = (a >= lo) & (a <= hi)
        return np.clip(a, lo, hi)

    def backward(self, g):
        return g * self.mask, None, None


class Where(Function):
    __slots__ = ("cond",)

    def forward(self, cond, a, b):
        self.cond = np.asarray(cond, dtype=bool)
        return np.where(self.cond, a, b)

    def backward(self, g):
        zero = np.zeros((), dtype=g.dtype)
        return (None,
                np.where(self.cond, g, zero) if self.needs[1] else None,
                np.where(self.cond, zero, g) if self.needs[2] else None)


class Cast(Function):
    __slots__ = ("dtype",)

    def forward(self, a, dtype):
        self.dtype = np.asarray(a).dtype
        return np.asarray(a).astype(dtype)

    def backward(self, g):
        return g.astype(self.dtype), None


# -- reductions --------------------------------------------------------------------
def _normalize_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim for a in axis))


class Sum(Function):
    __slots__ = ("shape", "axes")

    def forward(self, a, axis=None, keepdims=False):
        self.shape = np.shape(a)
        self.axes = None if keepdims else _normalize_axis(axis, np.ndim(a))
        return np.asarray(np.sum(a, axis=axis, keepdims=keepdims))

    def backward(self, g):
        if self.axes is not None:
            g = np.expand_dims(g, self.axes)
        return (np.broadcast_to(g, self.shape),)


class Max(Function):
    __slots__ = ("a", "out", "axes", "keepdims")

    def forward(self, a, axis=None, keepdims=False):
        self.a = a
        self.axes = _normalize_axis(axis, np.ndim(a))
        self.keepdims = keepdims
        self.out = np.max(a, axis=self.axes, keepdims=True)
        return self.out if keepdims else np.squeeze(self.out, axis=self.axes)

    def backward(self, g):
        if not self.keepdims:
            g = np.expand_dims(g, self.axes)
        mask = self.a == self.out
        # Ties share the gradient equally, so the VJP is the true subgradient average.
        count = np.sum(mask, axis=self.axes, keepdims=True, dtype=g.dtype)
        return (mask * (g / count),)


# -- shape -------------------------------------------------------------------------
class Reshape(Function):
    __slots__ = ("shape",)

    def forward(self, a, shape):
        self.shape = np.shape(a)
        return np.reshape(a, shape)

    def backward(self, g):
        return np.reshape(g, self.shape), None


class Transpose(Function):
    __slots__ = ("axes",)

    def forward(self, a, axes=None):
        # Normalised so that argsort inverts the permutation for negative axes too.
        self.axes = None if axes is None else tuple(ax % np.ndim(a) for ax in axes)
        return np.transpose(a, self.axes)

    def backward(self, g):
        if self.axes is None:
            return (np.transpose(g),)
        return (np.transpose(g, np.argsort(self.axes)),)


class BroadcastTo(Function):
    def forward(self, a, shape):
        return np.broadcast_to(a, shape)

    def backward(self, g):
        return g, None


def _is_basic_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, slice, type(None), type(Ellipsis))) for i in items)


class GetItem(Function):
    __slots__ = ("shape", "dtype", "index")

    def forward(self, a, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return a[index]

    def backward(self, g):
        out = np.zeros(self.shape, dtype=g.dtype)
        if _is_basic_index(self.index):
            out[self.index] = g
        else:
            np.add.at(out, self.index, g)
        return out, None


class Concatenate(Function):
    __slots__ = ("axis", "sizes")

    def forward(self, *arrays, axis=-1):
        self.axis = axis
        self.sizes = [np.shape(a)[axis] for a in arrays]
        return np.concatenate(arrays, axis=axis)

    def backward(self, g):
        return tuple(np.split(g, np.cumsum(self.sizes)[:-1], axis=self.axis))


class Pad(Function):
    __slots__ = ("slices",)

    def forward(self, a, pad_width, constant_values=0):
        self.slices = tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, a.shape))
        return np.pad(a, pad_width, constant_values=constant_values)

    def backward(self, g):
        return g[self.slices], None


class Take(Function):
    """Gather along ``axis`` (embedding lookups)."""

    __slots__ = ("shape", "indices", "axis")

    def forward(self, a, indices, axis=0):
        self.shape, self.indices, self.axis = a.shape, indices, axis
        return np.take(a, indices, axis=axis)

    def backward(self, g):
        if self.axis != 0:
            g = np.moveaxis(g, range(self.axis, self.axis + np.ndim(self.indices)),
                            range(np.ndim(self.indices)))
        out = np.zeros((self.shape[self.axis],) + tuple(np.delete(self.shape, self.axis)),
                       dtype=g.dtype)
        flat = np.reshape(self.indices, -1)
        np.add.at(out, flat, g.reshape((flat.size,) + out.shape[1:]))
        if self.axis != 0:
            out = np.moveaxis(out, 0, self.axis)
        return out, None


class ScatterAdd(Function):
    """Zeros of ``shape`` with ``values`` added at ``index`` (duplicates summed): the
    transpose of a gather, so its VJP is the gather ``g[index]``."""

    __slots__ = ("index",)

    def forward(self, values, index, shape):
        self.index = index
        out = np.zeros(shape, dtype=np.asarray(values).dtype)
        np.add.at(out, index, values)
        return out

    def backward(self, g):
        return g[self.index], None, None


# -- linear algebra ----------------------------------------------------------------
class MatMul(Function):
    """``a @ b`` for operands of rank >= 2 (``ops.matmul`` promotes vectors)."""

    __slots__ = ("a", "b")

    def forward(self, a, b):
        self.a, self.b = a, b
        return dot(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        ga = dot(g, np.swapaxes(b, -1, -2)) if self.needs[0] else None
        gb = None
        if self.needs[1]:
            if b.ndim == 2:
                # Fold the batch dimensions into one GEMM instead of a batched product.
                gb = dot(a.reshape(-1, a.shape[-1]).T, g.reshape(-1, g.shape[-1]))
            else:
                gb = np.matmul(np.swapaxes(a, -1, -2), g)
        return ga, gb
