"""Pooling layers: direct-loop references, float64 gradients, shapes, config, aliases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lamina import layers
from lamina.testing import run_layer_test


def ref_pool(x, pool, strides, padding, mode):
    """Direct loops over output cells; with "same" padding only real cells count (TF)."""
    pads = []
    for n, k, s in zip(x.shape[1:-1], pool, strides):
        total = max((-(-n // s) - 1) * s + k - n, 0) if padding == "same" else 0
        pads.append(total // 2)
    out_shape = [-(-n // s) if padding == "same" else (n - k) // s + 1
                 for n, k, s in zip(x.shape[1:-1], pool, strides)]
    out = np.zeros((x.shape[0], *out_shape, x.shape[-1]))
    for b, c in itertools.product(range(x.shape[0]), range(x.shape[-1])):
        for pos in itertools.product(*map(range, out_shape)):
            cells = [x[(b, *idx, c)] for idx in itertools.product(*(
                range(max(p * s - lo, 0), min(p * s - lo + k, n))
                for p, s, lo, k, n in zip(pos, strides, pads, pool, x.shape[1:-1])))]
            out[(b, *pos, c)] = max(cells) if mode == "max" else sum(cells) / len(cells)
    return out


LAYER_CASES = [
    (layers.MaxPooling2D, {}, (2, 6, 6, 3), (2, 3, 3, 3)),
    (layers.MaxPooling2D, {"pool_size": 3, "strides": 2, "padding": "same"}, (2, 5, 6, 2),
     (2, 3, 3, 2)),
    (layers.MaxPooling2D, {"pool_size": (2, 3), "strides": 1, "data_format": "channels_first"},
     (1, 2, 5, 5), (1, 2, 4, 3)),
    (layers.MaxPooling1D, {"pool_size": 3, "strides": 1, "padding": "same"}, (2, 7, 2),
     (2, 7, 2)),
    (layers.MaxPooling3D, {}, (1, 4, 4, 4, 2), (1, 2, 2, 2, 2)),
    (layers.AveragePooling2D, {}, (2, 7, 5, 3), (2, 3, 2, 3)),
    (layers.AveragePooling2D, {"pool_size": 2, "padding": "same"}, (2, 5, 5, 2), (2, 3, 3, 2)),
    (layers.AveragePooling1D, {"pool_size": 4, "strides": 3, "padding": "same",
                               "data_format": "channels_first"}, (2, 2, 8), (2, 2, 3)),
    (layers.AveragePooling3D, {"pool_size": 2, "strides": 1}, (1, 3, 3, 3, 2), (1, 2, 2, 2, 2)),
    (layers.GlobalAveragePooling2D, {}, (2, 4, 5, 3), (2, 3)),
    (layers.GlobalAveragePooling2D, {"keepdims": True, "data_format": "channels_first"},
     (2, 3, 4, 5), (2, 3, 1, 1)),
    (layers.GlobalMaxPooling2D, {}, (2, 4, 5, 3), (2, 3)),
    (layers.GlobalMaxPooling1D, {"keepdims": True}, (2, 6, 3), (2, 1, 3)),
    (layers.GlobalAveragePooling1D, {"data_format": "channels_first"}, (2, 3, 6), (2, 3)),
    (layers.GlobalAveragePooling3D, {}, (1, 2, 3, 2, 4), (1, 4)),
    (layers.GlobalMaxPooling3D, {"keepdims": True}, (1, 2, 3, 2, 4), (1, 1, 1, 1, 4)),
]


@pytest.mark.parametrize("cls, kwargs, input_shape, output_shape", LAYER_CASES)
def test_layer(cls, kwargs, input_shape, output_shape):
    # Keras figures: pooling layers have no weights (0 parameters).
    run_layer_test(cls, kwargs, input_shape=input_shape, expected_output_shape=output_shape,
                   expected_num_trainable_weights=0, expected_num_non_trainable_weights=0,
                   expected_num_params=0, run_training_check=False)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("pool, strides, padding, input_shape", [
    ((2, 2), None, "valid", (2, 6, 6, 3)),
    ((2, 2), None, "valid", (2, 7, 5, 3)),
    ((2, 2), None, "same", (2, 7, 5, 3)),
    ((3, 3), (1, 1), "same", (2, 5, 6, 2)),
    ((3, 2), (2, 1), "valid", (2, 7, 6, 2)),
    ((2, 2), (3, 3), "valid", (2, 8, 8, 2)),
])
def test_pool2d_matches_direct_loops(mode, pool, strides, padding, input_shape):
    x = np.random.default_rng(0).standard_normal(input_shape).astype("float32")
    cls = layers.MaxPooling2D if mode == "max" else layers.AveragePooling2D
    got = cls(pool, strides, padding)(x).data
    want = ref_pool(x.astype(np.float64), pool, strides or pool, padding, mode)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool1d_channels_first_matches_direct_loops(mode):
    x = np.random.default_rng(1).standard_normal((2, 3, 9)).astype("float32")
    cls = layers.MaxPooling1D if mode == "max" else layers.AveragePooling1D
    got = cls(3, 2, "same", data_format="channels_first")(x).data
    want = ref_pool(x.transpose(0, 2, 1).astype(np.float64), (3,), (2,), "same", mode)
    np.testing.assert_allclose(got, want.transpose(0, 2, 1), rtol=1e-5, atol=1e-6)


def test_global_pooling_values():
    x = np.random.default_rng(2).standard_normal((2, 4, 5, 3)).astype("float32")
    np.testing.assert_allclose(layers.GlobalAveragePooling2D()(x).data, x.mean(axis=(1, 2)),
                               rtol=1e-6)
    np.testing.assert_array_equal(layers.GlobalMaxPooling2D()(x).data, x.max(axis=(1, 2)))


def test_global_average_pooling_1d_leaves_masked_steps_out():
    x = np.random.default_rng(3).standard_normal((2, 5, 3)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    got = layers.GlobalAveragePooling1D()(x, mask=mask).data
    np.testing.assert_allclose(got[0], x[0, :3].mean(0), rtol=1e-6)
    np.testing.assert_allclose(got[1], x[1].mean(0), rtol=1e-6)


def test_aliases_are_the_keras_classes():
    assert layers.MaxPool2D is layers.MaxPooling2D and layers.MaxPool1D is layers.MaxPooling1D
    assert layers.AvgPool2D is layers.AveragePooling2D
    assert layers.AvgPool1D is layers.AveragePooling1D
    assert layers.GlobalAvgPool2D is layers.GlobalAveragePooling2D
    assert layers.GlobalAvgPool1D is layers.GlobalAveragePooling1D
    assert layers.GlobalMaxPool2D is layers.GlobalMaxPooling2D
    assert layers.GlobalMaxPool1D is layers.GlobalMaxPooling1D


def test_defaults_match_keras():
    pool = layers.MaxPooling2D()
    assert (pool.pool_size, pool.strides, pool.padding, pool.data_format) == (
        (2, 2), (2, 2), "valid", "channels_last")
    assert layers.AveragePooling1D(3).strides == (3,)
    assert layers.MaxPooling2D(3, 1).strides == (1, 1)


def test_compute_output_shape_is_none_safe():
    assert layers.MaxPooling2D().compute_output_shape((None, None, 9, 3)) == (None, None, 4, 3)
    assert layers.AveragePooling1D(2, padding="same").compute_output_shape((None, None, 4)) == (
        None, None, 4)
    assert layers.GlobalAveragePooling2D().compute_output_shape((None, None, None, 8)) == (
        None, 8)


@pytest.mark.parametrize("make, match", [
    (lambda: layers.MaxPooling2D(padding="causal"), "padding='causal'"),
    (lambda: layers.MaxPooling2D((2, 2, 2)), "pool_size"),
    (lambda: layers.AveragePooling2D(2, 0), "strides"),
    (lambda: layers.GlobalMaxPooling2D(data_format="nhwc"), "data_format='nhwc'"),
])
def test_bad_arguments_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()
