"""UpSampling3D, ZeroPadding3D, Cropping3D, SpatialDropout3D against numpy references,
and the argument gaps of their 1D/2D siblings (ZeroPadding1D's data_format,
SpatialDropout1D/2D's name and dtype, the poolings' name)."""

import inspect

import numpy as np
import pytest

from lamina import layers
from lamina.testing import run_layer_test


@pytest.mark.parametrize("cls, kwargs, shape, out_shape, reference", [
    (layers.UpSampling3D, {"size": (1, 2, 3)}, (2, 2, 3, 2, 2), (2, 2, 6, 6, 2),
     lambda x: np.repeat(np.repeat(x, 2, axis=2), 3, axis=3)),
    (layers.UpSampling3D, {"size": 2, "data_format": "channels_first"}, (1, 2, 2, 1, 3),
     (1, 2, 4, 2, 6),
     lambda x: np.repeat(np.repeat(np.repeat(x, 2, axis=2), 2, axis=3), 2, axis=4)),
    (layers.ZeroPadding3D, {}, (2, 2, 3, 2, 2), (2, 4, 5, 4, 2),
     lambda x: np.pad(x, ((0, 0), (1, 1), (1, 1), (1, 1), (0, 0)))),
    (layers.ZeroPadding3D, {"padding": ((0, 1), (2, 0), (1, 1)),
                            "data_format": "channels_first"}, (1, 2, 2, 3, 2),
     (1, 2, 3, 5, 4), lambda x: np.pad(x, ((0, 0), (0, 0), (0, 1), (2, 0), (1, 1)))),
    (layers.ZeroPadding3D, {"padding": (1, 0, 2)}, (1, 2, 2, 2, 1), (1, 4, 2, 6, 1),
     lambda x: np.pad(x, ((0, 0), (1, 1), (0, 0), (2, 2), (0, 0)))),
    (layers.Cropping3D, {}, (2, 4, 5, 3, 2), (2, 2, 3, 1, 2), lambda x: x[:, 1:-1, 1:-1, 1:-1]),
    (layers.Cropping3D, {"cropping": ((1, 0), (0, 2), (1, 1)), "data_format": "channels_first"},
     (1, 2, 3, 4, 5), (1, 2, 2, 2, 3), lambda x: x[:, :, 1:, :-2, 1:-1]),
    (layers.ZeroPadding1D, {"padding": (1, 2), "data_format": "channels_first"}, (2, 3, 4),
     (2, 3, 7), lambda x: np.pad(x, ((0, 0), (0, 0), (1, 2)))),
])
def test_layer(cls, kwargs, shape, out_shape, reference):
    layer = run_layer_test(cls, kwargs, input_shape=shape, expected_output_shape=out_shape,
                           expected_num_trainable_weights=0, expected_num_params=0,
                           run_training_check=False)
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    np.testing.assert_array_equal(layer(x).numpy(), reference(x))


@pytest.mark.parametrize("data_format, keep_axes", [("channels_last", (0, 4)),
                                                    ("channels_first", (0, 1))])
def test_spatial_dropout3d_drops_whole_channels(data_format, keep_axes):
    run_layer_test(layers.SpatialDropout3D, {"rate": 0.5, "data_format": data_format},
                   input_shape=(2, 3, 2, 2, 4), expected_output_shape=(2, 3, 2, 2, 4),
                   run_training_check=False)
    x = np.ones((3, 2, 3, 2, 8), dtype="float32")
    out = layers.SpatialDropout3D(0.5, data_format=data_format, seed=3)(x, training=True)
    out = out.numpy()
    assert set(np.unique(out)) <= {0.0, 2.0} and 0 < (out == 0).mean() < 1
    spatial = tuple(a for a in range(5) if a not in keep_axes)
    assert np.all(out.min(axis=spatial) == out.max(axis=spatial))
    np.testing.assert_array_equal(layers.SpatialDropout3D(0.5)(x).numpy(), x)


def test_spatial_dropout3d_rejects_bad_input():
    with pytest.raises(ValueError, match="expected ndim=5"):
        layers.SpatialDropout3D(0.5)(np.ones((2, 3, 4, 5)), training=True)
    with pytest.raises(ValueError, match="rate=1.5"):
        layers.SpatialDropout3D(1.5)


@pytest.mark.parametrize("make, match", [
    (lambda: layers.ZeroPadding3D(padding=(1, 2)), "padding=\\(1, 2\\)"),
    (lambda: layers.ZeroPadding3D(padding=-1), "non-negative"),
    (lambda: layers.Cropping3D(cropping="a"), "cropping='a'"),
    (lambda: layers.UpSampling3D(size=(2, 0, 1)), "size=\\(2, 0, 1\\)"),
    (lambda: layers.UpSampling3D(data_format="nhwc"), "data_format='nhwc'"),
])
def test_argument_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_cropping3d_too_large():
    with pytest.raises(ValueError, match="removes the whole axis"):
        layers.Cropping3D(2)(np.ones((1, 4, 5, 5, 1)))


@pytest.mark.parametrize("cls", [
    layers.MaxPooling1D, layers.MaxPooling2D, layers.MaxPooling3D, layers.AveragePooling1D,
    layers.AveragePooling2D, layers.AveragePooling3D, layers.MaxPool2D, layers.AvgPool1D])
def test_pooling_name_is_an_explicit_parameter(cls):
    assert "name" in inspect.signature(cls).parameters
    assert cls(name="pool_a").name == "pool_a"


@pytest.mark.parametrize("cls", [layers.SpatialDropout1D, layers.SpatialDropout2D,
                                 layers.SpatialDropout3D])
def test_spatial_dropout_name_and_dtype(cls):
    layer = cls(0.25, name="sd", dtype="float64")
    assert (layer.name, layer.dtype) == ("sd", "float64")
    config = layer.get_config()
    assert config["name"] == "sd" and config["dtype"] == "float64"
    assert cls.from_config(config).get_config() == config
