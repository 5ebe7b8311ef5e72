"""TensorFlow graph tensors (what a ``tf.data.Dataset.map`` function is traced with) are
refused with a message naming the receiver; eager tensor-likes still convert. The
TensorFlow classes are imitated by duck typing: Lamina's tests never import TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

import lamina as keras
from lamina.backend.foreign_tensors import is_graph_tensor, reject_graph_tensor


class SymbolicTensor:
    """Like ``tensorflow.python.framework.ops.SymbolicTensor``: a graph, no values."""

    graph = "FuncGraph"
    shape = (None, 2)
    dtype = "float32"

    def __array__(self, dtype=None, copy=None):
        raise NotImplementedError("Cannot convert a symbolic tf.Tensor to a numpy array.")

    def __repr__(self):
        return "<tf.Tensor 'args_0:0' shape=(None, 2) dtype=float32>"


SymbolicTensor.__module__ = "tensorflow.python.framework.ops"


class EagerTensor:
    """Like an eager ``tf.Tensor``: values through ``numpy()``/``__array__``."""

    def __init__(self, values):
        self._values = np.asarray(values, dtype="float32")

    def numpy(self):
        return self._values

    def __array__(self, dtype=None, copy=None):
        return self._values if dtype is None else self._values.astype(dtype)


EagerTensor.__module__ = "tensorflow.python.framework.ops"


class NotTensorFlow:
    graph = "mine"


def test_graph_tensors_are_recognised_by_duck_typing():
    assert is_graph_tensor(SymbolicTensor())
    assert not is_graph_tensor(EagerTensor([1.0]))
    assert not is_graph_tensor(NotTensorFlow())
    assert not is_graph_tensor(np.zeros(2))
    reject_graph_tensor(EagerTensor([1.0]), "x")  # no error


def test_a_layer_called_in_a_graph_names_itself_and_the_tensor():
    layer = keras.layers.Dense(3, name="head")
    with pytest.raises(TypeError, match=r"layer 'head' received a symbolic tf\.Tensor.*"
                       r"Received: <tf\.Tensor 'args_0:0'.*iterate the dataset"):
        layer(SymbolicTensor())


def test_a_layer_takes_an_eager_tensor_like():
    layer = keras.layers.Rescaling(2.0)
    np.testing.assert_allclose(layer(EagerTensor([[1.0, 2.0]])).numpy(), [[2.0, 4.0]])


def test_a_feature_space_called_in_a_graph_names_the_feature():
    feature_space = keras.utils.FeatureSpace({"fare": "float_normalized"})
    feature_space.adapt({"fare": np.array([1.0, 2.0, 3.0], "float32")})
    with pytest.raises(TypeError, match=r"FeatureSpace's feature 'fare' received a "
                       r"symbolic tf\.Tensor"):
        feature_space({"fare": SymbolicTensor()})
    out = feature_space({"fare": EagerTensor([1.0, 3.0])})
    np.testing.assert_allclose(np.asarray(out).ravel(), [-1.2247449, 1.2247449], rtol=1e-5)
