"""``lamina.ops`` and operators on KerasTensors: op nodes of the functional graph."""

from __future__ import annotations

import numpy as np
import pytest

import lamina as keras
from lamina import layers, ops
from lamina.layers.op_layer import OpLayer


def _run(inputs, outputs, *data):
    return keras.Model(inputs, outputs).predict(list(data) if len(data) > 1 else data[0],
                                                verbose=0)


def test_operators_and_numpy_on_the_left():
    a = keras.Input(shape=(2,))
    out = (np.float32(3.0) - a) / 2.0 + 1.0 - (-a) ** 2 + abs(a)
    x = np.array([[1.0, -2.0]], dtype="float32")
    np.testing.assert_allclose(_run(a, out, x), (3 - x) / 2 + 1 - x ** 2 + np.abs(x))


def test_getitem_reduction_and_unknown_sizes():
    a = keras.Input(shape=(None, 4))
    first = a[:, 0]
    total = ops.sum(a, axis=1)
    assert first.shape == (None, 4) and total.shape == (None, 4)
    assert ops.shape(a) == (None, None, 4)
    x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    got = _run(a, [first, total], x)
    np.testing.assert_allclose(got[0], x[:, 0])
    np.testing.assert_allclose(got[1], x.sum(axis=1))


def test_dtypes_follow_the_op():
    ids = keras.Input(shape=(3,), dtype="int32")
    values = keras.Input(shape=(3,))
    best = ops.argmax(values, axis=-1)
    as_float = ops.cast(ids, "float32")
    assert best.dtype == "int32" and best.shape == (None,)  # int32, as Keras
    assert as_float.dtype == "float32"
    got = _run([ids, values], [best, as_float], np.array([[1, 2, 3]]),
               np.array([[0.1, 0.7, 0.2]], dtype="float32"))
    np.testing.assert_array_equal(got[0], [1])
    np.testing.assert_array_equal(got[1], [[1.0, 2.0, 3.0]])


def test_list_outputs_and_keyword_tensors():
    a = keras.Input(shape=(4,))
    left, right = ops.split(a, 2, axis=-1)
    joined = ops.where(ops.greater(left, right), x1=left, x2=right)
    x = np.array([[1.0, 5.0, 3.0, 2.0]], dtype="float32")
    np.testing.assert_allclose(_run(a, joined, x), [[3.0, 5.0]])


def test_op_nodes_are_not_layers_and_not_serialisable():
    a = keras.Input(shape=(2,))
    model = keras.Model(a, layers.Dense(1)(ops.exp(a)))
    assert not any(isinstance(la, OpLayer) for la in model.layers)
    assert len(model._nodes) == 2
    with pytest.raises(NotImplementedError, match="ops.exp"):
        model.to_json()


def test_ops_on_data_are_unchanged():
    assert isinstance(ops.add(np.ones(2), 1.0), keras.ops.Tensor)
    assert ops.add.__wrapped__.__name__ == "add"
