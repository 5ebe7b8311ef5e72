"""Products (matmul, tensordot, einsum, outer), triangles, and Keras's ops.linalg."""

from __future__ import annotations

import string

import numpy as np

from lamina.backend import linalg as _l
from lamina.backend import numeric as _n
from lamina.backend import primitives as _p
from lamina.ops._common import constant, export
from lamina.ops._common import data as _data
from lamina.ops._common import static_shape as shape
from lamina.ops.core import eye

# Keras's ops.linalg namespace also lists these (tested in test_ops_linalg.py).
from lamina.ops.decompositions import (  # noqa: F401
    eig,
    eigh,
    logdet,
    lstsq,
    lu_factor,
    pinv,
    qr,
    svd,
)
from lamina.ops.manipulation import expand_dims, getitem, pad, reshape, squeeze, swapaxes
from lamina.ops.math import multiply, where
from lamina.ops.reduction import norm  # noqa: F401
from lamina.ops.transforms import jvp  # noqa: F401

__all__ = [
    "cholesky", "cholesky_inverse", "det", "diag", "dot", "einsum", "inv", "matmul",
    "matrix_rank", "outer", "solve", "solve_triangular", "tensordot", "tril", "triu",
]


def matmul(x1, x2):
    a_vec, b_vec = len(shape(x1)) == 1, len(shape(x2)) == 1
    if a_vec:
        x1 = reshape(x1, (1, -1))
    if b_vec:
        x2 = reshape(x2, (-1, 1))
    out = _p.MatMul.apply(x1, x2)
    if a_vec:
        out = squeeze(out, axis=-2)
    if b_vec:
        out = squeeze(out, axis=-1)
    return out


def dot(x1, x2):
    return matmul(x1, x2)


def _parse_einsum(subscripts, ndims):
    """Expand ``...`` into free letters and make the output explicit (numpy's rules)."""
    subscripts = subscripts.replace(" ", "")
    lhs, arrow, rhs = subscripts.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != len(ndims):
        raise ValueError(f"einsum got {len(ndims)} operands for subscripts {subscripts!r}")
    spare = [c for c in string.ascii_letters if c not in subscripts]
    widths = [n - len(s.replace("...", "")) if "..." in s else 0
              for s, n in zip(inputs, ndims)]
    batch = "".join(spare[: max(widths, default=0)])
    # Ellipsis dimensions broadcast from the right, as numpy's do.
    inputs = [s.replace("...", batch[len(batch) - w:] if w else "")
              for s, w in zip(inputs, widths)]
    if arrow:
        output = rhs.replace("...", batch)
    else:
        letters = "".join(inputs)
        output = batch + "".join(sorted(c for c in set(letters)
                                        if letters.count(c) == 1 and c not in batch))
    return tuple(inputs), output


def einsum(subscripts, *operands):
    """Einstein summation (``np.einsum`` subscripts, ``...`` included), differentiable."""
    inputs, output = _parse_einsum(subscripts, [len(shape(x)) for x in operands])
    return _n.Einsum.apply(*operands, inputs=inputs, output=output)


def tensordot(x1, x2, axes=2):
    """Sum products over ``axes`` (an int: the last/first ``axes`` axes; or two lists)."""
    n1, n2 = len(shape(x1)), len(shape(x2))
    if isinstance(axes, int):
        a1, a2 = list(range(n1 - axes, n1)), list(range(axes))
    else:
        a1, a2 = ([a] if isinstance(a, int) else list(a) for a in axes)
    letters = iter(string.ascii_letters)
    s1 = [next(letters) for _ in range(n1)]
    s2 = [next(letters) for _ in range(n2)]
    for i, j in zip(a1, a2):
        s2[j % n2] = s1[i % n1]
    contracted = {s1[i % n1] for i in a1}
    output = [c for c in s1 if c not in contracted] + [c for c in s2 if c not in contracted]
    return _n.Einsum.apply(x1, x2, inputs=("".join(s1), "".join(s2)), output="".join(output))


