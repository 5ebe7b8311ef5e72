"""Regularizers: values, gradients through lamina.ops, registry."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import regularizers
from lamina.backend import Variable, gradients

W = np.array([[0.5, -1.0], [2.0, -0.25]], dtype=np.float32)


@pytest.mark.parametrize(("reg", "value", "grad"), [
    (regularizers.L1(), 0.01 * 3.75, 0.01 * np.sign(W)),
    (regularizers.L2(), 0.01 * 5.3125, 0.02 * W),
    (regularizers.L1L2(l1=0.1, l2=0.2), 0.1 * 3.75 + 0.2 * 5.3125, 0.1 * np.sign(W) + 0.4 * W),
    (regularizers.get("l2"), 0.01 * 5.3125, 0.02 * W),
])
def test_value_and_gradient(reg, value, grad):
    var = Variable(W)
    penalty = reg(var)
    assert float(penalty) == pytest.approx(value, rel=1e-6)
    (g,) = gradients(penalty, [var])
    np.testing.assert_allclose(np.asarray(g), grad, rtol=1e-6)


def test_l1_l2_string_uses_keras_defaults():
    reg = regularizers.get("l1_l2")
    assert reg.get_config() == {"l1": 0.0, "l2": 0.0}
    assert float(reg(Variable(W))) == 0.0


def test_orthogonal_regularizer():
    eye = Variable(np.eye(3, dtype=np.float32))
    assert float(regularizers.OrthogonalRegularizer()(eye)) == pytest.approx(0.0, abs=1e-7)
    ones = Variable(np.ones((2, 2), dtype=np.float32))
    assert float(regularizers.OrthogonalRegularizer(factor=1.0)(ones)) == pytest.approx(1.0)


@pytest.mark.parametrize("reg", [regularizers.L1(0.3), regularizers.L2(0.2),
                                 regularizers.L1L2(0.1, 0.2),
                                 regularizers.OrthogonalRegularizer(0.5, "columns")])
def test_config_round_trip(reg):
    again = regularizers.deserialize(regularizers.serialize(reg))
    assert type(again) is type(reg) and again.get_config() == reg.get_config()


def test_bad_values():
    with pytest.raises(ValueError, match="l2=-1"):
        regularizers.L2(-1)
    with pytest.raises(ValueError, match="'l3'"):
        regularizers.get("l3")
