"""Embedding and Masking: lookups, Keras's weight layout, masks reaching the RNNs."""

import numpy as np
import pytest

import lamina
from lamina import layers, ops
from lamina.backend.autodiff import gradients
from lamina.testing import run_layer_test


def test_run_layer_test_embedding():
    # Keras figure: Embedding(10, 4) has 10 * 4 = 40 parameters.
    run_layer_test(layers.Embedding, {"input_dim": 10, "output_dim": 4},
                   input_shape=(2, 3), input_dtype="int32", expected_output_shape=(2, 3, 4),
                   expected_num_trainable_weights=1, expected_num_params=40)


def test_run_layer_test_masking():
    run_layer_test(layers.Masking, {"mask_value": 0.0}, input_shape=(2, 3, 4),
                   expected_output_shape=(2, 3, 4), expected_num_trainable_weights=0,
                   supports_masking=True)


def test_lookup_weight_and_gradient():
    layer = layers.Embedding(5, 3)
    ids = np.array([[1, 4, 1], [0, 2, 2]])
    out = layer(ids)
    assert [w.path for w in layer.weights] == [f"{layer.name}/embeddings"]
    table = layer.embeddings.numpy()
    np.testing.assert_array_equal(out.numpy(), table[ids])
    assert np.all(np.abs(table) <= 0.05)  # "uniform": U(-0.05, 0.05), as Keras
    (grad,) = gradients(ops.sum(out), [layer.embeddings])
    np.testing.assert_array_equal(grad[:, 0], [1, 2, 2, 0, 1])


def test_float_ids_are_cast():
    layer = layers.Embedding(5, 2)
    np.testing.assert_array_equal(layer(np.array([[1.0, 3.0]])).numpy(),
                                  layer(np.array([[1, 3]])).numpy())


def test_mask_zero_mask_and_config():
    layer = layers.Embedding(6, 2, mask_zero=True, input_length=3)
    out = layer(np.array([[3, 1, 0], [0, 0, 2]]))
    np.testing.assert_array_equal(out._keras_mask, [[True, True, False], [False, False, True]])
    assert layers.Embedding(6, 2)(np.array([[0, 1]]))._keras_mask is None
    config = layer.get_config()
    assert config["mask_zero"] is True and "input_length" not in config


@pytest.mark.parametrize("bad", [{"input_dim": 0, "output_dim": 2},
                                 {"input_dim": 3, "output_dim": -1}])
def test_invalid_dims(bad):
    with pytest.raises(ValueError, match="Received"):
        layers.Embedding(**bad)


@pytest.mark.parametrize("rnn", [layers.LSTM, layers.GRU, layers.SimpleRNN])
def test_mask_from_embedding_reaches_the_rnn(rnn):
    lamina.utils.set_random_seed(0)
    model = lamina.Sequential([lamina.Input((None,), dtype="int32"),
                               layers.Embedding(8, 4, mask_zero=True), rnn(5)])
    padded = np.array([[3, 5, 2, 0, 0, 0], [7, 1, 1, 4, 2, 6]])
    trimmed = model(padded[:1, :3]).numpy()
    np.testing.assert_allclose(model(padded).numpy()[:1], trimmed, atol=1e-6)
    # Without the mask the padding steps would change the result.
    unmasked = lamina.Sequential([lamina.Input((None,), dtype="int32"),
                                  layers.Embedding(8, 4), rnn(5)])
    unmasked.set_weights(model.get_weights())
    assert not np.allclose(unmasked(padded).numpy()[:1], trimmed, atol=1e-4)


def test_mask_propagates_through_return_sequences_in_functional_model():
    inputs = lamina.Input((None,), dtype="int32")
    x = layers.Embedding(8, 3, mask_zero=True)(inputs)
    x = layers.LSTM(4, return_sequences=True)(x)
    outputs = layers.GRU(2)(x)
    model = lamina.Model(inputs, outputs)
    ids = np.array([[1, 2, 0, 0]])
    np.testing.assert_allclose(model(ids).numpy(), model(ids[:, :2]).numpy(), atol=1e-6)


def test_masking_layer_zeroes_and_masks():
    x = np.array([[[1.0, 2.0], [0.0, 0.0], [3.0, 0.0]]], "float32")
    out = layers.Masking()(x)
    np.testing.assert_array_equal(out._keras_mask, [[True, False, True]])
    np.testing.assert_array_equal(out.numpy(), x)
    out = layers.Masking(mask_value=3.0)(np.full((1, 2, 2), 3.0, "float32"))
    np.testing.assert_array_equal(out.numpy(), 0.0)


def test_masking_feeds_lstm():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 5, 3)).astype("float32")
    x[:, 3:] = 0.0
    model = lamina.Sequential([lamina.Input((5, 3)), layers.Masking(), layers.LSTM(4)])
    np.testing.assert_allclose(model(x).numpy(), model.layers[-1](x[:, :3]).numpy(), atol=1e-6)
