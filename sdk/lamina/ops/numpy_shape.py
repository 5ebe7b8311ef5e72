"""Joins, splits, diagonals and products of ``keras.ops.numpy``, composed from the
differentiable shape ops (``getitem``, ``concatenate``, ``reshape``) and ``einsum``."""

from __future__ import annotations

import numpy as np

from lamina.ops._common import constant, export
from lamina.ops._common import data as _data
from lamina.ops._common import static_shape as shape
from lamina.ops.linalg import diag, tensordot
from lamina.ops.manipulation import (
    concatenate,
    flip,
    getitem,
    moveaxis,
    pad,
    reshape,
    split,
    swapaxes,
    transpose,
)
from lamina.ops.math import multiply, subtract
from lamina.ops.numpy_dtypes import as_dtype, dtype_of, promote, promote_float
from lamina.ops.reduction import cumprod, sum

__all__ = [
    "append", "array_split", "correlate", "cross", "diagflat", "diagonal", "diff", "dsplit",
    "dstack", "fliplr", "flipud", "get_item", "hsplit", "hstack", "inner", "kron", "ravel",
    "rot90", "trace", "unravel_index", "vander", "vdot", "view", "vsplit", "vstack",
]


def ravel(x):
    """``x`` flattened to 1-D."""
    return reshape(x, (-1,))


def get_item(x, key):
    """``x[key]``."""
    return getitem(x, key)


def append(x1, x2, axis=None):
    """``x2`` appended to ``x1`` along ``axis`` (both flattened when None)."""
    x1, x2 = promote(x1, x2)
    if axis is None:
        return concatenate([ravel(x1), ravel(x2)], axis=0)
    return concatenate([x1, x2], axis=axis)


# -- joins -------------------------------------------------------------------------------
def _at_least(x, ndim):
    s = shape(x)
    if len(s) >= ndim:
        return x
    # As numpy's atleast_2d/3d: (n,) -> (1, n) -> (1, n, 1); (m, n) -> (m, n, 1).
    if ndim == 2:
        return reshape(x, (1,) * (2 - len(s)) + tuple(s))
    return reshape(x, {0: (1, 1, 1), 1: (1,) + tuple(s) + (1,)}.get(len(s), tuple(s) + (1,)))


def hstack(xs):
    """Join along the second axis (the first, for 1-D tensors)."""
    xs = promote(*xs)
    return concatenate(list(xs), axis=0 if len(shape(xs[0])) <= 1 else 1)


def vstack(xs):
    """Join along the first axis, 1-D tensors as rows."""
    return concatenate([_at_least(x, 2) for x in promote(*xs)], axis=0)


def dstack(xs):
    """Join along the third axis, after making every tensor at least 3-D."""
    return concatenate([_at_least(x, 3) for x in promote(*xs)], axis=2)


# -- splits ------------------------------------------------------------------------------
def array_split(x, indices_or_sections, axis=0):
    """Split into ``indices_or_sections`` parts of sizes differing by at most one (the
    first ones larger), or at the given indices."""
    if isinstance(indices_or_sections, (int, np.integer)):
        if indices_or_sections < 1:
            raise ValueError("indices_or_sections must be a positive integer. Received: "
                             f"indices_or_sections={indices_or_sections}")
        n = shape(x)[axis]
        size, extra = divmod(n, int(indices_or_sections))
        sizes = [size + 1] * extra + [size] * (int(indices_or_sections) - extra)
        indices_or_sections = np.cumsum(sizes)[:-1].tolist()
    return split(x, list(indices_or_sections), axis=axis)


def _even_split(name, x, indices_or_sections, axis):
    if isinstance(indices_or_sections, (int, np.integer)):
        n = shape(x)[axis]
        if indices_or_sections < 1 or n % indices_or_sections:
            raise ValueError(f"{name} needs an equal division: {n} is not divisible by "
                             f"indices_or_sections={indices_or_sections}")
    return array_split(x, indices_or_sections, axis=axis)


def hsplit(x, indices_or_sections):
    """Split along the second axis (the first, for 1-D tensors) into equal parts."""
    return _even_split("hsplit", x, indices_or_sections, 0 if len(shape(x)) == 1 else 1)


def vsplit(x, indices_or_sections):
    """Split along the first axis (of an at least 2-D tensor) into equal parts."""
    if len(shape(x)) < 2:
        raise ValueError(f"vsplit takes an at least 2-D tensor. Received: shape={shape(x)}")
    return _even_split("vsplit", x, indices_or_sections, 0)


