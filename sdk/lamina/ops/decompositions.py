"""Matrix factorisations and what is built on them (Keras's ``ops.linalg``).

``qr``, ``svd`` and ``eigh`` are differentiable through :mod:`lamina.backend.linalg`'s
factor primitives (each output of a factorisation is its own node); ``pinv`` and
``lstsq`` are composed from ``svd``, and ``logdet`` is a primitive. ``eig`` (complex
results) and ``lu_factor`` (pivoted, piecewise constant permutation) return values
without a gradient, like ``numpy``'s.
"""

from __future__ import annotations

import numpy as np

from lamina.backend import linalg as _l
from lamina.ops._common import constant, export, float_dtype
from lamina.ops._common import data as _data
from lamina.ops._common import static_shape as shape
from lamina.ops.core import convert_to_tensor
from lamina.ops.manipulation import concatenate, expand_dims, getitem, squeeze, swapaxes
from lamina.ops.math import divide, multiply, where

__all__ = ["eig", "eigh", "logdet", "lstsq", "lu_factor", "pinv", "qr", "svd"]


def _float(x):
    x = convert_to_tensor(x)
    return x if np.issubdtype(x.data.dtype, np.floating) else convert_to_tensor(
        x, float_dtype(x))


def _at_least_2d(x, name="x"):
    if len(shape(x)) < 2:
        raise ValueError(f"Expected `{name}` to have rank >= 2. Received: "
                         f"{name}.shape={shape(x)}")


def qr(x, mode="reduced"):
    """QR decomposition of each matrix of ``x`` (``(..., M, N)``).

    Args:
        x: the matrices.
        mode: ``"reduced"`` (``q`` is ``(..., M, K)``, ``K = min(M, N)``) or
            ``"complete"`` (``q`` is ``(..., M, M)``).

    Returns:
        ``(q, r)``. Gradients flow through both; a gradient through the columns of a
        ``"complete"`` ``q`` beyond ``N`` (not unique) raises ``NotImplementedError``.
    """
    if mode not in {"reduced", "complete"}:
        raise ValueError("`mode` argument value not supported. Expected one of "
                         f"{{'reduced', 'complete'}}. Received: mode={mode}")
    x = _float(x)
    _at_least_2d(x)
    m, n = shape(x)[-2:]
    if m < n:
        # A wide matrix [X | Y]: X = q u is square, and r = [u | q^T Y].
        q, u = qr(getitem(x, (..., slice(None), slice(0, m))))
        v = swapaxes(q, -1, -2) @ getitem(x, (..., slice(None), slice(m, None)))
        return q, concatenate([u, v], axis=-1)
    factors = np.linalg.qr(x.data, mode=mode)
    return tuple(_l.QrFactor.apply(x, factors=factors, index=i) for i in range(2))


def svd(x, full_matrices=True, compute_uv=True):
    """Singular value decomposition ``x = u @ diag(s) @ vh`` of each matrix of ``x``.

    Args:
        x: ``(..., M, N)`` matrices.
        full_matrices: ``u`` is ``(..., M, M)`` and ``vh`` ``(..., N, N)`` (else ``K``
            columns/rows, ``K = min(M, N)``).
        compute_uv: return ``(u, s, vh)``; else only ``s``.

    Returns:
        ``(u, s, vh)`` or ``s`` (singular values in descending order). Gradients need
        distinct nonzero singular values when they flow through ``u`` or ``vh``.
    """
    x = _float(x)
    _at_least_2d(x)
    if not compute_uv:
        factors = np.linalg.svd(x.data, full_matrices=False)
        return _l.SvdFactor.apply(x, factors=factors, index=1)
    factors = np.linalg.svd(x.data, full_matrices=full_matrices)
    return tuple(_l.SvdFactor.apply(x, factors=factors, index=i) for i in range(3))


def eigh(x):
    """Eigenvalues (ascending) and eigenvectors of symmetric matrices.

    The input is symmetrised, ``(x + x^T) / 2``, as JAX's ``eigh`` does, so the gradient
    is the symmetric one; for symmetric ``x`` the values are numpy's.

    Args:
        x: ``(..., N, N)`` symmetric matrices.

    Returns:
        ``(w, v)`` with ``x @ v = v * w``; gradients through ``v`` need distinct
        eigenvalues.
    """
    x = _float(x)
    _at_least_2d(x)
    sym = multiply(x + swapaxes(x, -1, -2), np.asarray(0.5, x.data.dtype))
    factors = np.linalg.eigh(sym.data)
    return tuple(_l.EighFactor.apply(sym, factors=factors, index=i) for i in range(2))


