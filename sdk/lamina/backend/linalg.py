"""Linear-algebra primitives on the last two axes (batched), each forward with its VJP.

Batched matrices are ``(..., n, n)``; right-hand sides ``(..., n, k)``. The backward
formulas are the standard matrix-calculus ones (Giles, "An extended collection of matrix
derivative results", 2008; Murray 2016 for the Cholesky factor).
"""

from __future__ import annotations

import numpy as np

from lamina.backend.autodiff import Function


def _t(a):
    return np.swapaxes(a, -1, -2)


def _tri_solve(a, b, lower):
    # A triangular system solved as a general one: exact for triangular ``a`` (numpy has
    # no triangular solver and Lamina takes no scipy at runtime).
    a = np.tril(a) if lower else np.triu(a)
    return np.linalg.solve(a, b)


class Inv(Function):
    """``inv(a)``; ``grad_a = -inv(a)^T g inv(a)^T``."""

    __slots__ = ("y",)

    def forward(self, a):
        self.y = np.linalg.inv(a)
        return self.y

    def backward(self, g):
        yt = _t(self.y)
        return (-(yt @ g @ yt),)


class Det(Function):
    """``det(a)``; ``grad_a = g * det(a) * inv(a)^T``."""

    __slots__ = ("a", "d")

    def forward(self, a):
        self.a, self.d = a, np.linalg.det(a)
        return self.d

    def backward(self, g):
        gd = (np.asarray(g) * self.d)[..., None, None]
        return ((gd * _t(np.linalg.inv(self.a))).astype(self.a.dtype),)


class Solve(Function):
    """``x = solve(a, b)``; ``grad_b = solve(a^T, g)``, ``grad_a = -grad_b x^T``."""

    __slots__ = ("a", "x")

    def forward(self, a, b):
        self.a, self.x = a, np.linalg.solve(a, b)
        return self.x

    def backward(self, g):
        gb = np.linalg.solve(_t(self.a), g)
        ga = -(gb @ _t(self.x)) if self.needs[0] else None
        return ga, gb


class SolveTriangular(Function):
    """``x = a^-1 b`` for triangular ``a`` (only its ``lower``/upper triangle is read)."""

    __slots__ = ("a", "x", "lower")

    def forward(self, a, b, lower=False):
        self.a, self.lower = a, lower
        self.x = _tri_solve(a, b, lower)
        return self.x

    def backward(self, g):
        gb = _tri_solve(_t(self.a), g, not self.lower)
        ga = None
        if self.needs[0]:
            full = -(gb @ _t(self.x))
            ga = np.tril(full) if self.lower else np.triu(full)
        return ga, gb


class Cholesky(Function):
    """Lower factor ``l`` of ``a = l l^T`` (``a`` symmetric positive definite).

    The backward is symmetric: ``a``'s two triangles share each gradient entry.
    """

    __slots__ = ("l",)

    def forward(self, a):
        self.l = np.linalg.cholesky(a)
        return self.l

    def backward(self, g):
        l = self.l  # noqa: E741
        p = _t(l) @ g
        p = np.tril(p) - 0.5 * np.eye(p.shape[-1], dtype=p.dtype) * p
        linv = np.linalg.inv(l)
        s = _t(linv) @ p @ linv
        return (0.5 * (s + _t(s)),)


class LogDet(Function):
    """``log|det(a)|`` (numpy's ``slogdet``); ``grad_a = g * inv(a)^T``."""

    __slots__ = ("a",)

    def forward(self, a):
        self.a = a
        return np.linalg.slogdet(a)[1]

    def backward(self, g):
        ginv = _t(np.linalg.inv(self.a))
        return ((np.asarray(g)[..., None, None] * ginv).astype(self.a.dtype),)


def _off_diagonal_inverse(d):
    """``F[..., i, j] = 1 / (d_j - d_i)`` off the diagonal, 0 on it.

    Equal values (a degenerate spectrum) make the factors' gradient undefined; their
    entries are left infinite, as the exact formula is.
    """
    diff = d[..., None, :] - d[..., :, None]
    with np.errstate(divide="ignore"):
        f = 1.0 / diff
    idx = np.arange(d.shape[-1])
    f[..., idx, idx] = 0.0
    return f


class _Factor(Function):
    """One output of a matrix factorisation computed once by the op.

    ``apply(a, factors=..., index=i)`` returns ``factors[i]``. A factorisation's VJP is
    linear in the cotangents of its outputs, so the VJP of the joint output is the sum of
    the VJPs of each output taken alone: each factor is its own node, and ``_vjp``
    receives the cotangent of output ``index`` with the others zero.
    """

    __slots__ = ("factors", "index")

    def forward(self, a, factors, index):
        self.factors, self.index = factors, index
        return factors[index]

    def backward(self, g):
        cot = [None] * len(self.factors)
        cot[self.index] = g
        return self._vjp(*self.factors, *cot), None

    def _vjp(self, *args):  # pragma: no cover - interface
        raise NotImplementedError


