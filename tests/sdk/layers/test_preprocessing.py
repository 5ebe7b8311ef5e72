"""Preprocessing Normalization (adapt, given statistics, invert) and Rescaling."""

import numpy as np
import pytest

from lamina import layers
from lamina.testing import run_layer_test


@pytest.mark.parametrize("cls, kwargs, n_non_trainable, n_params", [
    # Keras 3: an adaptable Normalization holds mean (F,), variance (F,) and count ().
    (layers.Normalization, {}, 3, 11),
    (layers.Normalization, {"mean": 1.0, "variance": 4.0}, 0, 0),
    (layers.Rescaling, {"scale": 1 / 255, "offset": -1.0}, 0, 0),
])
def test_layer(cls, kwargs, n_non_trainable, n_params):
    run_layer_test(cls, kwargs, input_shape=(4, 5), expected_output_shape=(4, 5),
                   expected_num_trainable_weights=0,
                   expected_num_non_trainable_weights=n_non_trainable,
                   expected_num_params=n_params, run_training_check=False)


def test_adapt_then_normalize_and_invert():
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((100, 3)) * [1, 2, 3] + [0, 5, -5]).astype("float32")
    layer = layers.Normalization()
    layer.adapt(data)
    np.testing.assert_allclose(layer.adapt_mean.numpy(), data.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.adapt_variance.numpy(), data.var(0), rtol=1e-5)
    out = layer(data).numpy()
    np.testing.assert_allclose(out, (data - data.mean(0)) / data.std(0), rtol=1e-4, atol=1e-4)
    inverse = layers.Normalization(mean=data.mean(0), variance=data.var(0), invert=True)
    np.testing.assert_allclose(inverse(out).numpy(), data, rtol=1e-4, atol=1e-4)


def test_adapt_over_batches_equals_adapt_over_all_data():
    data = np.random.default_rng(1).standard_normal((60, 2, 4)).astype("float32")
    whole, batched = layers.Normalization(), layers.Normalization()
    whole.adapt(data)
    batched.adapt(iter([data[:7], data[7:30], data[30:]]))
    np.testing.assert_allclose(batched.get_weights()[0], whole.get_weights()[0], rtol=1e-5)
    np.testing.assert_allclose(batched.get_weights()[1], whole.get_weights()[1], rtol=1e-5)


def test_axis_none_uses_one_scalar_statistic():
    data = np.arange(12, dtype="float32").reshape(4, 3)
    layer = layers.Normalization(axis=None)
    layer.adapt(data)
    np.testing.assert_allclose(layer(data).numpy(), (data - data.mean()) / data.std(),
                               rtol=1e-5)


def test_zero_variance_is_floored():
    layer = layers.Normalization(mean=2.0, variance=0.0)
    assert np.isfinite(layer(np.full((2, 2), 3.0)).numpy()).all()


def test_mean_without_variance_is_rejected():
    with pytest.raises(ValueError, match="both `mean` and `variance`"):
        layers.Normalization(mean=1.0)


def test_adapt_with_given_statistics_is_rejected():
    with pytest.raises(ValueError, match="Cannot `adapt`"):
        layers.Normalization(mean=1.0, variance=1.0).adapt(np.ones((2, 2)))


def test_rescaling_matches_reference_and_casts_integers():
    pixels = np.array([[0, 128, 255]], dtype="uint8")
    out = layers.Rescaling(1 / 127.5, offset=-1)(pixels)
    assert out.dtype == "float32"
    np.testing.assert_allclose(out.numpy(), pixels / 127.5 - 1, rtol=1e-6, atol=1e-6)
