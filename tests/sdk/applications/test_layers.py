"""The applications' own layers (Keras keeps them inside keras.src.applications)."""

from __future__ import annotations

import numpy as np

from lamina.applications.convnext import LayerScale, StochasticDepth
from lamina.applications.inception_resnet_v2 import CustomScaleLayer
from lamina.backend.tensor import Tensor
from lamina.saving.registry import get_registered_name
from lamina.testing import run_layer_test


def test_custom_scale_layer():
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((2, 3, 4)).astype("float32") for _ in range(2))
    layer = run_layer_test(CustomScaleLayer, init_kwargs={"scale": 0.17}, input_data=[a, b],
                           expected_output_shape=(2, 3, 4), expected_num_params=0)
    np.testing.assert_allclose(np.asarray(layer([a, b])), a + 0.17 * b, rtol=1e-6)
    assert get_registered_name(CustomScaleLayer) == "applications>CustomScaleLayer"


def test_layer_scale():
    layer = run_layer_test(LayerScale, init_kwargs={"init_values": 1e-6, "projection_dim": 5},
                           input_shape=(2, 3, 5), expected_output_shape=(2, 3, 5),
                           expected_num_trainable_weights=1, expected_num_params=5)
    np.testing.assert_allclose(np.asarray(layer.gamma.data), np.full(5, 1e-6, "float32"))
    x = np.ones((1, 5), "float32")
    np.testing.assert_allclose(np.asarray(layer(x)), x * 1e-6, rtol=1e-6)


def test_stochastic_depth_is_identity_in_inference():
    run_layer_test(StochasticDepth, init_kwargs={"drop_path_rate": 0.3}, input_shape=(2, 3, 4),
                   expected_output_shape=(2, 3, 4), expected_num_params=0)
    x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    np.testing.assert_array_equal(np.asarray(StochasticDepth(0.3)(x)), x)


def test_stochastic_depth_drops_whole_samples_in_training():
    x = np.ones((4000, 2, 3), "float32")
    out = np.asarray(StochasticDepth(0.25)(Tensor(x), training=True).data)
    per_sample = out.reshape(4000, -1)
    kept = per_sample[:, 0] > 0
    # every sample is all kept (scaled by 1 / keep_prob) or all dropped
    assert np.all(per_sample[kept] == np.float32(1 / 0.75))
    assert np.all(per_sample[~kept] == 0)
    assert abs(kept.mean() - 0.75) < 0.03
