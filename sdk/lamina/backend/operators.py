"""Python operators shared by ``Tensor`` and the symbolic ``KerasTensor``.

Each operator is the ``lamina.ops`` function of the same meaning, so ``a + b`` computes
(and records a gradient node) on Tensors and records a graph node on KerasTensors.
"""

from __future__ import annotations


def _ops():
    from lamina import ops

    return ops


class OperatorMixin:
    """``+ - * / @ ** -x abs(x) x[i] < <= > >=`` and ``.T``/``reshape``/``sum``/``mean``."""

    __slots__ = ()

    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().subtract(self, other)

    def __rsub__(self, other):
        return _ops().subtract(other, self)

    def __mul__(self, other):
        return _ops().multiply(self, other)

    def __rmul__(self, other):
        return _ops().multiply(other, self)

    def __truediv__(self, other):
        return _ops().divide(self, other)

    def __rtruediv__(self, other):
        return _ops().divide(other, self)

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __pow__(self, exponent):
        return _ops().power(self, exponent)

    def __rpow__(self, base):
        return _ops().power(base, self)

    def __neg__(self):
        return _ops().negative(self)

    def __abs__(self):
        return _ops().abs(self)

    def __getitem__(self, index):
        return _ops().getitem(self, index)

    def __lt__(self, other):
        return _ops().less(self, other)

    def __le__(self, other):
        return _ops().less_equal(self, other)

    def __gt__(self, other):
        return _ops().greater(self, other)

    def __ge__(self, other):
        return _ops().greater_equal(self, other)

    @property
    def T(self):  # noqa: N802 - numpy's name
        return _ops().transpose(self)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops().reshape(self, shape)

    def sum(self, axis=None, keepdims=False):
        return _ops().sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return _ops().mean(self, axis=axis, keepdims=keepdims)

    def astype(self, dtype):
        return _ops().cast(self, dtype)
