"""Bidirectional and TimeDistributed: Keras's merge modes, states, weights and gradients."""

import numpy as np
import pytest

import lamina
from lamina import layers, ops
from lamina.backend.config import floatx_scope
from lamina.testing import check_gradients, run_layer_test


def _x(shape=(2, 5, 3), seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_equals_forward_and_reversed_backward(merge_mode, return_sequences):
    x = _x()
    layer = layers.Bidirectional(layers.LSTM(4, return_sequences=return_sequences),
                                 merge_mode=merge_mode)
    out = layer(x)
    forward = layers.LSTM(4, return_sequences=return_sequences)
    backward = layers.LSTM(4, return_sequences=return_sequences, go_backwards=True)
    forward(x), backward(x)
    forward.set_weights(layer.forward_layer.get_weights())
    backward.set_weights(layer.backward_layer.get_weights())
    y, y_rev = forward(x).numpy(), backward(x).numpy()
    if return_sequences:
        y_rev = y_rev[:, ::-1]
    want = {"concat": np.concatenate([y, y_rev], -1), "sum": y + y_rev, "mul": y * y_rev,
            "ave": (y + y_rev) / 2, None: [y, y_rev]}[merge_mode]
    for g, w in zip(out if isinstance(out, list) else [out],
                    want if isinstance(want, list) else [want]):
        np.testing.assert_allclose(g.numpy(), w, atol=1e-6)


def test_bidirectional_weights_names_and_params():
    gru = layers.GRU(8)
    layer = layers.Bidirectional(gru)
    layer.build((None, 5, 3))
    # Keras figure: 2 * 3*8*(3+8+2) = 624.
    assert layer.count_params() == 624
    assert layer.forward_layer.name == f"forward_{gru.name}"
    assert layer.backward_layer.name == f"backward_{gru.name}"
    assert layer.backward_layer.go_backwards
    assert [w.shape for w in layer.weights] == [(3, 24), (8, 24), (2, 24)] * 2
    assert layer.weights[0].path == f"{layer.name}/forward_{gru.name}/gru_cell/kernel"


def test_bidirectional_return_state_and_initial_state():
    x = _x()
    layer = layers.Bidirectional(layers.LSTM(3, return_state=True))
    out, fh, fc, bh, bc = layer(x)
    assert out.shape == (2, 6) and fh.shape == bc.shape == (2, 3)
    np.testing.assert_allclose(out.numpy(), np.concatenate([fh.numpy(), bh.numpy()], -1))
    states = [np.ones((2, 3), "float32")] * 4
    assert not np.allclose(layer(x, initial_state=states)[0].numpy(), out.numpy())


def test_bidirectional_mask_zeroes_padded_outputs():
    x = _x()
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    out = layers.Bidirectional(layers.SimpleRNN(2, return_sequences=True))(x, mask=mask)
    np.testing.assert_array_equal(out.numpy()[0, 3:], 0.0)
    assert np.all(out.numpy()[1] != 0)


def test_bidirectional_config_round_trip_and_training():
    run_layer_test(layers.Bidirectional, {"layer": layers.LSTM(3), "merge_mode": "sum"},
                   input_shape=(2, 4, 3), expected_output_shape=(2, 3),
                   expected_num_trainable_weights=6, run_gradient_check=False)


def test_bidirectional_gradients_with_mask():
    with floatx_scope("float64"):
        layer = layers.Bidirectional(layers.GRU(2, return_sequences=True, dtype="float64"),
                                     dtype="float64")
        x = np.random.default_rng(1).standard_normal((2, 4, 3))
        layer(x)
        mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
        check_gradients(lambda x, *w: layer(x, mask=mask), [x, *layer.trainable_weights])


def test_bidirectional_rejects_bad_arguments():
    with pytest.raises(ValueError, match="merge mode"):
        layers.Bidirectional(layers.LSTM(2), merge_mode="max")
    with pytest.raises(ValueError, match="go_backwards"):
        layers.Bidirectional(layers.LSTM(2), backward_layer=layers.LSTM(2))


def test_time_distributed_dense():
    # Keras figure: TimeDistributed(Dense(4)) on 3 features: 3*4 + 4 = 16 parameters.
    run_layer_test(layers.TimeDistributed, {"layer": layers.Dense(4)}, input_shape=(2, 5, 3),
                   expected_output_shape=(2, 5, 4), expected_num_trainable_weights=2,
                   expected_num_params=16, run_gradient_check=False)
    x = _x()
    layer = layers.TimeDistributed(layers.Dense(4))
    out = layer(x).numpy()
    for t in range(x.shape[1]):
        np.testing.assert_allclose(out[:, t], layer.layer(x[:, t]).numpy(), atol=1e-6)


def test_time_distributed_gradients_and_symbolic_shape():
    with floatx_scope("float64"):
        layer = layers.TimeDistributed(layers.Dense(2, activation="tanh", dtype="float64"),
                                       dtype="float64")
        x = np.random.default_rng(2).standard_normal((2, 3, 4))
        layer(x)
        check_gradients(lambda x, *w: layer(x), [x, *layer.trainable_weights])
    inputs = lamina.Input((7, 4))
    assert layers.TimeDistributed(layers.Dense(5))(inputs).shape == (None, 7, 5)


def test_time_distributed_after_lstm_sequences_trains():
    model = lamina.Sequential([lamina.Input((6, 3)), layers.LSTM(4, return_sequences=True),
                               layers.TimeDistributed(layers.Dense(2))])
    model.compile(optimizer="adam", loss="mse")
    x, y = _x((8, 6, 3)), _x((8, 6, 2), seed=1)
    losses = [float(model.train_on_batch(x, y)) for _ in range(20)]
    assert losses[-1] < losses[0]
    assert ops.shape(model(x)) == (8, 6, 2)


def test_time_distributed_rejects_2d():
    with pytest.raises(ValueError, match="at least 3"):
        layers.TimeDistributed(layers.Dense(2))(np.ones((2, 3), "float32"))
