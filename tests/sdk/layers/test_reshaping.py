"""Reshaping layers: Permute and RepeatVector against numpy (Flatten and Reshape:
test_core.py; UpSampling, ZeroPadding, Cropping: test_resampling.py)."""

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.testing import run_layer_test


@pytest.mark.parametrize("cls, kwargs, shape, out_shape, reference", [
    (layers.Permute, {"dims": (2, 1)}, (2, 3, 4), (2, 4, 3), lambda x: x.transpose(0, 2, 1)),
    (layers.Permute, {"dims": (3, 1, 2)}, (2, 3, 4, 5), (2, 5, 3, 4),
     lambda x: x.transpose(0, 3, 1, 2)),
    (layers.RepeatVector, {"n": 3}, (2, 4), (2, 3, 4),
     lambda x: np.stack([x] * 3, axis=1)),
])
def test_layer(cls, kwargs, shape, out_shape, reference):
    # Keras: reshaping layers have no weights.
    layer = run_layer_test(cls, kwargs, input_shape=shape, expected_output_shape=out_shape,
                           expected_num_trainable_weights=0, expected_num_params=0,
                           run_training_check=False)
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    np.testing.assert_array_equal(layer(x).numpy(), reference(x))


def test_symbolic_shapes_with_unknown_sizes():
    assert layers.Permute((2, 1))(lamina.Input((None, 4))).shape == (None, 4, None)
    assert layers.RepeatVector(3)(lamina.Input((4,))).shape == (None, 3, 4)


@pytest.mark.parametrize("make, error, message", [
    (lambda: layers.Permute((1, 3)), ValueError, "must be consecutive and start from 1"),
    (lambda: layers.RepeatVector(0), TypeError, "positive integer"),
])
def test_rejects_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_wrong_rank_is_rejected():
    with pytest.raises(ValueError, match="expected ndim=2"):
        layers.RepeatVector(2)(np.ones((1, 4, 2)))
