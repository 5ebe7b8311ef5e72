"""StackedRNNCells with RNN (built-in and user cells) and the use_cudnn argument.

A Keras-written StackedRNNCells model is loaded in test_keras_model_files.py.
"""

import inspect

import numpy as np
import pytest

import lamina
from lamina import layers, ops
from lamina.testing import run_layer_test


class MinimalCell(layers.Layer):
    """The user cell of Keras's RNN guide: ``h = tanh(x @ W + h @ U)``."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                name="recurrent_kernel")
        self.built = True

    def call(self, inputs, states):
        h = ops.tanh(ops.add(ops.matmul(inputs, self.kernel),
                             ops.matmul(states[0], self.recurrent_kernel)))
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class _StackedRNN(layers.RNN):
    """RNN over a fixed stack, so run_layer_test can rebuild it from plain kwargs."""

    def __init__(self, **kwargs):
        kwargs.pop("cell", None)
        cells = layers.StackedRNNCells([layers.SimpleRNNCell(3), layers.LSTMCell(2)])
        super().__init__(cells, **kwargs)


def test_run_layer_test():
    run_layer_test(_StackedRNN, {"return_sequences": True}, input_shape=(2, 4, 3),
                   expected_output_shape=(2, 4, 2), expected_num_trainable_weights=6,
                   expected_num_params=(3 * 3 + 3 * 3 + 3) + (3 * 8 + 2 * 8 + 8))


def test_stack_equals_the_layers_one_after_the_other():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 4)).astype("float32")
    stacked = layers.RNN(layers.StackedRNNCells([layers.LSTMCell(3), layers.GRUCell(2)]),
                         return_state=True)
    out, h1, c1, h2 = stacked(x)
    first = layers.LSTM(3, return_sequences=True, return_state=True)
    second = layers.GRU(2, return_state=True)
    seq, fh, fc = first(x)
    last, gh = second(seq)
    first.set_weights(stacked.get_weights()[:3])
    second.set_weights(stacked.get_weights()[3:])
    seq, fh, fc = first(x)
    last, gh = second(seq)
    for a, b in ((out, last), (h1, fh), (c1, fc), (h2, gh)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_user_cells_stack_and_round_trip_through_a_model_file(tmp_path):
    custom = {"MinimalCell": MinimalCell}
    inputs = lamina.Input((4, 3))
    cells = layers.StackedRNNCells([MinimalCell(5), MinimalCell(2)])
    model = lamina.Model(inputs, layers.RNN(cells)(inputs))
    assert model.output_shape == (None, 2)
    x = np.random.default_rng(1).standard_normal((3, 4, 3)).astype("float32")
    path = str(tmp_path / "stacked.keras")
    model.save(path)
    again = lamina.models.load_model(path, custom_objects=custom)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="non-empty"):
        layers.StackedRNNCells([])
    with pytest.raises(ValueError, match="state_size"):
        layers.StackedRNNCells([layers.Dense(2)])


def test_inner_cells_dropout_applies_in_training_only():
    x = np.random.default_rng(4).standard_normal((4, 5, 3)).astype("float32")
    cells = [layers.LSTMCell(4, dropout=0.5, seed=1),
             layers.GRUCell(3, recurrent_dropout=0.5, seed=2)]
    rnn = layers.RNN(layers.StackedRNNCells(cells))
    base = rnn(x).numpy()
    trained = rnn(x, training=True).numpy()
    assert not np.allclose(trained, base)
    np.testing.assert_array_equal(rnn(x).numpy(), base)  # no mask survives the call
    # Without dropout in any cell, training and inference agree.
    plain = layers.RNN(layers.StackedRNNCells([layers.SimpleRNNCell(3, dropout=0.0),
                                               layers.SimpleRNNCell(2, dropout=0.0)]))
    np.testing.assert_array_equal(plain(x, training=True).numpy(), plain(x).numpy())


@pytest.mark.parametrize("cls", [layers.LSTM, layers.GRU])
def test_use_cudnn(cls):
    assert inspect.signature(cls).parameters["use_cudnn"].default == "auto"
    assert cls(2, use_cudnn=False)(np.ones((1, 3, 2), "float32")).shape == (1, 2)
    with pytest.raises(ValueError, match="use_cudnn=True"):
        cls(2, use_cudnn=True)
    with pytest.raises(ValueError, match="use_cudnn='yes'"):
        cls(2, use_cudnn="yes")


def test_masked_steps_repeat_the_last_cells_output():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 3)).astype("float32")
    mask = np.array([[True, True, False, True], [True, True, True, True]])
    rnn = layers.RNN(layers.StackedRNNCells([layers.SimpleRNNCell(5), layers.GRUCell(2)]),
                     return_sequences=True)
    out = rnn(x, mask=mask).numpy()
    assert out.shape == (2, 4, 2)
    np.testing.assert_array_equal(out[0, 2], out[0, 1])
    assert not np.allclose(out[0, 3], out[0, 2])
