"""Normalization layers: Keras's weights and parameter counts, forward against slow
numpy references, BatchNormalization's training/inference modes and moving statistics."""

import numpy as np
import pytest

from lamina import layers
from lamina.backend.config import floatx_scope
from lamina.testing import check_gradients, run_layer_test


@pytest.mark.parametrize(
    "cls, kwargs, input_shape, n_trainable, n_non_trainable, n_params",
    [
        # Keras: BatchNormalization on C channels has 4*C parameters (2*C trainable).
        (layers.BatchNormalization, {}, (4, 3, 5), 2, 2, 20),
        (layers.BatchNormalization, {"axis": 1}, (4, 3, 2, 2), 2, 2, 12),
        (layers.BatchNormalization, {"center": False}, (4, 5), 1, 2, 15),
        (layers.BatchNormalization, {"scale": False, "center": False}, (4, 5), 0, 2, 10),
        # Keras: LayerNormalization over F features has 2*F parameters.
        (layers.LayerNormalization, {}, (4, 3, 5), 2, 0, 10),
        (layers.LayerNormalization, {"axis": [1, 2]}, (4, 3, 5), 2, 0, 30),
        (layers.LayerNormalization, {"rms_scaling": True}, (4, 3, 5), 1, 0, 5),
        # Keras: GroupNormalization on C channels has 2*C parameters, whatever the groups.
        (layers.GroupNormalization, {"groups": 2}, (4, 3, 6), 2, 0, 12),
        (layers.GroupNormalization, {"groups": 3, "axis": 1}, (2, 6, 2, 2), 2, 0, 12),
        (layers.UnitNormalization, {}, (4, 5), 0, 0, 0),
        (layers.UnitNormalization, {"axis": [1, 2]}, (4, 3, 5), 0, 0, 0),
    ],
)
def test_layer(cls, kwargs, input_shape, n_trainable, n_non_trainable, n_params):
    run_layer_test(cls, kwargs, input_shape=input_shape, expected_output_shape=input_shape,
                   expected_num_trainable_weights=n_trainable,
                   expected_num_non_trainable_weights=n_non_trainable,
                   expected_num_params=n_params, supports_masking=True,
                   run_training_check=n_trainable > 0)


def test_batch_norm_weight_order_and_shapes_match_keras():
    layer = layers.BatchNormalization()
    layer.build((None, 4, 7))
    assert [w.name for w in layer.weights] == ["gamma", "beta", "moving_mean",
                                               "moving_variance"]
    assert [w.shape for w in layer.weights] == [(7,)] * 4
    assert [w.trainable for w in layer.weights] == [True, True, False, False]


def _slow_batch_norm(x, axis, gamma, beta, eps, mean=None, var=None):
    """Loop over channels: the statistics of each channel's slice, as in the paper."""
    x = np.moveaxis(x.astype(np.float64), axis, -1)
    out = np.empty_like(x)
    means, variances = [], []
    for c in range(x.shape[-1]):
        values = x[..., c]
        m = values.mean() if mean is None else mean[c]
        v = ((values - values.mean()) ** 2).mean() if var is None else var[c]
        means.append(m)
        variances.append(v)
        out[..., c] = gamma[c] * (values - m) / np.sqrt(v + eps) + beta[c]
    return np.moveaxis(out, -1, axis), np.array(means), np.array(variances)


@pytest.mark.parametrize("axis, shape", [(-1, (8, 3, 3, 4)), (1, (8, 4, 3, 3)), (-1, (16, 4))])
def test_batch_norm_training_forward_and_moving_statistics(axis, shape):
    rng = np.random.default_rng(0)
    layer = layers.BatchNormalization(axis=axis, momentum=0.9)
    layer.build(shape)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    x = (rng.standard_normal(shape) * 2 + 3).astype("float32")
    out = layer(x, training=True)
    expected, mean, var = _slow_batch_norm(x, axis, gamma, beta, 1e-3)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-5)
    # Keras: moving = moving * momentum + batch * (1 - momentum), biased batch variance.
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.9 + 0.1 * var, rtol=1e-5)
    layer(x, training=True)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.19 * mean, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axis, shape", [(-1, (8, 3, 4)), (1, (8, 4, 3, 3))])
def test_batch_norm_inference_uses_moving_statistics(axis, shape):
    rng = np.random.default_rng(1)
    layer = layers.BatchNormalization(axis=axis)
    layer.build(shape)
    mean, var = rng.standard_normal(4), rng.random(4) + 0.5
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    layer.set_weights([gamma, beta, mean, var])
    x = rng.standard_normal(shape).astype("float32")
    for out in (layer(x), layer(x, training=False)):
        expected, _, _ = _slow_batch_norm(x, axis, gamma, beta, 1e-3, mean, var)
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), mean.astype("float32"))


