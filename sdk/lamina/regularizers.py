"""Weight regularizers: penalties added to the loss, differentiable through ``lamina.ops``."""

from __future__ import annotations

import math

import numpy as np

from lamina import ops
from lamina.utils.object_family import ObjectFamily


def _check(name: str, value) -> float:
    if value is None or not isinstance(value, (int, float)) or isinstance(value, bool) or (
            math.isnan(value) or value < 0):
        raise ValueError(f"Invalid value for argument {name}: expected a non-negative float."
                         f"Received: {name}={value}")
    return float(value)


class Regularizer:
    """Base class: ``__call__(x)`` returns a scalar Tensor penalty."""

    def __call__(self, x):
        return 0.0

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x^2)`` (Keras defaults 0.0 and 0.0).

    Args:
        l1: non-negative float.
        l2: non-negative float.
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _check("l1", l1)
        self.l2 = _check("l2", l2)

    def __call__(self, x):
        total = ops.convert_to_tensor(np.float32(0.0))
        if self.l1:
            total = ops.add(total, ops.multiply(self.l1, ops.sum(ops.abs(x))))
        if self.l2:
            total = ops.add(total, ops.multiply(self.l2, ops.sum(ops.square(x))))
        return total

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """``l1 * sum(|x|)``, default ``l1=0.01``.

    Args:
        l1: non-negative float.
    """

    def __init__(self, l1=0.01):
        self.l1 = _check("l1", l1)

    def __call__(self, x):
        return ops.multiply(self.l1, ops.sum(ops.abs(x)))

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(x^2)``, default ``l2=0.01``.

    Args:
        l2: non-negative float.
    """

    def __init__(self, l2=0.01):
        self.l2 = _check("l2", l2)

    def __call__(self, x):
        return ops.multiply(self.l2, ops.sum(ops.square(x)))

    def get_config(self) -> dict:
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Encourages orthogonal rows (or columns) of a 2D kernel.

    ``factor * mean(|offdiag(N N^T)|)`` with ``N`` the L2-normalised rows (``mode="rows"``)
    or columns (``mode="columns"``).

    Args:
        factor: non-negative float, default 0.01.
        mode: ``"rows"`` or ``"columns"``.
    """

    def __init__(self, factor=0.01, mode="rows"):
        self.factor = _check("factor", factor)
        if mode not in ("rows", "columns"):
            raise ValueError("Invalid value for argument `mode`. Expected one of "
                             f"{{'rows', 'columns'}}. Received: mode={mode}")
        self.mode = mode

    def __call__(self, inputs):
        if len(inputs.shape) != 2:
            raise ValueError("Inputs to OrthogonalRegularizer must have rank 2. Received: "
                             f"inputs.shape={inputs.shape}")
        if self.mode == "columns":
            inputs = ops.transpose(inputs)
        norms = ops.sqrt(ops.maximum(ops.sum(ops.square(inputs), axis=1, keepdims=True),
                                     1e-12))
        normed = ops.divide(inputs, norms)
        size = inputs.shape[0]
        product = ops.matmul(normed, ops.transpose(normed))
        off_diagonal = ops.multiply(product, 1.0 - np.eye(size, dtype=np.float32))
        total = ops.sum(ops.abs(off_diagonal))
        return ops.multiply(self.factor, ops.divide(total, size * (size - 1)))

    def get_config(self) -> dict:
        return {"factor": self.factor, "mode": self.mode}


ALL_OBJECTS = (Regularizer, L1, L2, L1L2, OrthogonalRegularizer)
ALL_OBJECTS_DICT = {cls.__name__: cls for cls in ALL_OBJECTS}
ALL_OBJECTS_DICT.update({"l1": L1, "l2": L2, "l1_l2": L1L2,
                         "orthogonal_regularizer": OrthogonalRegularizer})
l1, l2, l1_l2, orthogonal_regularizer = L1, L2, L1L2, OrthogonalRegularizer


_FAMILY = ObjectFamily("regularizer", "keras.regularizers", ALL_OBJECTS_DICT, Regularizer)


def serialize(regularizer):
    """The Keras config envelope of ``regularizer`` (None for None).

    Args:
        regularizer: a regularizer instance (or None).

    Returns:
        ``{"module", "class_name", "config", "registered_name"}``, or None.
    """
    return _FAMILY.serialize(regularizer)


deserialize = _FAMILY.deserialize
get = _FAMILY.get
