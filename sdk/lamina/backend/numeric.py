"""Primitives beyond the core set of ``primitives.py``, each with its VJP beside it.

Expm1 (accurate near 0, which ``exp(x) - 1`` is not), CumSum, CumProd (its VJP is exact
when the input holds zeros) and Einsum (the VJP of each operand is another einsum);
Tan Sinh Cosh Arcsin Arccos Arctan Arcsinh Arccosh Arctanh Arctan2 Cbrt Logaddexp I0
for ``keras.ops.numpy``'s functions.
``lamina.ops`` composes ``prod``, ``cumsum``, ``cumprod``, ``einsum`` and ``tensordot``
from these.
"""

from __future__ import annotations

import numpy as np

from lamina.backend.autodiff import Function


class Expm1(Function):
    __slots__ = ("out",)

    def forward(self, a):
        self.out = np.expm1(a)
        return self.out

    def backward(self, g):
        return (g * (self.out + 1),)


def _reverse_cumsum(g, axis):
    return np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis)


class CumSum(Function):
    __slots__ = ("axis",)

    def forward(self, a, axis=0):
        self.axis = axis
        return np.cumsum(a, axis=axis)

    def backward(self, g):
        return (_reverse_cumsum(g, self.axis),)


class CumProd(Function):
    __slots__ = ("a", "out", "axis")

    def forward(self, a, axis=0):
        self.a, self.axis = a, axis
        self.out = np.cumprod(a, axis=axis)
        return self.out

    def backward(self, g):
        a, axis = self.a, self.axis
        if np.all(a != 0):
            return (_reverse_cumsum(g * self.out, axis) / a,)
        # With zeros, out / a is undefined: d out_j / d a_i = L_i * prod(a_{i+1..j}), where
        # L_i = prod(a_{<i}), so grad_i = L_i * R_i with R_i = g_i + a_{i+1} * R_{i+1}.
        a_m, g_m = np.moveaxis(a, axis, 0), np.moveaxis(g, axis, 0)
        r = np.empty(g_m.shape, dtype=np.result_type(g_m, a_m))
        r[-1] = g_m[-1]
        for i in range(len(r) - 2, -1, -1):
            r[i] = g_m[i] + a_m[i + 1] * r[i + 1]
        left = np.concatenate([np.ones_like(a_m[:1]), np.cumprod(a_m[:-1], axis=0)])
        return (np.moveaxis(left * r, 0, axis),)


class Einsum(Function):
    """``np.einsum`` on normalised subscripts: one label string per operand, explicit
    output, no ellipsis (``ops.einsum`` expands those)."""

    __slots__ = ("inputs", "output", "operands")

    def forward(self, *operands, inputs, output):
        self.inputs, self.output, self.operands = inputs, output, operands
        spec = ",".join(inputs) + "->" + output
        return np.asarray(np.einsum(spec, *operands, optimize=len(operands) > 1))

    def backward(self, g):
        return tuple(self._operand_grad(g, i) if need else None
                     for i, need in enumerate(self.needs))

    def _operand_grad(self, g, i):
        labels, a = self.inputs[i], self.operands[i]
        others = [j for j in range(len(self.inputs)) if j != i]
        present = set(self.output).union(*(self.inputs[j] for j in others))
        unique = "".join(dict.fromkeys(labels))
        # Labels summed away in the forward and used nowhere else get their gradient by
        # broadcasting; einsum cannot create an output label absent from its inputs.
        target = "".join(c for c in unique if c in present)
        spec = ",".join([self.output, *(self.inputs[j] for j in others)]) + "->" + target
        grad = np.einsum(spec, g, *(self.operands[j] for j in others),
                         optimize=len(others) > 0)
        sizes = dict(zip(labels, a.shape))
        grad = np.expand_dims(grad, [k for k, c in enumerate(unique) if c not in present])
        grad = np.broadcast_to(grad, [sizes[c] if c not in present else n
                                      for c, n in zip(unique, grad.shape)])
        if len(unique) == len(labels):
            return grad
        # A repeated label reads a diagonal: its gradient lands on that diagonal only.
        out = np.zeros(a.shape, dtype=grad.dtype)
        np.einsum(labels + "->" + unique, out)[...] = grad
        return out


