"""Which constructor calls build a functional model: Keras's `functional_init_arguments`."""

from __future__ import annotations

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.models.functional import Functional


class _ThreeArgs(lamina.Model):
    """A subclass whose own constructor takes three positional arguments and a name."""

    def __init__(self, units, hidden, extra, name="three", **kwargs):
        super().__init__(name=name, **kwargs)
        self.extra = extra
        self.hidden = layers.Dense(hidden)
        self.out = layers.Dense(units)

    def call(self, inputs):
        return self.out(self.hidden(inputs))


def test_subclass_with_three_positional_args_is_not_functional():
    model = _ThreeArgs(2, 4, "x")
    assert not isinstance(model, Functional)
    assert model.name == "three" and model.extra == "x"
    assert model(np.ones((3, 5), "float32")).shape == (3, 2)


@pytest.mark.parametrize("make", [
    lambda i, o: lamina.Model(i, o),
    lambda i, o: lamina.Model(i, outputs=o),
    lambda i, o: lamina.Model(inputs=i, outputs=o),
])
def test_functional_signatures(make):
    inputs = lamina.Input((3,))
    model = make(inputs, layers.Dense(2)(inputs))
    assert isinstance(model, Functional)
    assert model(np.ones((1, 3), "float32")).shape == (1, 2)


def test_functional_input_and_output_are_the_constructor_structures():
    a, b = lamina.Input((4,), name="a"), lamina.Input((3,), name="b")
    out = layers.Dense(2)(a)
    model = lamina.Model([a, b], {"o": out})
    assert model.input == [a, b] and model.input[0] is a
    assert model.output == {"o": out}
    # Calling the model on new tensors does not change them (first-call semantics aside).
    model([lamina.Input((4,)), lamina.Input((3,))])
    assert model.input[0] is a and model.output["o"] is out
    # A feature extractor built from them, as keras-io's VGG19 example does.
    extractor = lamina.Model(inputs=model.input, outputs=[la.output for la in model.layers])
    values = extractor([np.ones((1, 4), "float32"), np.ones((1, 3), "float32")])
    assert [tuple(v.shape) for v in values] == [(1, 4), (1, 3), (1, 2)]


class _DtypeProbe(layers.Layer):
    """Records the dtype its input arrives with."""

    def call(self, x):
        self.seen = x.dtype
        return lamina.ops.cast(x, "float32")


@pytest.mark.parametrize("dtype", ["bool", "int64", "float64"])
def test_sequential_casts_numeric_data_to_its_input_dtype(dtype):
    probe = _DtypeProbe()
    model = lamina.Sequential([lamina.Input((3,)), probe, layers.Dense(2)])
    model(np.ones((2, 3), dtype))
    assert str(probe.seen) == "float32"


def test_sequential_trains_an_lstm_on_bool_one_hot_data():
    x = np.zeros((4, 5, 3), bool)
    x[:, :, 0] = True
    model = lamina.Sequential([lamina.Input((5, 3)), layers.LSTM(4), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, np.ones((4, 1), "float32"), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