def eig(x):
    """Eigenvalues and right eigenvectors of general square matrices, as ``np.linalg.eig``.

    Args:
        x: ``(..., N, N)`` matrices.

    Returns:
        ``(w, v)``, complex (complex64 for float32 input), without a gradient.
    """
    _at_least_2d(x)
    value = np.asarray(_data(x))
    w, v = np.linalg.eig(value)
    # complex64 for float32 (and narrower) input, as Keras's JAX backend returns.
    dtype = np.complex128 if value.dtype == np.float64 else np.complex64
    return constant(w.astype(dtype)), constant(v.astype(dtype))


def logdet(x):
    """``log(det(x))`` of each matrix, through ``slogdet`` (stable; the log of the absolute
    value for a negative determinant, as Keras's numpy backend).

    Args:
        x: ``(..., N, N)`` matrices.

    Returns:
        ``(...)`` log-determinants; the gradient is ``inv(x)^T``.
    """
    x = _float(x)
    _at_least_2d(x)
    return _l.LogDet.apply(x)


def pinv(x, rcond=None):
    """Moore-Penrose pseudo-inverse of each matrix, from its SVD.

    Args:
        x: ``(..., M, N)`` matrices.
        rcond: singular values ``<= rcond * largest`` are dropped; ``None`` uses
            numpy's ``max(M, N) * eps``.

    Returns:
        ``(..., N, M)`` pseudo-inverses, differentiable where the kept singular values are
        distinct.
    """
    x = _float(x)
    _at_least_2d(x)
    m, n = shape(x)[-2:]
    if rcond is None:
        rcond = max(m, n) * np.finfo(x.data.dtype).eps
    u, s, vh = svd(x, full_matrices=False)
    cutoff = np.asarray(rcond) * np.max(s.data, axis=-1, keepdims=True)
    keep = s.data > cutoff
    inv_s = where(keep, divide(1.0, where(keep, s, np.ones((), s.data.dtype))),
                  np.zeros((), s.data.dtype))
    return swapaxes(vh, -1, -2) @ (expand_dims(inv_s, -1) * swapaxes(u, -1, -2))


def lstsq(a, b, rcond=None):
    """Least-squares solution ``x`` minimising ``|a @ x - b|`` (minimum norm), as
    ``np.linalg.lstsq(a, b, rcond)[0]``.

    Args:
        a: ``(M, N)`` coefficient matrix.
        b: ``(M,)`` or ``(M, K)`` right-hand sides.
        rcond: cut-off ratio for small singular values of ``a`` (``None``: machine
            precision times ``max(M, N)``).

    Returns:
        ``(N,)`` or ``(N, K)``; differentiable through ``pinv(a)``.
    """
    a, b = _float(a), _float(b)
    if len(shape(a)) != 2:
        raise ValueError(f"Expected a to have rank 2. Received: a.shape={shape(a)}")
    if len(shape(b)) not in (1, 2):
        raise ValueError(f"Expected b to have rank 1 or 2. Received: b.shape={shape(b)}")
    if shape(b)[0] != shape(a)[0]:
        raise ValueError("Expected b.shape[0] to be equal to a.shape[0]. Received: "
                         f"a.shape={shape(a)}, b.shape={shape(b)}")
    p = pinv(a, rcond=rcond)
    if len(shape(b)) == 1:
        return squeeze(p @ expand_dims(b, -1), axis=-1)
    return p @ b


def lu_factor(x):
    """Pivoted LU factorisation, as ``scipy.linalg.lu_factor`` (no gradient).

    Args:
        x: ``(..., M, N)`` matrices.

    Returns:
        ``(lu, pivots)``: ``lu`` holds ``U`` in its upper triangle and the unit-diagonal
        ``L`` below it; row ``i`` was interchanged with row ``pivots[i]`` (int32).
    """
    _at_least_2d(x)
    lu = np.array(np.asarray(_data(x)), dtype=float_dtype(x), copy=True)
    m, n = lu.shape[-2:]
    k = min(m, n)
    batch = lu.shape[:-2]
    piv = np.zeros(batch + (k,), dtype=np.int32)
    rows = np.indices(batch) if batch else ()
    with np.errstate(divide="ignore", invalid="ignore"):
        for j in range(k):
            p = np.argmax(np.abs(lu[..., j:, j]), axis=-1) + j
            piv[..., j] = p
            row_j, row_p = lu[(*rows, j)].copy(), lu[(*rows, p)].copy()
            lu[(*rows, j)], lu[(*rows, p)] = row_p, row_j
            lu[..., j + 1:, j] /= lu[..., j, j][..., None]
            lu[..., j + 1:, j + 1:] -= lu[..., j + 1:, j, None] * lu[..., j, None, j + 1:]
    return constant(lu), constant(piv)


export(globals(), __all__)
