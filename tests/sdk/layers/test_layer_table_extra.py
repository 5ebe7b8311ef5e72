"""run_layer_test over the layers added for drop-in Keras (shapes, weight counts and
Keras's parameter counts, config round trip, float64 gradients, one training step).

Their numerics against real Keras are in test_keras_layer_fixtures.py.
"""

import numpy as np
import pytest

from lamina import layers
from lamina.testing import run_layer_test

ROWS = [
    # (class, kwargs, input shape(s), output shape, trainable weights, params)
    (layers.Conv3DTranspose, {"filters": 2, "kernel_size": 2, "strides": 2},
     (2, 2, 3, 2, 3), (2, 4, 6, 4, 2), 2, 2 * 2 * 2 * 2 * 3 + 2),
    (layers.Conv3DTranspose, {"filters": 2, "kernel_size": 3, "padding": "same",
                              "data_format": "channels_first"},
     (1, 3, 2, 3, 2), (1, 2, 2, 3, 2), 2, 27 * 2 * 3 + 2),
    (layers.RMSNormalization, {}, (2, 3, 4), (2, 3, 4), 1, 4),
    (layers.RMSNormalization, {"axis": [1, 2]}, (2, 3, 4), (2, 3, 4), 1, 12),
    (layers.AdaptiveAveragePooling1D, {"output_size": 3}, (2, 7, 2), (2, 3, 2), 0, 0),
    (layers.AdaptiveAveragePooling2D, {"output_size": (2, 3)}, (2, 5, 7, 2), (2, 2, 3, 2), 0, 0),
    (layers.AdaptiveAveragePooling3D, {"output_size": 2, "data_format": "channels_first"},
     (1, 2, 3, 4, 5), (1, 2, 2, 2, 2), 0, 0),
    (layers.AdaptiveMaxPooling1D, {"output_size": 2}, (2, 5, 3), (2, 2, 3), 0, 0),
    (layers.AdaptiveMaxPooling2D, {"output_size": 2}, (2, 4, 5, 1), (2, 2, 2, 1), 0, 0),
    (layers.AdaptiveMaxPooling3D, {"output_size": (1, 2, 2)}, (1, 3, 4, 4, 2),
     (1, 1, 2, 2, 2), 0, 0),
    (layers.AdditiveAttention, {}, [(2, 3, 4), (2, 5, 4)], (2, 3, 4), 1, 4),
    (layers.AdditiveAttention, {"use_scale": False}, [(2, 3, 4), (2, 5, 6), (2, 5, 4)],
     (2, 3, 6), 0, 0),
    (layers.EinsumDense, {"equation": "abc,cde->abde", "output_shape": (4, 2, 3),
                          "bias_axes": "de"}, (2, 4, 5), (2, 4, 2, 3), 2, 5 * 6 + 6),
    (layers.EinsumDense, {"equation": "...b,bc->...c", "output_shape": 3, "bias_axes": "c",
                          "activation": "relu"}, (2, 3, 4), (2, 3, 3), 2, 15),
    (layers.EinsumDense, {"equation": "ab,bc->ac", "output_shape": 3, "lora_rank": 2},
     (4, 5), (4, 3), 2, 15 + 10 + 6),
    (layers.ConvLSTM1D, {"filters": 2, "kernel_size": 2, "return_sequences": True},
     (2, 3, 5, 2), (2, 3, 4, 2), 3, 2 * 2 * 8 + 2 * 2 * 8 + 8),
    (layers.ConvLSTM2D, {"filters": 2, "kernel_size": 2, "padding": "same"},
     (1, 2, 3, 3, 1), (1, 3, 3, 2), 3, 4 * 8 + 4 * 2 * 8 + 8),
    (layers.ConvLSTM3D, {"filters": 1, "kernel_size": 1, "use_bias": False,
                         "data_format": "channels_first"},
     (1, 2, 2, 2, 2, 1), (1, 1, 2, 2, 1), 2, 2 * 4 + 4),
]


@pytest.mark.parametrize("cls, kwargs, shape, out_shape, n_trainable, n_params", ROWS,
                         ids=[f"{r[0].__name__}-{i}" for i, r in enumerate(ROWS)])
def test_layer(cls, kwargs, shape, out_shape, n_trainable, n_params):
    rng = np.random.default_rng(1)
    data = ([rng.standard_normal(s).astype("float32") for s in shape]
            if isinstance(shape, list) else rng.standard_normal(shape).astype("float32"))
    run_layer_test(cls, kwargs, input_data=data, expected_output_shape=out_shape,
                   expected_num_trainable_weights=n_trainable, expected_num_params=n_params,
                   run_training_check=n_trainable > 0)


def test_adaptive_pooling_matches_bins():
    x = np.arange(7, dtype="float32").reshape(1, 7, 1)
    # PyTorch's bins for 7 -> 3: [0, 3), [2, 5), [4, 7)
    avg = layers.AdaptiveAveragePooling1D(3)(x).numpy().ravel()
    mx = layers.AdaptiveMaxPooling1D(3)(x).numpy().ravel()
    np.testing.assert_allclose(avg, [1.0, 3.0, 5.0])
    np.testing.assert_allclose(mx, [2.0, 4.0, 6.0])