def outer(x1, x2):
    """``x1[:, None] * x2[None, :]`` of the flattened inputs."""
    return multiply(reshape(x1, (-1, 1)), reshape(x2, (1, -1)))


def _triangle(x, k, lower):
    rows, cols = shape(x)[-2:]
    mask = np.tri(rows, cols, k, dtype=bool)
    return where(mask if lower else ~np.tri(rows, cols, k - 1, dtype=bool), x,
                 np.zeros((), dtype=np.asarray(_data(x)).dtype))


def tril(x, k=0):
    """``x`` with the elements above the ``k``-th diagonal zeroed (last two axes)."""
    return _triangle(x, k, lower=True)


def triu(x, k=0):
    """``x`` with the elements below the ``k``-th diagonal zeroed (last two axes)."""
    return _triangle(x, k, lower=False)


def diag(x, k=0):
    """The ``k``-th diagonal of a matrix, or a matrix with the vector ``x`` on it."""
    if len(shape(x)) == 2:
        rows, cols = shape(x)
        start_r, start_c = max(-k, 0), max(k, 0)
        n = max(min(rows - start_r, cols - start_c), 0)
        return getitem(x, (np.arange(n) + start_r, np.arange(n) + start_c))
    if len(shape(x)) != 1:
        raise ValueError(f"diag takes a 1-D or 2-D input. Received: shape={shape(x)}")
    n = shape(x)[0]
    square = multiply(reshape(x, (n, 1)), eye(n, dtype=np.asarray(_data(x)).dtype))
    return pad(square, ((max(-k, 0), max(k, 0)), (max(k, 0), max(-k, 0))))


def inv(x):
    """The inverse of each square matrix of ``x`` (last two axes)."""
    return _l.Inv.apply(x)


def det(x):
    """The determinant of each square matrix of ``x``."""
    return _l.Det.apply(x)


def solve(a, b):
    """``x`` with ``a @ x = b``; ``b`` is ``(..., n)`` or ``(..., n, k)``."""
    if len(shape(b)) == len(shape(a)) - 1:
        return squeeze(_l.Solve.apply(a, expand_dims(b, -1)), axis=-1)
    return _l.Solve.apply(a, b)


def solve_triangular(a, b, lower=False):
    """``x`` with ``a @ x = b`` for triangular ``a``; only ``a``'s ``lower`` (or upper)
    triangle is read."""
    if len(shape(b)) == len(shape(a)) - 1:
        return squeeze(_l.SolveTriangular.apply(a, expand_dims(b, -1), lower=lower), axis=-1)
    return _l.SolveTriangular.apply(a, b, lower=lower)


def cholesky(x, upper=False):
    """Cholesky factor of symmetric positive-definite ``x``: lower (``x = L L^T``) or, with
    ``upper=True``, ``U`` with ``x = U^T U``.

    Raises:
        ValueError: when ``x`` is not positive definite.
    """
    try:
        factor = _l.Cholesky.apply(x)
    except np.linalg.LinAlgError as err:
        raise ValueError(f"Cholesky decomposition failed: the input must be symmetric "
                         f"positive definite. Received: x.shape={shape(x)}") from err
    return swapaxes(factor, -1, -2) if upper else factor


def cholesky_inverse(x, upper=False):
    """``inv(A)`` from ``A``'s Cholesky factor ``x`` (lower, or upper with ``upper=True``)."""
    n = shape(x)[-1]
    eye_ = np.broadcast_to(np.eye(n, dtype=np.asarray(_data(x)).dtype), tuple(shape(x)))
    lower = swapaxes(x, -1, -2) if upper else x
    linv = _l.SolveTriangular.apply(lower, eye_, lower=True)
    return matmul(swapaxes(linv, -1, -2), linv)


def matrix_rank(x, tol=None):
    """Number of singular values of each matrix above ``tol`` (numpy's default tolerance)."""
    return constant(np.linalg.matrix_rank(np.asarray(_data(x)), tol=tol).astype(np.int32))


export(globals(), __all__)
