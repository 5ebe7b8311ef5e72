"""Elementwise functions of ``keras.ops.numpy`` beyond ``math.py``'s.

Trigonometric and hyperbolic functions, ``cbrt`` and ``i0`` are primitives of
:mod:`lamina.backend.numeric`; the rest are composed. Integer inputs of float functions
give ``floatx()`` results, as in Keras. Predicates (``signbit``, ``isclose``...),
rounding (``trunc``) and integer functions (``gcd``, ``lcm``) carry no gradient.
"""

from __future__ import annotations

import math

import numpy as np

from lamina.backend import numeric as _n
from lamina.backend import primitives as _p
from lamina.ops._common import constant, export
from lamina.ops._common import data as _data
from lamina.ops.core import isnan
from lamina.ops.math import (
    abs,
    add,
    divide,
    maximum,
    minimum,
    multiply,
    power,
    sin,
    sqrt,
    square,
    subtract,
    where,
)
from lamina.ops.numpy_dtypes import (
    as_dtype,
    dtype_of,
    float_result_dtype,
    promote,
    promote_float,
    require_integer,
    result_dtype,
)

__all__ = [
    "absolute", "allclose", "angle", "arccos", "arccosh", "arcsin", "arcsinh", "arctan",
    "arctan2", "arctanh", "cbrt", "conj", "conjugate", "copy", "cosh", "deg2rad",
    "divide_no_nan", "exp2", "fabs", "fmax", "fmin", "fmod", "gcd", "heaviside", "hypot",
    "i0", "imag", "isclose", "isneginf", "isposinf", "isreal", "lcm", "ldexp", "logaddexp",
    "logaddexp2", "nan_to_num", "nextafter", "rad2deg", "real", "signbit", "sinc", "sinh",
    "tan", "trunc",
]


def _float(x):
    (x,) = promote_float(x)
    return x


def _is_complex(x) -> bool:
    return np.iscomplexobj(_data(x))


# -- differentiable, through primitives ------------------------------------------------
def tan(x):
    """Tangent, elementwise."""
    return _n.Tan.apply(_float(x))


def sinh(x):
    """Hyperbolic sine, elementwise."""
    return _n.Sinh.apply(_float(x))


def cosh(x):
    """Hyperbolic cosine, elementwise."""
    return _n.Cosh.apply(_float(x))


def arcsin(x):
    """Inverse sine, elementwise (NaN outside [-1, 1])."""
    return _n.Arcsin.apply(_float(x))


def arccos(x):
    """Inverse cosine, elementwise (NaN outside [-1, 1])."""
    return _n.Arccos.apply(_float(x))


def arctan(x):
    """Inverse tangent, elementwise."""
    return _n.Arctan.apply(_float(x))


def arcsinh(x):
    """Inverse hyperbolic sine, elementwise."""
    return _n.Arcsinh.apply(_float(x))


def arccosh(x):
    """Inverse hyperbolic cosine, elementwise (NaN below 1)."""
    return _n.Arccosh.apply(_float(x))


def arctanh(x):
    """Inverse hyperbolic tangent, elementwise (NaN outside [-1, 1])."""
    return _n.Arctanh.apply(_float(x))


def arctan2(x1, x2):
    """The angle of the point ``(x2, x1)``, in ``[-pi, pi]``, elementwise."""
    return _n.Arctan2.apply(*promote_float(x1, x2))


def cbrt(x):
    """Real cube root, elementwise."""
    return _n.Cbrt.apply(_float(x))


def i0(x):
    """The modified Bessel function of the first kind, order 0, elementwise."""
    return _n.I0.apply(_float(x))


def logaddexp(x1, x2):
    """``log(exp(x1) + exp(x2))`` without overflow."""
    return _n.Logaddexp.apply(*promote_float(x1, x2))


# -- differentiable, composed ------------------------------------------------------------
def absolute(x):
    """Absolute value (``abs``)."""
    return abs(x)


def fabs(x):
    """Absolute value as a float (integer inputs give ``floatx()``)."""
    return abs(_float(x))


def _scaled(x, factor):
    x = _float(x)
    return multiply(x, np.asarray(factor, dtype=dtype_of(x)))


