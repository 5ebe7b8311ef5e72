"""Convolution layers: Keras's weight layouts and parameter counts, direct-loop references,
float64 gradients (through ``run_layer_test``), config round trips and training steps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lamina import layers
from lamina.testing import run_layer_test


def ref_conv(x, kernel, strides, pads, dilation, groups=1):
    """Direct loops; ``x`` channels_last, ``pads`` explicit (before, after) pairs."""
    ksize = kernel.shape[:-2]
    cg, filters = kernel.shape[-2:]
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    out_shape = [(n - d * (k - 1) - 1) // s + 1
                 for n, k, s, d in zip(xp.shape[1:-1], ksize, strides, dilation)]
    out = np.zeros((x.shape[0], *out_shape, filters))
    fg = filters // groups
    for b, pos in itertools.product(range(x.shape[0]), itertools.product(*map(range, out_shape))):
        for off in itertools.product(*map(range, ksize)):
            pixel = xp[(b, *(p * s + o * d for p, o, s, d in zip(pos, off, strides, dilation)))]
            for g in range(groups):
                out[(b, *pos)][g * fg:(g + 1) * fg] += (
                    pixel[g * cg:(g + 1) * cg] @ kernel[off][:, g * fg:(g + 1) * fg])
    return out


def ref_depthwise(x, kernel, strides, pads, dilation):
    """Each input channel convolved with its own ``depth_multiplier`` filters."""
    *k, cin, mult = kernel.shape
    out = [ref_conv(x[..., c:c + 1], kernel[..., c:c + 1, :], strides, pads, dilation)
           for c in range(cin)]
    return np.concatenate(out, axis=-1)


def ref_conv_transpose(x, kernel, strides, before, out_lengths):
    """Scatter: input cell ``i`` adds ``kernel[o] @ x[i]`` at output ``i * s + o - before``."""
    ksize = kernel.shape[:-2]
    out = np.zeros((x.shape[0], *out_lengths, kernel.shape[-2]))
    cells = itertools.product(*map(range, x.shape[1:-1]))
    for b, pos in itertools.product(range(x.shape[0]), cells):
        for off in itertools.product(*map(range, ksize)):
            target = tuple(p * s + o - lo for p, s, o, lo in zip(pos, strides, off, before))
            if all(0 <= t < n for t, n in zip(target, out_lengths)):
                out[(b, *target)] += kernel[off] @ x[(b, *pos)]
    return out


def same(length, k, s=1, d=1):
    span = d * (k - 1) + 1
    total = max((-(-length // s) - 1) * s + span - length, 0)
    return total // 2, total - total // 2


# Keras figures (model.summary() of keras 3 on the same shapes):
#   Conv2D(32, 3) on 1 channel: 3*3*1*32 + 32 = 320; Conv2D(64, 3) on 32: 18,496;
#   Conv2D(64, 3, groups=4) on 32: kernel (3, 3, 8, 64) = 4,608 + 64 = 4,672;
#   Conv1D(16, 5) on 8: 5*8*16 + 16 = 656; Conv3D(4, 2) on 3: 2*2*2*3*4 + 4 = 100;
#   Conv2DTranspose(16, 3) on 8: kernel (3, 3, 16, 8) = 1,152 + 16 = 1,168;
#   Conv1DTranspose(4, 3) on 6: kernel (3, 4, 6) = 72 + 4 = 76;
#   DepthwiseConv2D(3, depth_multiplier=2) on 8: (3, 3, 8, 2) = 144 + 16 = 160;
#   DepthwiseConv1D(3) on 5: (3, 5, 1) = 15 + 5 = 20;
#   SeparableConv2D(16, 3) on 8: (3, 3, 8, 1) = 72, (1, 1, 8, 16) = 128, bias 16: 216;
#   SeparableConv1D(4, 3, depth_multiplier=2) on 3: 18 + (1, 6, 4) = 24 + 4 = 46.
KERAS_WEIGHTS = [
    (layers.Conv2D, {"filters": 32, "kernel_size": 3}, (None, 28, 28, 1),
     [("kernel", (3, 3, 1, 32)), ("bias", (32,))], 320),
    (layers.Conv2D, {"filters": 64, "kernel_size": 3}, (None, 13, 13, 32),
     [("kernel", (3, 3, 32, 64)), ("bias", (64,))], 18496),
    (layers.Conv2D, {"filters": 64, "kernel_size": 3, "groups": 4}, (None, 13, 13, 32),
     [("kernel", (3, 3, 8, 64)), ("bias", (64,))], 4672),
    (layers.Conv1D, {"filters": 16, "kernel_size": 5}, (None, 20, 8),
     [("kernel", (5, 8, 16)), ("bias", (16,))], 656),
    (layers.Conv3D, {"filters": 4, "kernel_size": 2}, (None, 4, 4, 4, 3),
     [("kernel", (2, 2, 2, 3, 4)), ("bias", (4,))], 100),
    (layers.Conv2DTranspose, {"filters": 16, "kernel_size": 3}, (None, 7, 7, 8),
     [("kernel", (3, 3, 16, 8)), ("bias", (16,))], 1168),
    (layers.Conv1DTranspose, {"filters": 4, "kernel_size": 3}, (None, 7, 6),
     [("kernel", (3, 4, 6)), ("bias", (4,))], 76),
    (layers.DepthwiseConv2D, {"kernel_size": 3, "depth_multiplier": 2}, (None, 9, 9, 8),
     [("depthwise_kernel", (3, 3, 8, 2)), ("bias", (16,))], 160),
    (layers.DepthwiseConv1D, {"kernel_size": 3}, (None, 9, 5),
     [("depthwise_kernel", (3, 5, 1)), ("bias", (5,))], 20),
    (layers.SeparableConv2D, {"filters": 16, "kernel_size": 3}, (None, 9, 9, 8),
     [("depthwise_kernel", (3, 3, 8, 1)), ("pointwise_kernel", (1, 1, 8, 16)),
      ("bias", (16,))], 216),
    (layers.SeparableConv1D, {"filters": 4, "kernel_size": 3, "depth_multiplier": 2},
     (None, 9, 3), [("depthwise_kernel", (3, 3, 2)), ("pointwise_kernel", (1, 6, 4)),
                    ("bias", (4,))], 46),
]


@pytest.mark.parametrize("cls, kwargs, input_shape, weights, params", KERAS_WEIGHTS)
def test_weight_names_shapes_and_counts_match_keras(cls, kwargs, input_shape, weights, params):
    layer = cls(**kwargs)
    layer.build(input_shape)
    assert [(w.name, w.shape) for w in layer.weights] == weights
    assert layer.count_params() == params


LAYER_CASES = [
    # (cls, kwargs, input shape, expected output shape, trainable weights)
    (layers.Conv2D, {"filters": 3, "kernel_size": 3}, (2, 5, 6, 2), (2, 3, 4, 3), 2),
    (layers.Conv2D, {"filters": 3, "kernel_size": 2, "padding": "same", "strides": 2,
                     "activation": "relu"}, (2, 5, 6, 2), (2, 3, 3, 3), 2),
    (layers.Conv2D, {"filters": 2, "kernel_size": 3, "padding": "same", "dilation_rate": 2,
                     "use_bias": False}, (1, 5, 5, 2), (1, 5, 5, 2), 1),
    (layers.Conv2D, {"filters": 4, "kernel_size": (2, 3), "groups": 2, "activation": "tanh",
                     "data_format": "channels_first"}, (2, 4, 4, 5), (2, 4, 3, 3), 2),
    (layers.Conv1D, {"filters": 3, "kernel_size": 3, "padding": "causal",
                     "dilation_rate": 2}, (2, 7, 2), (2, 7, 3), 2),
    (layers.Conv1D, {"filters": 3, "kernel_size": 4, "strides": 2, "padding": "same",
                     "data_format": "channels_first"}, (2, 2, 7), (2, 3, 4), 2),
    (layers.Conv3D, {"filters": 2, "kernel_size": 2, "padding": "same"}, (1, 3, 3, 3, 2),
     (1, 3, 3, 3, 2), 2),
    (layers.Conv2DTranspose, {"filters": 2, "kernel_size": 3, "strides": 2,
                              "padding": "same"}, (2, 3, 3, 2), (2, 6, 6, 2), 2),
    (layers.Conv2DTranspose, {"filters": 2, "kernel_size": 2, "strides": 2,
                              "output_padding": 1, "activation": "relu",
                              # Uncovered output cells equal the bias: keep it off ReLU's kink.
                              "bias_initializer": "random_normal",
                              "data_format": "channels_first"}, (1, 3, 3, 2), (1, 2, 7, 5), 2),
    (layers.Conv1DTranspose, {"filters": 2, "kernel_size": 3, "strides": 2}, (2, 4, 3),
     (2, 9, 2), 2),
    (layers.DepthwiseConv2D, {"kernel_size": 3, "depth_multiplier": 2, "padding": "same"},
     (2, 4, 4, 3), (2, 4, 4, 6), 2),
    (layers.DepthwiseConv2D, {"kernel_size": 2, "strides": 2, "data_format": "channels_first"},
     (1, 2, 5, 5), (1, 2, 2, 2), 2),
    (layers.DepthwiseConv1D, {"kernel_size": 3, "dilation_rate": 2}, (2, 7, 2), (2, 3, 2), 2),
    (layers.SeparableConv2D, {"filters": 3, "kernel_size": 3, "depth_multiplier": 2,
                              "activation": "relu"}, (2, 5, 5, 2), (2, 3, 3, 3), 3),
    (layers.SeparableConv1D, {"filters": 2, "kernel_size": 2, "padding": "same"}, (2, 6, 3),
     (2, 6, 2), 3),
]


@pytest.mark.parametrize("cls, kwargs, input_shape, output_shape, n_trainable", LAYER_CASES)
def test_layer(cls, kwargs, input_shape, output_shape, n_trainable):
    run_layer_test(cls, kwargs, input_shape=input_shape, expected_output_shape=output_shape,
                   expected_num_trainable_weights=n_trainable,
                   expected_num_non_trainable_weights=0)


@pytest.mark.parametrize("kwargs, input_shape", [
    ({"filters": 4, "kernel_size": 3}, (2, 6, 7, 3)),
    ({"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}, (2, 6, 7, 3)),
    ({"filters": 4, "kernel_size": 2, "padding": "same"}, (2, 6, 7, 3)),
    ({"filters": 4, "kernel_size": 3, "dilation_rate": 2, "padding": "same"}, (2, 7, 7, 3)),
    ({"filters": 6, "kernel_size": 3, "groups": 3, "padding": "same"}, (2, 5, 5, 6)),
    ({"filters": 4, "kernel_size": 3, "data_format": "channels_first"}, (2, 3, 6, 7)),
])
def test_conv2d_matches_direct_loops(kwargs, input_shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(input_shape).astype("float32")
    layer = layers.Conv2D(bias_initializer="random_normal", **kwargs)
    got = layer(x).data
    kernel, bias = layer.kernel.numpy().astype(np.float64), layer.bias.numpy()
    first = kwargs.get("data_format") == "channels_first"
    xl = x.transpose(0, 2, 3, 1) if first else x
    k, s, d = kernel.shape[0], kwargs.get("strides", 1), kwargs.get("dilation_rate", 1)
    pads = [same(n, k, s, d) if kwargs.get("padding") == "same" else (0, 0)
            for n in xl.shape[1:3]]
    want = ref_conv(xl.astype(np.float64), kernel, (s, s), pads, (d, d),
                    kwargs.get("groups", 1)) + bias
    if first:
        want = want.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_conv1d_causal_matches_direct_loops():
    x = np.random.default_rng(1).standard_normal((2, 9, 3)).astype("float32")
    layer = layers.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu")
    got = layer(x).data
    want = ref_conv(x.astype(np.float64), layer.kernel.numpy().astype(np.float64), (1,),
                    [(4, 0)], (2,))
    np.testing.assert_allclose(got, np.maximum(want, 0), rtol=1e-5, atol=1e-5)
    # Causal: output step t never sees input steps after t.
    x2 = x.copy()
    x2[:, 5:] += 1.0
    np.testing.assert_array_equal(layer(x2).data[:, :5], got[:, :5])


# ``before`` is TF's: a transposed conv is the input gradient of a conv whose input has
# the output's length; "same" pads that conv by total = (in - 1) * s + k - out, the
# smaller half in front (k=3, s=2, out=6: total 1, before 0; k=4, s=2, out=5: 3 -> 1).
@pytest.mark.parametrize("kwargs, input_shape, before, out_lengths", [
    ({"kernel_size": 3, "strides": 2, "padding": "same"}, (2, 3, 4, 2), (0, 0), (6, 8)),
    ({"kernel_size": 3, "strides": 2}, (2, 3, 4, 2), (0, 0), (7, 9)),
    ({"kernel_size": 2, "strides": 3}, (1, 3, 3, 2), (0, 0), (9, 9)),
    ({"kernel_size": 4, "strides": 2, "padding": "same", "output_padding": 1}, (1, 3, 3, 2),
     (1, 1), (5, 5)),
])
def test_conv2d_transpose_matches_scatter_loops(kwargs, input_shape, before, out_lengths):
    x = np.random.default_rng(2).standard_normal(input_shape).astype("float32")
    layer = layers.Conv2DTranspose(3, **kwargs)
    got = layer(x).data
    s = kwargs["strides"]
    want = ref_conv_transpose(x.astype(np.float64), layer.kernel.numpy().astype(np.float64),
                              (s, s), before, out_lengths)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_depthwise_and_separable_match_direct_loops():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 5, 3)).astype("float32")
    dw = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same",
                                bias_initializer="random_normal")
    got = dw(x).data
    want = ref_depthwise(x.astype(np.float64), dw.depthwise_kernel.numpy().astype(np.float64),
                         (1, 1), [same(6, 3), same(5, 3)], (1, 1))
    np.testing.assert_allclose(got, want + dw.bias.numpy(), rtol=1e-5, atol=1e-5)

    sep = layers.SeparableConv2D(4, 3, strides=2, depth_multiplier=2,
                                 bias_initializer="random_normal")
    got = sep(x).data
    depth = ref_depthwise(x.astype(np.float64), sep.depthwise_kernel.numpy().astype(np.float64),
                          (2, 2), [(0, 0), (0, 0)], (1, 1))
    want = depth @ sep.pointwise_kernel.numpy()[0, 0] + sep.bias.numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_symbolic_shapes_with_unknown_sizes():
    import lamina

    inputs = lamina.Input((None, None, 3))
    y = layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    assert tuple(y.shape) == (None, None, None, 8)
    assert layers.Conv2D(8, 3).compute_output_shape((None, 28, None, 3)) == (None, 26, None, 8)
    assert layers.Conv2DTranspose(8, 3, strides=2).compute_output_shape(
        (None, 7, None, 3)) == (None, 15, None, 8)
    assert layers.Conv1D(4, 3, padding="causal").compute_output_shape((None, None, 2)) == (
        None, None, 4)


@pytest.mark.parametrize("make, match", [
    (lambda: layers.Conv2D(0, 3), "filters=0"),
    (lambda: layers.Conv2D(8, (3, 3, 3)), "kernel_size"),
    (lambda: layers.Conv2D(8, 0), "kernel_size"),
    (lambda: layers.Conv2D(8, 3, padding="causal"), "padding='causal'"),
    (lambda: layers.Conv2D(8, 3, strides=2, dilation_rate=2), "dilation_rate"),
    (lambda: layers.Conv2D(6, 3, groups=4), "groups=4, filters=6"),
    (lambda: layers.Conv2D(8, 3, data_format="NHWC"), "data_format='NHWC'"),
    (lambda: layers.Conv2DTranspose(8, 3, strides=2, output_padding=2), "output_padding"),
    (lambda: layers.DepthwiseConv2D(3, depth_multiplier=0), "depth_multiplier=0"),
])
def test_bad_arguments_are_named(make, match):
    with pytest.raises(ValueError, match=match.replace("(", r"\(").replace(")", r"\)")):
        make()


def test_build_errors_name_the_shapes():
    with pytest.raises(ValueError, match="divisible by the number of groups"):
        layers.Conv2D(8, 3, groups=2).build((None, 5, 5, 3))
    with pytest.raises(ValueError, match="negative"):
        layers.Conv2D(8, 5).build((None, 3, 3, 1))
    with pytest.raises(ValueError, match="expected ndim=4"):
        layers.Conv2D(8, 3).build((None, 5, 3))
