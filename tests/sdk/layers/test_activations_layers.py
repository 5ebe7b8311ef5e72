"""Activation layers: ReLU, LeakyReLU, PReLU, ELU, Softmax (with masks)."""

import numpy as np
import pytest

from lamina import layers
from lamina.testing import run_layer_test

# Values away from the kinks, so that central differences are well defined.
X = np.array([[-2.5, -0.7, 0.35, 0.9, 1.6, 3.1]], dtype="float32")


def _relu_ref(x, max_value=None, negative_slope=0.0, threshold=0.0):
    out = np.where(x >= threshold, x, negative_slope * (x - threshold))
    return np.where(x >= max_value, max_value, out) if max_value is not None else out


@pytest.mark.parametrize("cls, kwargs, reference", [
    (layers.ReLU, {}, _relu_ref),
    (layers.ReLU, {"max_value": 1.0}, lambda x: _relu_ref(x, max_value=1.0)),
    (layers.ReLU, {"negative_slope": 0.1, "threshold": 0.5},
     lambda x: _relu_ref(x, negative_slope=0.1, threshold=0.5)),
    (layers.ReLU, {"max_value": 2.0, "negative_slope": 0.2, "threshold": 0.5},
     lambda x: _relu_ref(x, 2.0, 0.2, 0.5)),
    (layers.LeakyReLU, {}, lambda x: np.where(x > 0, x, 0.3 * x)),
    (layers.LeakyReLU, {"negative_slope": 0.05}, lambda x: np.where(x > 0, x, 0.05 * x)),
    (layers.ELU, {}, lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    (layers.ELU, {"alpha": 0.5}, lambda x: np.where(x > 0, x, 0.5 * (np.exp(x) - 1))),
    (layers.Softmax, {}, lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
])
def test_layer(cls, kwargs, reference):
    layer = run_layer_test(cls, kwargs, input_data=X, expected_output_shape=X.shape,
                           expected_num_trainable_weights=0, expected_num_params=0,
                           supports_masking=True, run_training_check=False)
    np.testing.assert_allclose(layer(X).numpy(), reference(X.astype(np.float64)),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs, shape, alpha_shape, n_params", [
    # Keras: PReLU's alpha has the input's shape (without batch), shared axes set to 1.
    ({}, (2, 3, 4), (3, 4), 12),
    ({"shared_axes": [1]}, (2, 3, 4), (1, 4), 4),
    ({"shared_axes": [1, 2], "alpha_initializer": "ones"}, (2, 3, 3, 4), (1, 1, 4), 4),
])
def test_prelu(kwargs, shape, alpha_shape, n_params):
    layer = run_layer_test(layers.PReLU, kwargs, input_shape=shape,
                           expected_output_shape=shape, expected_num_trainable_weights=1,
                           expected_num_params=n_params)
    assert layer.alpha.name == "alpha" and layer.alpha.shape == alpha_shape
    alpha = np.random.default_rng(0).standard_normal(alpha_shape)
    layer.set_weights([alpha])
    x = np.random.default_rng(1).standard_normal(shape).astype("float32")
    np.testing.assert_allclose(layer(x).numpy(), np.where(x > 0, x, alpha * x), rtol=1e-5)


def test_softmax_mask_gives_masked_positions_zero_probability():
    x = np.random.default_rng(2).standard_normal((2, 4)).astype("float32")
    mask = np.array([[1, 1, 0, 1], [0, 1, 1, 0]], dtype=bool)
    out = layers.Softmax()(x, mask=mask).numpy()
    expected = np.where(mask, np.exp(x), 0)
    np.testing.assert_allclose(out, expected / expected.sum(-1, keepdims=True), atol=1e-6)


def test_softmax_over_several_axes():
    x = np.random.default_rng(3).standard_normal((2, 3, 4)).astype("float32")
    out = layers.Softmax(axis=[1, 2])(x).numpy()
    e = np.exp(x.astype(np.float64))
    np.testing.assert_allclose(out, e / e.sum(axis=(1, 2), keepdims=True), rtol=1e-5)


@pytest.mark.parametrize("make, message", [
    (lambda: layers.ReLU(max_value=-1), "max_value"),
    (lambda: layers.ReLU(negative_slope=-0.1), "negative_slope"),
    (lambda: layers.ReLU(threshold=-1), "threshold"),
    (lambda: layers.LeakyReLU(negative_slope=None), "cannot be None or negative"),
])
def test_rejects_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_leaky_relu_accepts_the_keras2_alpha_with_a_warning():
    with pytest.warns(UserWarning, match="`alpha` is deprecated"):
        layer = layers.LeakyReLU(alpha=0.1)
    assert layer.negative_slope == 0.1