def deg2rad(x):
    """Degrees to radians."""
    return _scaled(x, math.pi / 180.0)


def rad2deg(x):
    """Radians to degrees."""
    return _scaled(x, 180.0 / math.pi)


def exp2(x):
    """``2 ** x``."""
    x = _float(x)
    return power(np.asarray(2.0, dtype=dtype_of(x)), x)


def logaddexp2(x1, x2):
    """``log2(2 ** x1 + 2 ** x2)`` without overflow."""
    x1, x2 = promote_float(x1, x2)
    ln2 = np.asarray(math.log(2.0), dtype=dtype_of(x1))
    return divide(logaddexp(multiply(x1, ln2), multiply(x2, ln2)), ln2)


def hypot(x1, x2):
    """``sqrt(x1**2 + x2**2)``, scaled by the larger magnitude so that it cannot overflow."""
    x1, x2 = promote_float(x1, x2)
    scale = np.maximum(np.abs(_data(x1)), np.abs(_data(x2)))
    # The scale is a constant: hypot(a, b) = s * hypot(a/s, b/s) for any s > 0, so the
    # gradient through the scaled expression is exact.
    scale = np.where((scale > 0) & np.isfinite(scale), scale, 1).astype(dtype_of(x1))
    return multiply(sqrt(add(square(divide(x1, scale)), square(divide(x2, scale)))), scale)


def fmax(x1, x2):
    """Elementwise maximum that ignores NaN (NaN only where both are NaN)."""
    x1, x2 = promote(x1, x2)
    return where(isnan(x2), x1, where(isnan(x1), x2, maximum(x1, x2)))


def fmin(x1, x2):
    """Elementwise minimum that ignores NaN (NaN only where both are NaN)."""
    x1, x2 = promote(x1, x2)
    return where(isnan(x2), x1, where(isnan(x1), x2, minimum(x1, x2)))


def fmod(x1, x2):
    """C-style remainder ``x1 - x2 * trunc(x1 / x2)``: the sign of ``x1``."""
    x1, x2 = promote(x1, x2)
    if not np.issubdtype(dtype_of(x1), np.inexact):
        return constant(np.fmod(_data(x1), _data(x2)))
    a, b = np.asarray(_data(x1)), np.asarray(_data(x2))
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = np.fmod(a, b)
        quotient = np.round((a - exact) / b)
    quotient = np.where(np.isfinite(quotient), quotient, 0).astype(exact.dtype)
    # x1 - x2 * q has the gradient (1, -q); the constant correction makes the value
    # np.fmod's exactly (the product rounds, fmod does not).
    divisor = where(np.isfinite(b), x2, np.zeros((), dtype=exact.dtype))  # inf * 0 is nan
    approx = subtract(x1, multiply(divisor, quotient))
    with np.errstate(invalid="ignore"):
        correction = np.asarray(exact - np.asarray(_data(approx)), dtype=exact.dtype)
    return add(approx, correction)


def heaviside(x1, x2):
    """0 where ``x1 < 0``, 1 where ``x1 > 0``, ``x2`` where ``x1 == 0``."""
    x1, x2 = promote_float(x1, x2)
    d = np.asarray(_data(x1))
    step = np.where(d > 0, 1, 0).astype(d.dtype)
    return where(d == 0, x2, where(np.isnan(d), d, step))


def sinc(x):
    """``sin(pi x) / (pi x)``, 1 at 0."""
    x = _float(x)
    zero = np.asarray(_data(x)) == 0
    pix = multiply(where(zero, np.asarray(1, dtype=dtype_of(x)), x),
                   np.asarray(math.pi, dtype=dtype_of(x)))
    return where(zero, np.asarray(1, dtype=dtype_of(x)), divide(sin(pix), pix))


def divide_no_nan(x1, x2):
    """``x1 / x2``, with 0 wherever ``x2 == 0``."""
    x1, x2 = promote_float(x1, x2)
    zero = np.asarray(_data(x2)) == 0
    safe = where(zero, np.asarray(1, dtype=dtype_of(x2)), x2)
    return where(zero, np.asarray(0, dtype=dtype_of(x1)), divide(x1, safe))