def dsplit(x, indices_or_sections):
    """Split along the third axis (of an at least 3-D tensor) into equal parts."""
    if len(shape(x)) < 3:
        raise ValueError(f"dsplit takes an at least 3-D tensor. Received: shape={shape(x)}")
    return _even_split("dsplit", x, indices_or_sections, 2)


# -- flips and rotations -------------------------------------------------------------------
def fliplr(x):
    """Reverse the second axis."""
    if len(shape(x)) < 2:
        raise ValueError(f"fliplr takes an at least 2-D tensor. Received: shape={shape(x)}")
    return flip(x, axis=1)


def flipud(x):
    """Reverse the first axis."""
    if len(shape(x)) < 1:
        raise ValueError(f"flipud takes an at least 1-D tensor. Received: shape={shape(x)}")
    return flip(x, axis=0)


def rot90(array, k=1, axes=(0, 1)):
    """Rotate by 90 degrees ``k`` times, from the first axis of ``axes`` to the second."""
    ndim = len(shape(array))
    a0, a1 = (int(a) % ndim for a in axes) if ndim else (0, 0)
    if len(axes) != 2 or a0 == a1:
        raise ValueError(f"axes must be two different axes. Received: axes={axes}")
    k = int(k) % 4
    if k == 0:
        return getitem(array, (Ellipsis,))
    if k == 2:
        return flip(flip(array, axis=a0), axis=a1)
    if k == 1:
        return swapaxes(flip(array, axis=a1), a0, a1)
    return flip(swapaxes(array, a0, a1), axis=a1)


# -- diagonals -------------------------------------------------------------------------------
def diagonal(x, offset=0, axis1=0, axis2=1):
    """The ``offset``-th diagonal of the planes ``(axis1, axis2)``, as the last axis."""
    ndim = len(shape(x))
    if ndim < 2:
        raise ValueError(f"diagonal takes an at least 2-D tensor. Received: shape={shape(x)}")
    a1, a2 = axis1 % ndim, axis2 % ndim
    if a1 == a2:
        raise ValueError(f"axis1 and axis2 must differ. Received: axis1={axis1}, axis2={axis2}")
    x = transpose(x, [d for d in range(ndim) if d not in (a1, a2)] + [a1, a2])
    rows, cols = shape(x)[-2:]
    start_r, start_c = max(-offset, 0), max(offset, 0)
    n = max(min(rows - start_r, cols - start_c), 0)
    return getitem(x, (Ellipsis, np.arange(n) + start_r, np.arange(n) + start_c))


def trace(x, offset=0, axis1=0, axis2=1):
    """Sum of the ``offset``-th diagonal of the planes ``(axis1, axis2)``."""
    return sum(diagonal(x, offset, axis1, axis2), axis=-1)


def diagflat(x, k=0):
    """A matrix with the flattened ``x`` on its ``k``-th diagonal."""
    return diag(ravel(x), k=k)


# -- differences and products ------------------------------------------------------------------
def diff(a, n=1, axis=-1):
    """The ``n``-th discrete difference along ``axis``."""
    ndim = len(shape(a))
    for _ in range(n):
        hi = [slice(None)] * ndim
        lo = [slice(None)] * ndim
        hi[axis], lo[axis] = slice(1, None), slice(None, -1)
        a = subtract(getitem(a, tuple(hi)), getitem(a, tuple(lo)))
    return a if n else getitem(a, (Ellipsis,))


def kron(x1, x2):
    """Kronecker product: blocks ``x1[i] * x2``."""
    x1, x2 = promote(x1, x2)
    s1, s2 = shape(x1), shape(x2)
    ndim = max(len(s1), len(s2))
    s1, s2 = (1,) * (ndim - len(s1)) + tuple(s1), (1,) * (ndim - len(s2)) + tuple(s2)
    a = reshape(x1, tuple(d for n in s1 for d in (n, 1)))
    b = reshape(x2, tuple(d for n in s2 for d in (1, n)))
    return reshape(multiply(a, b), tuple(n * m for n, m in zip(s1, s2)))


def inner(x1, x2):
    """Sum of products over the last axes (a product when either is a scalar)."""
    x1, x2 = promote(x1, x2)
    if not shape(x1) or not shape(x2):
        return multiply(x1, x2)
    return tensordot(x1, x2, axes=([-1], [-1]))


def vdot(x1, x2):
    """Dot product of the flattened tensors."""
    x1, x2 = promote(x1, x2)
    return sum(multiply(ravel(x1), ravel(x2)))


