"""BatchNormalization(renorm=True): weights, config, gradients, errors.

The renorm math is checked against real Keras in test_keras_layer_fixtures.py
(batchnorm_renorm*: three calls, outputs and final statistics at 1e-5).
"""

import numpy as np
import pytest

from lamina import layers
from lamina.testing import run_layer_test


def test_run_layer_test():
    layer = run_layer_test(
        layers.BatchNormalization,
        {"renorm": True, "renorm_clipping": {"rmax": 2.0}, "renorm_momentum": 0.9},
        input_shape=(4, 3), expected_output_shape=(4, 3), expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=5, expected_num_params=21)
    assert [w.name for w in layer.weights] == [
        "gamma", "beta", "moving_mean", "moving_variance", "moving_stddev", "renorm_mean",
        "renorm_stddev"]
    config = layer.get_config()
    assert (config["renorm"], config["renorm_clipping"], config["renorm_momentum"]) == (
        True, {"rmax": 2.0}, 0.9)


def test_defaults_match_keras():
    config = layers.BatchNormalization().get_config()
    assert (config["renorm"], config["renorm_clipping"], config["renorm_momentum"]) == (
        False, None, 0.99)
    assert layers.BatchNormalization(renorm=True).get_config()["renorm_clipping"] == {}


def test_first_training_step_equals_batch_norm():
    # Fresh renorm statistics are mean 0 and stddev 1, so r = std(x) and d = mean(x): the
    # first training output is x_hat * std + mean (gamma 1, beta 0).
    x = np.random.default_rng(0).standard_normal((8, 3)).astype("float32") * 2 + 1
    layer = layers.BatchNormalization(renorm=True, epsilon=1e-3)
    out = layer(x, training=True).numpy()
    mean, var = x.mean(0), x.var(0)
    std = np.sqrt(var + 1e-3)
    x_hat = (x - mean) / std
    np.testing.assert_allclose(out, x_hat * std + mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(),
                               np.maximum(layer.moving_stddev.numpy()**2 - 1e-3, 0), rtol=1e-6)


def test_clipping_bounds_the_correction():
    x = np.random.default_rng(1).standard_normal((16, 2)).astype("float32") * 5 + 3
    layer = layers.BatchNormalization(renorm=True, center=False, scale=False,
                                      renorm_clipping={"rmax": 1.0, "rmin": 1.0, "dmax": 0.0})
    out = layer(x, training=True).numpy()
    # r = 1 and d = 0: exactly batch normalization.
    expected = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("clipping, match", [
    ({"rmax": 1.0, "bad": 2}, "invalid keys"),
    ({"rmax": 1.0, "rmin": 2.0}, "rmax should be greater than rmin"),
    ({"dmax": -1.0}, "dmax should be non-negative"),
])
def test_clipping_errors(clipping, match):
    with pytest.raises(ValueError, match=match):
        layers.BatchNormalization(renorm=True, renorm_clipping=clipping)