def ldexp(x1, x2):
    """``x1 * 2 ** x2`` for an integer ``x2``."""
    if not np.issubdtype(dtype_of(x2), np.integer):
        raise TypeError("ldexp exponent must be an integer type. Received: "
                        f"x2 dtype={dtype_of(x2).name}")
    x1 = as_dtype(x1, float_result_dtype(x1))
    return multiply(x1, np.ldexp(np.ones((), dtype=dtype_of(x1)), _data(x2)))


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """NaN replaced by ``nan``, infinities by ``posinf``/``neginf`` (default: the dtype's
    largest and lowest finite values); integer inputs are returned unchanged."""
    dt = dtype_of(x)
    if not np.issubdtype(dt, np.floating):
        return as_dtype(x, dt)
    d = np.asarray(_data(x))
    info = np.finfo(dt)
    out = where(np.isnan(d), np.asarray(nan, dtype=dt), x)
    out = where(np.isposinf(d), np.asarray(info.max if posinf is None else posinf, dt), out)
    return where(np.isneginf(d), np.asarray(info.min if neginf is None else neginf, dt), out)


def copy(x):
    """A copy of ``x`` (the gradient flows through)."""
    return _p.Cast.apply(x, dtype_of(x))


def real(x):
    """The real part (``x`` itself for real inputs)."""
    return constant(np.real(_data(x))) if _is_complex(x) else copy(x)


def imag(x):
    """The imaginary part (zeros for real inputs)."""
    return constant(np.imag(_data(x)).copy())


def conj(x):
    """The complex conjugate (``x`` itself for real inputs)."""
    return constant(np.conj(_data(x))) if _is_complex(x) else copy(x)


conjugate = conj


def angle(x):
    """The argument of a complex number (0 or pi for real inputs), as a float."""
    d = np.asarray(_data(x))
    out = np.angle(d)
    return constant(out.astype(float_result_dtype(x)) if not _is_complex(x) else out)


# -- no gradient -------------------------------------------------------------------------
def trunc(x):
    """Round toward zero (integer inputs keep their dtype)."""
    return constant(np.trunc(_data(x)))


def signbit(x):
    """True where the sign bit is set (negative numbers and -0.0)."""
    return constant(np.signbit(_data(x)))


def isneginf(x):
    """True where ``x`` is negative infinity."""
    return constant(np.isneginf(_data(x)))


def isposinf(x):
    """True where ``x`` is positive infinity."""
    return constant(np.isposinf(_data(x)))


def isreal(x):
    """True where the imaginary part is zero (everywhere, for real inputs)."""
    return constant(np.isreal(_data(x)))


def isclose(x1, x2, rtol=1e-5, atol=1e-8, equal_nan=False):
    """``|x1 - x2| <= atol + rtol * |x2|``, elementwise."""
    x1, x2 = promote(x1, x2)
    return constant(np.isclose(_data(x1), _data(x2), rtol=rtol, atol=atol,
                               equal_nan=equal_nan))


def allclose(x1, x2, rtol=1e-5, atol=1e-8, equal_nan=False):
    """Whether :func:`isclose` holds everywhere (a scalar bool Tensor)."""
    return constant(np.all(_data(isclose(x1, x2, rtol, atol, equal_nan))))


def nextafter(x1, x2):
    """The next representable float after ``x1`` in the direction of ``x2``."""
    x1, x2 = promote_float(x1, x2)
    return constant(np.nextafter(_data(x1), _data(x2)))


def _integer_op(name, fn, x1, x2):
    require_integer(name, x1=x1, x2=x2)
    dt = result_dtype(x1, x2)
    return constant(np.asarray(fn(_data(x1), _data(x2))).astype(dt, copy=False))


def gcd(x1, x2):
    """Greatest common divisor of integers, elementwise."""
    return _integer_op("gcd", np.gcd, x1, x2)


def lcm(x1, x2):
    """Least common multiple of integers, elementwise."""
    return _integer_op("lcm", np.lcm, x1, x2)


export(globals(), __all__)