def cross(x1, x2, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """Cross product of 2- or 3-vectors along ``axisa``/``axisb``, to ``axisc`` (``axis``
    sets all three); two 2-vectors give the scalar z component."""
    if axis is not None:
        axisa = axisb = axisc = axis
    x1, x2 = promote(x1, x2)
    a, b = moveaxis(x1, axisa, -1), moveaxis(x2, axisb, -1)
    na, nb = shape(a)[-1], shape(b)[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError("cross takes vectors of 2 or 3 components. Received: "
                         f"x1 has {na}, x2 has {nb} along the vector axes")

    def part(t, i):
        return getitem(t, (Ellipsis, i))

    if na == nb == 2:
        return subtract(multiply(part(a, 0), part(b, 1)), multiply(part(a, 1), part(b, 0)))
    if na == 2:
        a = pad(a, [(0, 0)] * (len(shape(a)) - 1) + [(0, 1)])
    if nb == 2:
        b = pad(b, [(0, 0)] * (len(shape(b)) - 1) + [(0, 1)])
    comps = [subtract(multiply(part(a, i), part(b, j)), multiply(part(a, j), part(b, i)))
             for i, j in ((1, 2), (2, 0), (0, 1))]
    out = concatenate([reshape(c, shape(c) + (1,)) for c in comps], axis=-1)
    return moveaxis(out, -1, axisc)


def correlate(x1, x2, mode="valid"):
    """Cross-correlation of two 1-D tensors: ``out[k] = sum_n x1[n + k] * x2[n]``.

    Args:
        x1: 1-D tensor.
        x2: 1-D tensor.
        mode: "valid" (full overlap), "same" (the length of the longer input) or "full".

    Returns:
        The correlation, float (integer inputs give ``floatx()``).
    """
    if mode not in ("valid", "same", "full"):
        raise ValueError(f"mode must be 'valid', 'same' or 'full'. Received: mode={mode!r}")
    x1, x2 = promote_float(x1, x2)
    if len(shape(x1)) != 1 or len(shape(x2)) != 1:
        raise ValueError("correlate takes 1-D tensors. Received: "
                         f"x1.shape={shape(x1)}, x2.shape={shape(x2)}")
    n, m = shape(x1)[0], shape(x2)[0]
    padded = pad(x1, [(m - 1, m - 1)])
    windows = getitem(padded, np.arange(n + m - 1)[:, None] + np.arange(m))
    full = sum(multiply(windows, x2), axis=-1)
    if mode == "full":
        return full
    if mode == "valid":
        return getitem(full, slice(min(n, m) - 1, max(n, m)))
    # numpy swaps the inputs when x2 is longer, which moves the window of "same".
    start = (m - 1) // 2 if n >= m else n - 1 - (n - 1) // 2
    return getitem(full, slice(start, start + max(n, m)))


def vander(x, N=None, increasing=False):  # noqa: N803 - Keras's name
    """Vandermonde matrix: columns are powers of the 1-D ``x`` (decreasing by default)."""
    if len(shape(x)) != 1:
        raise ValueError(f"vander takes a 1-D tensor. Received: x.shape={shape(x)}")
    n = shape(x)[0] if N is None else int(N)
    if n == 0:
        return constant(np.zeros((shape(x)[0], 0), dtype=dtype_of(x)))
    ones = np.ones((shape(x)[0], 1), dtype=dtype_of(x))
    # Cumulative products rather than powers: exact gradients where x == 0.
    columns = concatenate([ones] + [reshape(x, (-1, 1))] * (n - 1), axis=1)
    powers = cumprod(columns, axis=1)
    return powers if increasing else flip(powers, axis=1)


def unravel_index(indices, shape):
    """The coordinates (a tuple of int32 tensors) of flat ``indices`` in an array of
    ``shape``."""
    flat = np.asarray(_data(indices))
    shape = tuple(int(d) for d in np.asarray(_data(shape)).reshape(-1))
    size = int(np.prod(shape))
    if np.any((flat < 0) | (flat >= size)):
        raise ValueError(f"indices must lie in [0, {size}) for shape={tuple(shape)}. "
                         f"Received: indices={flat.tolist()}")
    return tuple(constant(c.astype(np.int32)) for c in np.unravel_index(flat, shape))


def view(x, dtype=None):
    """The bytes of ``x`` reinterpreted as ``dtype`` (``x`` itself when None); the last
    axis scales with the item sizes. No gradient across a change of dtype."""
    if dtype is None or np.dtype(dtype) == dtype_of(x):
        return getitem(as_dtype(x, dtype_of(x)), (Ellipsis,))
    d = np.ascontiguousarray(_data(x))
    try:
        return constant(d.view(np.dtype(dtype)))
    except ValueError as e:
        raise ValueError(f"Cannot view a tensor of shape {d.shape} and dtype {d.dtype} as "
                         f"dtype={dtype}: {e}") from None


export(globals(), __all__)
