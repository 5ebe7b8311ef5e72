"""ConvLSTM behaviours beyond the Keras fixtures: states, masks, dropout, errors."""

import numpy as np
import pytest

from lamina import layers


def _x(shape=(2, 4, 5, 5, 2), seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def test_stateful_is_refused_clearly():
    with pytest.raises(NotImplementedError, match="stateful=True"):
        layers.ConvLSTM2D(2, 3, stateful=True)


def test_initial_state_and_return_state_chain():
    x = _x()
    first = layers.ConvLSTM2D(3, 3, padding="same", return_state=True)
    out, h, c = first(x)
    assert out.shape == h.shape == c.shape == (2, 5, 5, 3)
    np.testing.assert_array_equal(out.numpy(), h.numpy())
    zeros = first.get_initial_state(2)
    again = first(x, initial_state=zeros)
    np.testing.assert_allclose(again[0].numpy(), out.numpy(), atol=1e-6)
    other = first(x, initial_state=[h, c])
    assert not np.allclose(other[0].numpy(), out.numpy())
    with pytest.raises(ValueError, match="expects 2 initial states"):
        first(x, initial_state=[h])


def test_masked_steps_carry_the_state():
    x = _x()
    layer = layers.ConvLSTM2D(2, 3, return_sequences=True)
    mask = np.array([[True, True, False, False], [True, True, True, True]])
    out = layer(x, mask=mask).numpy()
    np.testing.assert_array_equal(out[0, 2], out[0, 1])
    np.testing.assert_array_equal(out[0, 3], out[0, 1])
    short = layer(x[:1, :2]).numpy()
    np.testing.assert_allclose(out[0, 1], short[0, 1], atol=1e-6)


def test_dropout_only_in_training():
    x = _x(seed=1)
    layer = layers.ConvLSTM1D(3, 2, dropout=0.5, recurrent_dropout=0.5, seed=3)
    frames = x[:, :, :, 0, :]
    np.testing.assert_array_equal(layer(frames).numpy(), layer(frames, training=False).numpy())
    assert not np.allclose(layer(frames, training=True).numpy(), layer(frames).numpy())


def test_cell_properties_and_unit_forget_bias():
    layer = layers.ConvLSTM2D(2, (3, 1), strides=(1, 1), unit_forget_bias=True)
    layer(_x())
    assert layer.filters == 2 and layer.kernel_size == (3, 1)
    np.testing.assert_array_equal(layer.cell.bias.numpy(), [0, 0, 1, 1, 0, 0, 0, 0])


@pytest.mark.parametrize("kwargs, match", [
    ({"filters": 0, "kernel_size": 3}, "filters=0"),
    ({"filters": 2, "kernel_size": 3, "padding": "causal"}, "padding='causal'"),
    ({"filters": 2, "kernel_size": 3, "strides": 2, "dilation_rate": 2}, "dilation_rate"),
])
def test_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.ConvLSTM2D(**kwargs)
