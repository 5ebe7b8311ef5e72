"""Spatial reshaping layers: UpSampling1D/2D, ZeroPadding1D/2D, Cropping1D/2D against
slow numpy references."""

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.testing import run_layer_test


def _upsample_ref(x, axes, sizes):
    for a, s in zip(axes, sizes):
        x = np.repeat(x, s, axis=a)
    return x


@pytest.mark.parametrize("cls, kwargs, shape, out_shape, reference", [
    (layers.UpSampling1D, {"size": 3}, (2, 3, 4), (2, 9, 4),
     lambda x: _upsample_ref(x, [1], [3])),
    (layers.UpSampling2D, {"size": (2, 3)}, (2, 3, 4, 2), (2, 6, 12, 2),
     lambda x: _upsample_ref(x, [1, 2], [2, 3])),
    (layers.UpSampling2D, {"size": 2, "data_format": "channels_first"}, (2, 2, 3, 4),
     (2, 2, 6, 8), lambda x: _upsample_ref(x, [2, 3], [2, 2])),
    (layers.ZeroPadding1D, {"padding": 2}, (2, 3, 4), (2, 7, 4),
     lambda x: np.pad(x, ((0, 0), (2, 2), (0, 0)))),
    (layers.ZeroPadding1D, {"padding": (0, 1)}, (2, 3, 4), (2, 4, 4),
     lambda x: np.pad(x, ((0, 0), (0, 1), (0, 0)))),
    (layers.ZeroPadding2D, {"padding": 1}, (2, 3, 4, 2), (2, 5, 6, 2),
     lambda x: np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))),
    (layers.ZeroPadding2D, {"padding": ((1, 2), (0, 3)), "data_format": "channels_first"},
     (2, 2, 3, 4), (2, 2, 6, 7), lambda x: np.pad(x, ((0, 0), (0, 0), (1, 2), (0, 3)))),
    (layers.Cropping1D, {"cropping": (1, 2)}, (2, 6, 3), (2, 3, 3), lambda x: x[:, 1:-2]),
    (layers.Cropping1D, {"cropping": 1}, (2, 6, 3), (2, 4, 3), lambda x: x[:, 1:-1]),
    (layers.Cropping2D, {"cropping": ((1, 0), (2, 1))}, (2, 5, 6, 3), (2, 4, 3, 3),
     lambda x: x[:, 1:, 2:-1]),
    (layers.Cropping2D, {"cropping": 1, "data_format": "channels_first"}, (2, 3, 5, 6),
     (2, 3, 3, 4), lambda x: x[:, :, 1:-1, 1:-1]),
])
def test_layer(cls, kwargs, shape, out_shape, reference):
    # Keras: reshaping layers have no weights.
    layer = run_layer_test(cls, kwargs, input_shape=shape, expected_output_shape=out_shape,
                           expected_num_trainable_weights=0, expected_num_params=0,
                           run_training_check=False)
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    np.testing.assert_array_equal(layer(x).numpy(), reference(x))


def test_symbolic_shapes_with_unknown_sizes():
    inp = lamina.Input((None, 4))
    assert layers.UpSampling1D(2)(inp).shape == (None, None, 4)
    assert layers.ZeroPadding1D(1)(inp).shape == (None, None, 4)
    assert layers.Cropping1D(1)(inp).shape == (None, None, 4)


@pytest.mark.parametrize("make, error, message", [
    (lambda: layers.UpSampling2D(interpolation="bilinear"), ValueError, "nearest"),
    (lambda: layers.ZeroPadding2D(padding=(1, 2, 3)), ValueError, "padding"),
    (lambda: layers.ZeroPadding1D(padding=-1), ValueError, "non-negative"),
    (lambda: layers.Cropping2D(data_format="nhwc"), ValueError, "data_format"),
])
def test_rejects_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_cropping_everything_is_rejected():
    with pytest.raises(ValueError, match="removes the whole axis"):
        layers.Cropping1D((2, 2))(np.ones((1, 4, 2)))


def test_wrong_rank_is_rejected():
    with pytest.raises(ValueError, match="expected ndim=4"):
        layers.UpSampling2D()(np.ones((1, 4, 2)))
