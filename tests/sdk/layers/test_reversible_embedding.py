"""ReversibleEmbedding (reverse calls against Keras are in test_keras_layer_fixtures.py)."""

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.testing import check_gradients, run_layer_test


@pytest.mark.parametrize("kwargs, n_weights, n_params", [
    ({"input_dim": 6, "output_dim": 3}, 1, 18),
    ({"input_dim": 6, "output_dim": 3, "tie_weights": False}, 2, 36),
])
def test_run_layer_test_forward(kwargs, n_weights, n_params):
    run_layer_test(layers.ReversibleEmbedding, kwargs, input_shape=(2, 4), input_dtype="int32",
                   expected_output_shape=(2, 4, 3), expected_num_trainable_weights=n_weights,
                   expected_num_params=n_params)


def test_reverse_is_the_transposed_table_and_soft_cap():
    layer = layers.ReversibleEmbedding(5, 3, logit_soft_cap=2.0)
    vectors = layer(np.array([[0, 4]]))
    table = layer.embeddings.numpy()
    np.testing.assert_allclose(vectors.numpy()[0], table[[0, 4]])
    logits = layer(vectors, reverse=True).numpy()
    np.testing.assert_allclose(logits, 2.0 * np.tanh(vectors.numpy() @ table.T / 2.0),
                               rtol=1e-5)


def test_reverse_gradients_reach_the_tied_table():
    rng = np.random.default_rng(0)
    layer = layers.ReversibleEmbedding(5, 3, dtype="float64")
    layer.build()
    check_gradients(lambda x, table: layer(x, reverse=True),
                    [rng.standard_normal((2, 3)), layer.embeddings])


def test_masks_and_symbolic_reverse():
    layer = layers.ReversibleEmbedding(5, 3, mask_zero=True)
    out = layer(np.array([[1, 0, 2]]))
    np.testing.assert_array_equal(out._keras_mask, [[True, False, True]])
    assert getattr(layer(out, reverse=True), "_keras_mask", None) is None
    ids = lamina.Input((4,), dtype="int32")
    vectors = layer(ids)
    logits = layer(vectors, reverse=True)
    assert vectors.shape == (None, 4, 3) and logits.shape == (None, 4, 5)
    model = lamina.Model(ids, logits)
    assert model.predict(np.array([[1, 2, 3, 4]]), verbose=0).shape == (1, 4, 5)


def test_config_and_errors():
    layer = layers.ReversibleEmbedding(5, 3, tie_weights=False, reverse_dtype="float32",
                                       logit_soft_cap=30.0)
    config = layer.get_config()
    assert (config["tie_weights"], config["reverse_dtype"], config["logit_soft_cap"]) == (
        False, "float32", 30.0)
    assert layers.ReversibleEmbedding.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="logit_soft_cap=-1"):
        layers.ReversibleEmbedding(5, 3, logit_soft_cap=-1)
