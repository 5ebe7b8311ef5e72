"""Products: matrix products and contractions."""

from __future__ import annotations

from lamina.backend import primitives as _p
from lamina.ops._common import export
from lamina.ops._common import static_shape as shape
from lamina.ops.manipulation import reshape, squeeze

__all__ = ["dot", "matmul"]


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


export(globals(), __all__)
