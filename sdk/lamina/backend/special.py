"""Special-function primitives: ``Erfc`` and ``Erfinv``, forward and VJP side by side.

Both are evaluated in float64 from Cody's rational approximations of ``erf``/``erfc``
(:mod:`lamina.backend.primitives`), so ``erfc`` keeps its relative accuracy in the tail
where ``1 - erf(x)`` would cancel.
"""

from __future__ import annotations

import math

import numpy as np

from lamina.backend.autodiff import Function
from lamina.backend.primitives import _erfc_tail, erf_float64

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def erfc_float64(x) -> np.ndarray:
    """``1 - erf(x)`` elementwise in float64, accurate in relative terms for large ``x``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.abs(x)
    out = 1.0 - erf_float64(x)
    tail = (y > 0.46875) & ~np.isnan(x)
    t = _erfc_tail(y[tail])
    out[tail] = np.where(x[tail] > 0, t, 2.0 - t)
    return out


def _giles(x):
    # M. Giles, "Approximating the erfinv function" (GPU Computing Gems, 2011): the
    # single-precision polynomial, used as the starting point of Newton's method.
    w = -np.log((1.0 - x) * (1.0 + x))
    central = w < 5.0
    wc = w - 2.5
    p = np.full_like(x, 2.81022636e-08)
    for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
              -0.00125372503, -0.00417768164, 0.246640727, 1.50140941):
        p = c + p * wc
    wt = np.sqrt(np.maximum(w, 0.0)) - 3.0
    q = np.full_like(x, -0.000200214257)
    for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
              -0.0076224613, 0.00943887047, 1.00167406, 2.83297682):
        q = c + q * wt
    return np.where(central, p, q) * x


def erfinv_float64(x) -> np.ndarray:
    """The inverse error function in float64: ``±inf`` at ``±1``, NaN outside ``[-1, 1]``."""
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    inside = a < 1.0
    s = np.where(inside, a, 0.0)
    y = _giles(s)
    rest = 1.0 - s  # exact for float32 inputs, and the tail's target
    near_one = s > 0.5
    for _ in range(3):
        # Newton on erf(y) = |x|, or near 1 on erfc(y) = 1 - |x| (no cancellation there).
        slope = _TWO_OVER_SQRT_PI * np.exp(-y * y)
        residual = np.where(near_one, rest - erfc_float64(y), erf_float64(y) - s)
        y = y - residual / slope
    out = np.where(inside, np.copysign(y, x), np.nan)
    out = np.where(a == 1.0, np.copysign(np.inf, x), out)
    return out


class Erfc(Function):
    """``erfc(a)``; ``grad = -2/sqrt(pi) exp(-a^2)``."""

    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        return erfc_float64(a).astype(a.dtype, copy=False)

    def backward(self, g):
        return (-g * _TWO_OVER_SQRT_PI * np.exp(-np.square(self.a)),)


class Erfinv(Function):
    """``erfinv(a)``; ``grad = sqrt(pi)/2 exp(erfinv(a)^2)``."""

    __slots__ = ("out",)

    def forward(self, a):
        self.out = erfinv_float64(a).astype(a.dtype, copy=False)
        return self.out

    def backward(self, g):
        return (g / _TWO_OVER_SQRT_PI * np.exp(np.square(self.out)),)
