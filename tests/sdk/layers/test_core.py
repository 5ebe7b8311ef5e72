"""Core layers: Dense, Activation, Dropout, Flatten, Reshape, Identity."""

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.testing import run_layer_test


@pytest.mark.parametrize(
    "cls, kwargs, input_shape, output_shape, n_trainable, n_params",
    [
        # Keras figures: Dense(units) on d inputs has d*units + units parameters.
        (layers.Dense, {"units": 3}, (2, 4), (2, 3), 2, 15),
        (layers.Dense, {"units": 3, "use_bias": False}, (2, 4), (2, 3), 1, 12),
        (layers.Dense, {"units": 5, "activation": "relu"}, (2, 3, 4), (2, 3, 5), 2, 25),
        (layers.Dense, {"units": 2, "activation": "softmax",
                        "kernel_regularizer": "l2"}, (3, 4), (3, 2), 2, 10),
        (layers.Activation, {"activation": "tanh"}, (2, 5), (2, 5), 0, 0),
        (layers.Dropout, {"rate": 0.5}, (2, 5), (2, 5), 0, 0),
        (layers.Flatten, {}, (2, 3, 4), (2, 12), 0, 0),
        (layers.Reshape, {"target_shape": (4, 3)}, (2, 12), (2, 4, 3), 0, 0),
        (layers.Reshape, {"target_shape": (-1, 2)}, (2, 3, 4), (2, 6, 2), 0, 0),
        (layers.Identity, {}, (2, 3), (2, 3), 0, 0),
    ],
)
def test_layer(cls, kwargs, input_shape, output_shape, n_trainable, n_params):
    run_layer_test(cls, kwargs, input_shape=input_shape, expected_output_shape=output_shape,
                   expected_num_trainable_weights=n_trainable,
                   expected_num_non_trainable_weights=0, expected_num_params=n_params,
                   run_training_check=n_trainable > 0)


def test_dense_weight_layout_matches_keras():
    layer = layers.Dense(7)
    layer.build((None, 3))
    assert [w.path for w in layer.weights] == [f"{layer.name}/kernel", f"{layer.name}/bias"]
    assert [w.shape for w in layer.weights] == [(3, 7), (7,)]


def test_dense_regularizer_adds_loss():
    layer = layers.Dense(2, kernel_regularizer=lamina.regularizers.L2(0.1))
    layer(np.ones((1, 3), dtype="float32"))
    (loss,) = layer.losses
    np.testing.assert_allclose(loss.item(), 0.1 * np.sum(layer.kernel.data ** 2), rtol=1e-6)


@pytest.mark.parametrize("units", [-3, 0, 2.5, "ten", True])
def test_dense_rejects_bad_units(units):
    with pytest.raises(ValueError, match=f"Received: units={units!r}"):
        layers.Dense(units)


def test_dense_wrong_input_size_names_shapes():
    layer = layers.Dense(2)
    layer(np.ones((1, 3), dtype="float32"))
    with pytest.raises(ValueError, match=r"expected axis -1 of input shape to have value 3"):
        layer(np.ones((1, 4), dtype="float32"))


def test_unknown_kwarg_is_named():
    with pytest.raises(TypeError, match="unitz"):
        layers.Dense(3, unitz=4)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 2])
def test_dropout_rejects_bad_rate(rate):
    with pytest.raises(ValueError, match=f"rate={rate!r}"):
        layers.Dropout(rate)


def test_dropout_training_only_and_scaled():
    layer = layers.Dropout(0.5, seed=3)
    x = np.ones((1000, 10), dtype="float32")
    assert np.array_equal(layer(x).data, x)
    out = layer(x, training=True).data
    assert set(np.unique(out)) <= {0.0, 2.0}
    assert 0.4 < (out == 0).mean() < 0.6


def test_auto_names_count_up():
    lamina.utils.clear_session()
    assert [layers.Dense(1).name for _ in range(3)] == ["dense", "dense_1", "dense_2"]


def test_reshape_rejects_incompatible():
    with pytest.raises(ValueError, match="target_shape"):
        layers.Reshape((5,))(np.ones((2, 6), dtype="float32"))
