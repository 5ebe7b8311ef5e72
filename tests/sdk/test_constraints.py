"""Constraints against hand-computed Keras formulas, and applied by the optimizer."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import constraints
from lamina.backend import Variable

W = np.array([[3.0, -0.5], [4.0, 0.5]], dtype=np.float32)  # column norms 5.0 and 0.707
NORMS = np.sqrt((W**2).sum(axis=0, keepdims=True))


@pytest.mark.parametrize(("constraint", "expected"), [
    (constraints.MaxNorm(), W * np.minimum(NORMS, 2) / (1e-7 + NORMS)),
    (constraints.MaxNorm(max_value=1, axis=1),
     W * np.minimum(np.sqrt((W**2).sum(1, keepdims=True)), 1)
     / (1e-7 + np.sqrt((W**2).sum(1, keepdims=True)))),
    (constraints.NonNeg(), np.maximum(W, 0)),
    (constraints.UnitNorm(), W / (1e-7 + NORMS)),
    (constraints.MinMaxNorm(min_value=1.0, max_value=2.0, rate=0.5),
     W * (0.5 * np.clip(NORMS, 1, 2) + 0.5 * NORMS) / (1e-7 + NORMS)),
])
def test_values(constraint, expected):
    out = constraint(Variable(W))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize("name", ["max_norm", "non_neg", "unit_norm", "min_max_norm",
                                  "MaxNorm"])
def test_registry_round_trip(name):
    c = constraints.get(name)
    again = constraints.deserialize(constraints.serialize(c))
    assert type(again) is type(c) and again.get_config() == c.get_config()


def test_unknown_name():
    with pytest.raises(ValueError, match="'positive'"):
        constraints.get("positive")