# -- inverse trigonometric and hyperbolic functions (``ops.arcsin`` ... ``ops.i0``) ----
class Tan(Function):
    __slots__ = ("out",)

    def forward(self, a):
        self.out = np.tan(a)
        return self.out

    def backward(self, g):
        return (g * (1 + np.square(self.out)),)


class Sinh(Function):
    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        return np.sinh(a)

    def backward(self, g):
        return (g * np.cosh(self.a),)


class Cosh(Function):
    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        return np.cosh(a)

    def backward(self, g):
        return (g * np.sinh(self.a),)


class Arcsin(Function):
    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        with np.errstate(invalid="ignore"):  # NaN outside the domain, as Keras
            return np.arcsin(a)

    def backward(self, g):
        return (g / np.sqrt(1 - np.square(self.a)),)


class Arccos(Function):
    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        with np.errstate(invalid="ignore"):  # NaN outside the domain, as Keras
            return np.arccos(a)

    def backward(self, g):
        return (-g / np.sqrt(1 - np.square(self.a)),)


class Arctan(Function):
    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        return np.arctan(a)

    def backward(self, g):
        return (g / (1 + np.square(self.a)),)


class Arcsinh(Function):
    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        return np.arcsinh(a)

    def backward(self, g):
        return (g / np.sqrt(np.square(self.a) + 1),)


class Arccosh(Function):
    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        with np.errstate(invalid="ignore"):  # NaN outside the domain, as Keras
            return np.arccosh(a)

    def backward(self, g):
        # sqrt(a-1)*sqrt(a+1) rather than sqrt(a*a-1): no overflow for large a.
        return (g / (np.sqrt(self.a - 1) * np.sqrt(self.a + 1)),)


class Arctanh(Function):
    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        with np.errstate(invalid="ignore", divide="ignore"):  # NaN/inf, as Keras
            return np.arctanh(a)

    def backward(self, g):
        return (g / (1 - np.square(self.a)),)


class Arctan2(Function):
    __slots__ = ("a", "b")

    def forward(self, a, b):
        self.a, self.b = a, b
        return np.arctan2(a, b)

    def backward(self, g):
        r2 = np.square(self.a) + np.square(self.b)
        return (g * self.b / r2 if self.needs[0] else None,
                -g * self.a / r2 if self.needs[1] else None)


class Cbrt(Function):
    __slots__ = ("out",)

    def forward(self, a):
        self.out = np.cbrt(a)
        return self.out

    def backward(self, g):
        return (g / (3 * np.square(self.out)),)


class Logaddexp(Function):
    """``log(exp(a) + exp(b))``; each gradient is a softmax weight, exp(input - out)."""

    __slots__ = ("a", "b", "out")

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = np.logaddexp(a, b)
        return self.out

    def backward(self, g):
        return (g * np.exp(self.a - self.out) if self.needs[0] else None,
                g * np.exp(self.b - self.out) if self.needs[1] else None)


def bessel_i1(x) -> np.ndarray:
    """The modified Bessel function I1, elementwise (float64).

    I1(x) is the mean of exp(x cos t) cos t over a period; the trapezoid rule on a
    periodic analytic integrand converges exponentially, so ``|x| + 64`` nodes reach
    float64 accuracy wherever I1 is finite.
    """
    x = np.asarray(x, dtype=np.float64)
    finite = np.abs(x[np.isfinite(x)])
    n = 64 + int(np.ceil(finite.max())) if finite.size else 64
    t = np.cos(2 * np.pi * np.arange(n) / n)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.mean(np.exp(x[..., None] * t) * t, axis=-1)


class I0(Function):
    """The modified Bessel function I0 (``np.i0``); its derivative is I1."""

    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        return np.i0(a).astype(np.result_type(a), copy=False)

    def backward(self, g):
        return (g * bessel_i1(self.a).astype(g.dtype, copy=False),)