class SvdFactor(_Factor):
    """``u``, ``s`` or ``vh`` of ``a = u diag(s) vh`` (reduced, or square full).

    Backward (Townsend, "Differentiating the singular value decomposition", 2016):
    ``a_bar = u [J s + diag(s_bar) + s K] vh + (I - u u^T) u_bar s^-1 vh
    + u s^-1 v_bar^T (I - v v^T)`` with ``J = F o (u^T u_bar - u_bar^T u)``,
    ``K = F o (v^T v_bar - v_bar^T v)``, ``F_ij = 1 / (s_j^2 - s_i^2)``. Needs distinct
    nonzero singular values when ``u`` or ``vh`` carries a gradient.
    """

    __slots__ = ()

    def _vjp(self, u, s, vh, gu, gs, gvh):
        k = s.shape[-1]
        if (gu is not None and np.any(gu[..., k:])) or (gvh is not None and
                                                        np.any(gvh[..., k:, :])):
            raise NotImplementedError(
                "The gradient of `svd` through the extra columns of `full_matrices=True` "
                "factors of a non-square matrix is not defined; use full_matrices=False.")
        u, v = u[..., :, :k], _t(vh[..., :k, :])
        if gs is None:
            out = np.zeros(u.shape[:-1] + (v.shape[-2],), dtype=u.dtype)
        else:
            out = (u * gs[..., None, :]) @ _t(v)
        if gu is None and gvh is None:
            return out
        f = _off_diagonal_inverse(s * s)
        inv_s = 1.0 / s
        if gu is not None:
            gu = gu[..., :, :k]
            j = f * (_t(u) @ gu - _t(gu) @ u)
            out = out + u @ (j * s[..., None, :]) @ _t(v)
            proj = gu - u @ (_t(u) @ gu)
            out = out + (proj * inv_s[..., None, :]) @ _t(v)
        if gvh is not None:
            gv = _t(gvh[..., :k, :])
            kk = f * (_t(v) @ gv - _t(gv) @ v)
            out = out + u @ (s[..., :, None] * kk) @ _t(v)
            proj = gv - v @ (_t(v) @ gv)
            out = out + (u * inv_s[..., None, :]) @ _t(proj)
        return out


class EighFactor(_Factor):
    """``w`` or ``v`` of symmetric ``a = v diag(w) v^T``.

    Backward: ``a_bar = v (diag(w_bar) + F o (v^T v_bar)) v^T``,
    ``F_ij = 1 / (w_j - w_i)`` (distinct eigenvalues when ``v`` carries a gradient).
    """

    __slots__ = ()

    def _vjp(self, w, v, gw, gv):
        inner = np.zeros(v.shape, dtype=v.dtype)
        if gw is not None:
            idx = np.arange(w.shape[-1])
            inner[..., idx, idx] = gw
        if gv is not None:
            inner = inner + _off_diagonal_inverse(w) * (_t(v) @ gv)
        return v @ inner @ _t(v)


class QrFactor(_Factor):
    """``q`` or ``r`` of ``a = q r`` for ``a`` of shape ``(..., m, n)``, ``m >= n`` (reduced, or
    complete with a gradient only through the first ``n`` columns of ``q``).

    Backward (Walter & Lehmann 2018; as in PyTorch): with ``M = r r_bar^T - q_bar^T q``,
    ``a_bar = (q_bar + q copyltu(M)) r^-T``; ``copyltu`` mirrors the lower triangle of
    ``M`` onto the upper one.
    """

    __slots__ = ()

    def _vjp(self, q, r, gq, gr):
        n = r.shape[-1]
        if gq is not None and np.any(gq[..., n:]):
            raise NotImplementedError(
                "The gradient of `qr` through the columns of a mode='complete' `q` beyond "
                "the input's column count is not defined (they are not unique); use "
                "mode='reduced'.")
        # A complete factorisation's extra rows of r are identically zero: no gradient.
        q, r = q[..., :, :n], r[..., :n, :]
        gq = np.zeros_like(q) if gq is None else gq[..., :, :n]
        gr = np.zeros_like(r) if gr is None else gr[..., :n, :]
        m = r @ _t(gr) - _t(gq) @ q
        copy = np.tril(m) + _t(np.tril(m, -1))
        x = gq + q @ copy
        return _t(np.linalg.solve(r, _t(x)))