@pytest.mark.parametrize("make, error, match", [
    (lambda: layers.AdaptiveAveragePooling2D((2, 3, 4)), ValueError, "length 2"),
    (lambda: layers.AdaptiveMaxPooling1D("3"), TypeError, "output_size='3'"),
    (lambda: layers.AdaptiveMaxPooling1D(0), ValueError, "output_size=0"),
    (lambda: layers.RMSNormalization(epsilon=-1.0), ValueError, "epsilon=-1.0"),
    (lambda: layers.RMSNormalization(axis="x"), TypeError, "axis='x'"),
])
def test_argument_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_rms_normalization_axis_out_of_bounds():
    with pytest.raises(ValueError, match="Axis 3 is out of bounds"):
        layers.RMSNormalization(axis=3)(np.ones((2, 3)))


def test_rms_normalization_formula():
    x = np.random.default_rng(0).standard_normal((3, 5)).astype("float32")
    layer = layers.RMSNormalization(epsilon=1e-3)
    layer(x)
    scale = np.linspace(0.5, 1.5, 5).astype("float32")
    layer.set_weights([scale])
    expected = x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + 1e-3) * scale
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5)


def test_convolution_aliases_are_the_same_classes():
    assert layers.Convolution1D is layers.Conv1D and layers.Convolution2D is layers.Conv2D
    assert layers.Convolution3D is layers.Conv3D
    assert layers.Convolution1DTranspose is layers.Conv1DTranspose
    assert layers.Convolution2DTranspose is layers.Conv2DTranspose
    assert layers.Convolution3DTranspose is layers.Conv3DTranspose
    assert layers.SeparableConvolution1D is layers.SeparableConv1D
    assert layers.SeparableConvolution2D is layers.SeparableConv2D


def test_einsum_dense_symbolic_shape_keeps_none_as_keras():
    import lamina

    x = lamina.Input((4, 5))
    y = layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 3), bias_axes="de")(x)
    assert tuple(y.shape) == (None, None, 2, 3)  # Keras 3.15.1 gives the same


@pytest.mark.parametrize("equation, output_shape, bias_axes, input_shape, kernel, bias", [
    ("ab,bc->ac", 4, "c", (None, 3), (3, 4), (4,)),
    ("abc,cd->abd", (None, 4), "d", (None, 5, 3), (3, 4), (4,)),
    ("abc,cde->abde", (None, 2, 4), "de", (None, 5, 3), (3, 2, 4), (2, 4)),
    ("abcd,cde->abe", (5, 4), "e", (None, 5, 3, 2), (3, 2, 4), (4,)),
    ("abc,cde->abde", (5, 2, 4), "b", (None, 5, 3), (3, 2, 4), (5, 1, 1)),
    ("...b,bc->...c", 4, "c", (None, 7, 3), (3, 4), (4,)),
    ("ab...,bc->ac...", 4, "c", (None, 3, 7), (3, 4), (4, 1)),
])
def test_einsum_dense_weight_shapes(equation, output_shape, bias_axes, input_shape, kernel,
                                    bias):
    from lamina.layers.einsum_dense import analyze_einsum

    got = analyze_einsum(equation, bias_axes, input_shape, output_shape)
    assert (tuple(got[0]), tuple(got[1])) == (kernel, bias)


@pytest.mark.parametrize("kwargs, match", [
    ({"equation": "ab->b", "output_shape": 2}, "equation='ab->b'"),
    ({"equation": "ab,bc->ac", "output_shape": 2, "quantization_config": "int8"},
     "quantization_config='int8'"),
    ({"equation": "ab,bc->ac", "output_shape": 2, "gptq_unpacked_column_size": 4},
     "gptq_unpacked_column_size=4"),
    ({"equation": "ab,bc->ac", "output_shape": 2, "lora_rank": 0}, "lora_rank=0"),
])
def test_einsum_dense_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.EinsumDense(**kwargs)


@pytest.mark.parametrize("equation, match", [
    ("abc,cd->abe", "Dimension 'e' was specified in the output"),
    ("abc,cdf->abd", "Weight dimension 'f' did not have a match"),
    ("a,b,c->abc", "Invalid einsum equation"),
])
def test_einsum_dense_bad_equations(equation, match):
    with pytest.raises(ValueError, match=match):
        layers.EinsumDense(equation, output_shape=(None, 4))(np.ones((2, 3, 4)))


def test_einsum_dense_bias_on_an_unknown_axis_is_refused():
    with pytest.raises(ValueError, match="give the sizes in `output_shape`"):
        layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 4), bias_axes="b").build(
            (None, 5, 3))


def test_einsum_dense_kernel_initializer_uses_einsum_fans():
    # Glorot uniform limit sqrt(6 / (fan_in + fan_out)) with fan_in = 5 (contracted c),
    # fan_out = 2 * 40 (d, e): Keras passes these axes to the initializer.
    layer = layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 40))
    layer.build((None, 3, 5))
    kernel = layer.kernel.numpy()
    limit = np.sqrt(6.0 / (5 + 80))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit
    assert layer.kernel_initializer.input_axes is None  # the config keeps the user's
