"""name_scope, SymbolicScope and StatelessScope as Keras 3.15.1 behaves (paths and values
below were read from real Keras with the same calls)."""

from __future__ import annotations

import numpy as np
import pytest

import lamina as keras
from lamina.backend.scopes import in_stateless_scope, in_symbolic_scope


def test_name_scope_prefixes_variable_paths():
    with keras.name_scope("block"):
        v = keras.Variable(1.0, name="scale")
        dense = keras.layers.Dense(2, name="dense")
        dense.build((None, 3))
    assert v.path == "block/scale"
    assert dense.kernel.path == "block/dense/kernel"
    with keras.name_scope("a"), keras.name_scope("b", override_parent="x/y"):
        w = keras.Variable(1.0, name="s")
    assert w.path == "x/y/b/s"
    assert keras.Variable(1.0, name="free").path == "free"
    with pytest.raises(ValueError, match="cannot contain character `/`. Received: name='a/b'"):
        keras.name_scope("a/b")


def test_stateless_scope_records_writes_and_restores_the_variables():
    v = keras.Variable([1.0, 2.0])
    with keras.StatelessScope(state_mapping=[(v, np.array([3.0, 4.0]))]) as scope:
        assert in_stateless_scope()
        np.testing.assert_array_equal(v.numpy(), [3.0, 4.0])
        v.assign([5.0, 6.0])
        v.assign_add([1.0, 1.0])
        np.testing.assert_array_equal(v.numpy(), [6.0, 7.0])
    assert not in_stateless_scope()
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(scope.get_current_value(v), [6.0, 7.0])
    with pytest.raises(ValueError, match="shape"):
        keras.StatelessScope(state_mapping=[(v, np.zeros(3))])


def test_stateless_scope_collects_losses():
    class Penalised(keras.layers.Layer):
        def call(self, x):
            self.add_loss(keras.ops.sum(x))
            return x

    layer = Penalised()
    with keras.StatelessScope(collect_losses=True) as scope:
        layer(np.ones((2, 2), dtype="float32"))
    assert len(scope.losses) == 1 and float(scope.losses[0].numpy()) == 4.0
    assert layer.losses == []


def test_symbolic_scope_is_open_while_shapes_are_inferred():
    seen = []

    class Probe(keras.layers.Layer):
        def call(self, x):
            seen.append(in_symbolic_scope())
            return x

    inputs = keras.Input(shape=(3,))
    model = keras.Model(inputs, Probe()(inputs))
    assert seen and all(seen)
    seen.clear()
    model.predict(np.ones((1, 3), dtype="float32"), verbose=0)
    assert seen == [False]
    with keras.SymbolicScope():
        assert in_symbolic_scope()
