"""The primitive set: each op's forward and its vector-Jacobian product, side by side.

Elementwise: Add Subtract Multiply Divide Power Maximum Minimum Negative Exp Log
Log1p Sqrt Sin Cos Tanh Sigmoid Relu Abs Erf Softplus Clip Where Cast
Reductions: Sum Max
Shape: Reshape Transpose BroadcastTo GetItem Concatenate Pad Take
Linear algebra: MatMul
(Fused neural-network primitives live in ``nn.py``.)

Backward methods may return gradients with broadcast shapes: the walk in
``autodiff.gradients`` reduces them to each input's shape.
"""

from __future__ import annotations

import math

import numpy as np

from lamina.backend.autodiff import Function


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


# Abramowitz & Stegun 7.1.26 is only 1.5e-7 accurate; this uses math.erf elementwise
# through a vectorised ufunc, exact to double precision, used by gelu.
_erf = np.frompyfunc(math.erf, 1, 1)


class Erf(Function):
    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        return _erf(a).astype(np.result_type(a))

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


# -- linear algebra ----------------------------------------------------------------
class MatMul(Function):
    """``a @ b`` for operands of rank >= 2 (``ops.matmul`` promotes vectors)."""

    __slots__ = ("a", "b")

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.matmul(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        ga = np.matmul(g, np.swapaxes(b, -1, -2)) if self.needs[0] else None
        gb = None
        if self.needs[1]:
            if b.ndim == 2:
                # Fold the batch dimensions into one GEMM instead of a batched product.
                gb = a.reshape(-1, a.shape[-1]).T @ g.reshape(-1, g.shape[-1])
            else:
                gb = np.matmul(np.swapaxes(a, -1, -2), g)
        return ga, gb
