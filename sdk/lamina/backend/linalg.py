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
