"""Regularization layers: SpatialDropout1D/2D, GaussianNoise, GaussianDropout, AlphaDropout,
ActivityRegularization (Dropout itself is covered in test_core.py)."""

import numpy as np
import pytest

from lamina import layers
from lamina.testing import check_gradients, run_layer_test


@pytest.mark.parametrize("cls, kwargs, shape", [
    (layers.SpatialDropout1D, {"rate": 0.5}, (4, 3, 5)),
    (layers.SpatialDropout2D, {"rate": 0.5}, (2, 3, 3, 4)),
    (layers.SpatialDropout2D, {"rate": 0.5, "data_format": "channels_first"}, (2, 4, 3, 3)),
    (layers.GaussianNoise, {"stddev": 0.5, "seed": 1}, (4, 5)),
    (layers.GaussianDropout, {"rate": 0.3, "seed": 1}, (4, 5)),
    (layers.AlphaDropout, {"rate": 0.3, "seed": 1}, (4, 5)),
    (layers.ActivityRegularization, {"l1": 0.1, "l2": 0.2}, (4, 5)),
])
def test_layer(cls, kwargs, shape):
    # Keras: none of these layers has weights.
    run_layer_test(cls, kwargs, input_shape=shape, expected_output_shape=shape,
                   expected_num_trainable_weights=0, expected_num_non_trainable_weights=0,
                   expected_num_params=0, supports_masking=True, run_training_check=False)


@pytest.mark.parametrize("cls, kwargs", [
    (layers.SpatialDropout1D, {"rate": 0.5}), (layers.SpatialDropout2D, {"rate": 0.5}),
    (layers.GaussianNoise, {"stddev": 0.5}), (layers.GaussianDropout, {"rate": 0.5}),
    (layers.AlphaDropout, {"rate": 0.5}),
])
def test_identity_at_inference(cls, kwargs):
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 4) if "2D" in cls.__name__
                                                  else (2, 3, 4)).astype("float32")
    np.testing.assert_array_equal(cls(**kwargs)(x).numpy(), x)
    np.testing.assert_array_equal(cls(**kwargs)(x, training=False).numpy(), x)


def test_spatial_dropout_1d_drops_whole_channels():
    x = np.ones((8, 6, 10), dtype="float32")
    out = layers.SpatialDropout1D(0.5, seed=3)(x, training=True).numpy()
    # Each (sample, channel) column is all 0 or all 2 along time.
    assert np.all((out == 0).all(axis=1) | (out == 2).all(axis=1))
    assert 0 < (out == 0).mean() < 1


@pytest.mark.parametrize("data_format, shape, axes", [
    ("channels_last", (4, 5, 5, 6), (1, 2)), ("channels_first", (4, 6, 5, 5), (2, 3))])
def test_spatial_dropout_2d_drops_whole_feature_maps(data_format, shape, axes):
    x = np.ones(shape, dtype="float32")
    out = layers.SpatialDropout2D(0.5, data_format=data_format, seed=4)(x, training=True).numpy()
    assert np.all((out == 0).all(axis=axes) | (out == 2).all(axis=axes))
    assert 0 < (out == 0).mean() < 1


def test_spatial_dropout_rejects_wrong_rank():
    with pytest.raises(ValueError, match="expected ndim=3"):
        layers.SpatialDropout1D(0.5)(np.ones((2, 3)), training=True)


def test_gaussian_noise_statistics():
    x = np.zeros((200, 100), dtype="float32")
    noise = layers.GaussianNoise(0.3, seed=0)(x, training=True).numpy()
    assert abs(noise.mean()) < 0.01
    assert abs(noise.std() - 0.3) < 0.01


def test_gaussian_dropout_statistics():
    x = np.ones((200, 100), dtype="float32")
    out = layers.GaussianDropout(0.2, seed=0)(x, training=True).numpy()
    assert abs(out.mean() - 1) < 0.01
    assert abs(out.std() - np.sqrt(0.2 / 0.8)) < 0.01


def _alpha_dropout_reference(x, kept, rate):
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    alpha_p = -alpha * scale
    a = ((1 - rate) * (1 + rate * alpha_p ** 2)) ** -0.5
    b = -a * alpha_p * rate
    return a * np.where(kept, x, alpha_p) + b


def test_alpha_dropout_matches_keras_formula_and_keeps_selu_statistics():
    x = np.random.default_rng(1).standard_normal((400, 250)).astype("float32")
    layer = layers.AlphaDropout(0.2, seed=7)
    out = layer(x, training=True).numpy()
    kept = np.random.default_rng(7).random(x.shape) >= 0.2
    np.testing.assert_allclose(out, _alpha_dropout_reference(x, kept, 0.2), rtol=1e-5,
                               atol=1e-5)
    assert abs(out.mean()) < 0.02 and abs(out.std() - 1) < 0.02


@pytest.mark.parametrize("cls, kwargs", [
    (layers.GaussianNoise, {"stddev": 0.5}), (layers.GaussianDropout, {"rate": 0.5}),
    (layers.AlphaDropout, {"rate": 0.5}), (layers.SpatialDropout1D, {"rate": 0.5}),
])
def test_training_mode_gradients(cls, kwargs):
    x = np.random.default_rng(2).standard_normal((3, 4, 5))
    layer = cls(seed=11, dtype="float64", **kwargs)

    def fn(x):
        layer.seed_generator = type(layer.seed_generator)(11)  # same noise every call
        return layer(x, training=True)

    check_gradients(fn, [x], rtol=1e-6)


def test_activity_regularization_adds_the_keras_loss():
    x = np.array([[1.0, -2.0], [3.0, 0.5]], dtype="float32")
    layer = layers.ActivityRegularization(l1=0.1, l2=0.01)
    np.testing.assert_array_equal(layer(x).numpy(), x)
    (loss,) = layer.losses
    expected = (0.1 * np.abs(x).sum() + 0.01 * (x ** 2).sum()) / 2  # divided by batch size
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-6)
    config = layer.get_config()
    assert config["l1"] == 0.1 and config["l2"] == 0.01 and "activity_regularizer" not in config


@pytest.mark.parametrize("make", [
    lambda: layers.GaussianNoise(stddev=-0.1), lambda: layers.GaussianDropout(rate=1.5),
    lambda: layers.AlphaDropout(rate=-1), lambda: layers.SpatialDropout1D(rate=1.0),
])
def test_rejects_bad_rates(make):
    with pytest.raises(ValueError, match="Received"):
        make()