def test_frozen_batch_norm_runs_in_inference_mode():
    # Keras 3: a non-trainable BatchNormalization uses (and keeps) the moving statistics.
    layer = layers.BatchNormalization()
    x = np.random.default_rng(2).standard_normal((6, 3)).astype("float32") + 5
    layer.build(x.shape)
    layer.trainable = False
    out = layer(x, training=True)
    np.testing.assert_allclose(out.numpy(), x / np.sqrt(1 + 1e-3), rtol=1e-5)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), np.zeros(3))


def test_batch_norm_mask_excludes_padded_steps_from_statistics():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 3)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], dtype=bool)
    x[~mask] = 100.0
    layer = layers.BatchNormalization(momentum=0.0)
    out = layer(x, training=True, mask=mask)
    kept = x[mask]
    np.testing.assert_allclose(layer.moving_mean.numpy(), kept.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(layer.moving_variance.numpy(), kept.var(axis=0), rtol=1e-4)
    np.testing.assert_allclose(out.numpy()[mask], (kept - kept.mean(0)) / np.sqrt(
        kept.var(0) + 1e-3), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("axis, shape, masked", [(-1, (6, 2, 2, 3), False),
                                                 (1, (4, 3, 2, 2), False), (-1, (3, 4, 3), True)])
def test_batch_norm_training_gradients(axis, shape, masked):
    rng = np.random.default_rng(4)
    mask = rng.random(shape[:2]) > 0.3 if masked else None
    with floatx_scope("float64"):
        layer = layers.BatchNormalization(axis=axis)
        layer.build(shape)
        layer.gamma.assign(rng.standard_normal(3))
        layer.beta.assign(rng.standard_normal(3))
        check_gradients(lambda x, g, b: layer(x, training=True, mask=mask),
                        [rng.standard_normal(shape), layer.gamma, layer.beta], rtol=1e-6)


def test_layer_norm_forward_matches_reference():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 6)).astype("float32")
    layer = layers.LayerNormalization(axis=[1, 2], epsilon=1e-5)
    layer.build(x.shape)
    gamma, beta = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    layer.set_weights([gamma, beta])
    expected = np.empty(x.shape)
    for i in range(3):
        s = x[i].astype(np.float64)
        expected[i] = (s - s.mean()) / np.sqrt(s.var() + 1e-5) * gamma + beta
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_layer_norm_rms_scaling_matches_reference():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 5)).astype("float32")
    layer = layers.LayerNormalization(rms_scaling=True)
    layer.build(x.shape)
    gamma = rng.standard_normal(5)
    layer.set_weights([gamma])
    rms = np.sqrt((x.astype(np.float64) ** 2).mean(axis=-1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(layer(x).numpy(), x / rms * gamma, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axis, shape", [(-1, (2, 3, 4, 6)), (1, (2, 6, 3, 2))])
def test_group_norm_forward_matches_reference(axis, shape):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype("float32")
    layer = layers.GroupNormalization(groups=3, axis=axis)
    layer.build(shape)
    gamma, beta = rng.standard_normal(6), rng.standard_normal(6)
    layer.set_weights([gamma, beta])
    xc = np.moveaxis(x.astype(np.float64), axis, -1)
    expected = np.empty_like(xc)
    for n in range(shape[0]):
        for g in range(3):
            block = xc[n, ..., 2 * g: 2 * g + 2]
            expected[n, ..., 2 * g: 2 * g + 2] = (block - block.mean()) / np.sqrt(
                block.var() + 1e-3) * gamma[2 * g: 2 * g + 2] + beta[2 * g: 2 * g + 2]
    np.testing.assert_allclose(layer(x).numpy(), np.moveaxis(expected, -1, axis),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("groups, channels, message", [
    (8, 4, r"Number of groups \(8\) cannot be more than the number of channels \(4\)"),
    (3, 4, r"Number of groups \(3\) must be a multiple of the number of channels \(4\)"),
])
def test_group_norm_rejects_bad_groups(groups, channels, message):
    with pytest.raises(ValueError, match=message):
        layers.GroupNormalization(groups=groups).build((None, channels))


def test_unit_normalization_matches_reference():
    x = np.random.default_rng(8).standard_normal((4, 5)).astype("float32")
    out = layers.UnitNormalization()(x).numpy()
    np.testing.assert_allclose(out, x / np.linalg.norm(x, axis=-1, keepdims=True), rtol=1e-5)
    np.testing.assert_array_equal(layers.UnitNormalization()(np.zeros((1, 3))).numpy(), 0)


@pytest.mark.parametrize("bad", [{"epsilon": -1.0}, {"momentum": 1.5}, {"axis": "x"}])
def test_batch_norm_rejects_bad_arguments(bad):
    with pytest.raises(ValueError, match="Received"):
        layers.BatchNormalization(**bad)


def test_batch_norm_passes_masks_through():
    x = np.ones((2, 3, 4), dtype="float32")
    from lamina.backend.tensor import Tensor

    t = Tensor(x)
    t._keras_mask = np.array([[1, 1, 0], [1, 0, 0]], dtype=bool)
    out = layers.BatchNormalization()(t)
    np.testing.assert_array_equal(out._keras_mask, t._keras_mask)
