"""``keras.applications.mobilenet_v2``: MobileNetV2 (Sandler et al., 2018)."""

from __future__ import annotations

import warnings

from lamina import layers
from lamina.applications import _common, imagenet_utils
from lamina.applications.imagenet_utils import decode_predictions
from lamina.backend import is_keras_tensor

__all__ = ["MobileNetV2", "decode_predictions", "preprocess_input"]

BASE_WEIGHT_PATH = ("https://storage.googleapis.com/tensorflow/keras-applications/"
                    "mobilenet_v2/")
_SIZES = (96, 128, 160, 192, 224)
_ALPHAS = (0.35, 0.50, 0.75, 1.0, 1.3, 1.4)
# (filters, stride, expansion) of inverted residual blocks 0..16
_BLOCKS = ((16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6),
           (64, 2, 6), (64, 1, 6), (64, 1, 6), (64, 1, 6), (96, 1, 6), (96, 1, 6),
           (96, 1, 6), (160, 2, 6), (160, 1, 6), (160, 1, 6), (320, 1, 6))


def _make_divisible(v, divisor, min_value=None):
    """Round ``v`` to a multiple of ``divisor``, never more than 10% below ``v``."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _bn(name):
    return layers.BatchNormalization(axis=-1, epsilon=1e-3, momentum=0.999, name=name)


def _inverted_res_block(inputs, expansion, stride, alpha, filters, block_id):
    in_channels = inputs.shape[-1]
    pointwise_filters = _make_divisible(int(filters * alpha), 8)
    x = inputs
    prefix = f"block_{block_id}_"
    if block_id:
        x = layers.Conv2D(expansion * in_channels, kernel_size=1, padding="same",
                          use_bias=False, activation=None, name=f"{prefix}expand")(x)
        x = _bn(f"{prefix}expand_BN")(x)
        x = layers.ReLU(6.0, name=f"{prefix}expand_relu")(x)
    else:
        prefix = "expanded_conv_"
    if stride == 2:
        x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, 3),
                                 name=f"{prefix}pad")(x)
    x = layers.DepthwiseConv2D(kernel_size=3, strides=stride, activation=None, use_bias=False,
                               padding="same" if stride == 1 else "valid",
                               name=f"{prefix}depthwise")(x)
    x = _bn(f"{prefix}depthwise_BN")(x)
    x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)
    x = layers.Conv2D(pointwise_filters, kernel_size=1, padding="same", use_bias=False,
                      activation=None, name=f"{prefix}project")(x)
    x = _bn(f"{prefix}project_BN")(x)
    if in_channels == pointwise_filters and stride == 1:
        return layers.Add(name=f"{prefix}add")([inputs, x])
    return x


def _default_size(input_shape, input_tensor):
    if input_shape is not None and input_tensor is not None and is_keras_tensor(input_tensor):
        if input_tensor.shape[2] != input_shape[1]:
            raise ValueError("input_tensor.shape[2] must equal input_shape[1]; Received "
                             f"`input_tensor.shape={input_tensor.shape}`, "
                             f"`input_shape={input_shape}`")
    if input_shape is None and input_tensor is not None and is_keras_tensor(input_tensor):
        rows, cols = input_tensor.shape[1], input_tensor.shape[2]
    elif input_shape is not None:
        rows, cols = input_shape[0], input_shape[1]
    else:
        return 224
    return rows if rows == cols and rows in _SIZES else 224


def MobileNetV2(input_shape=None, alpha=1.0, include_top=True, weights="imagenet",  # noqa: N802
                input_tensor=None, pooling=None, classes=1000,
                classifier_activation="softmax", name=None):
    """Instantiate MobileNetV2.

    Args:
        input_shape: optional ``(rows, cols, 3)``; sizes at least 32. ImageNet weights
            exist for square inputs of 96, 128, 160, 192 and 224.
        alpha: width multiplier (0.35, 0.5, 0.75, 1.0, 1.3 or 1.4 for ImageNet weights).
        include_top: whether to include the classifier.
        weights: None, ``"imagenet"`` (Keras's published weights, cached in
            ``~/.keras/models``) or the path of a weights file.
        input_tensor: optional Keras tensor to use as the image input.
        pooling: ``None``, ``"avg"`` or ``"max"`` when ``include_top`` is False.
        classes: number of classes for the classifier.
        classifier_activation: activation of the top layer (None gives logits).
        name: the model's name; by default ``mobilenetv2_<alpha>_<rows>``.

    Returns:
        A functional :class:`~lamina.Model`.

    Raises:
        ValueError: for invalid ``weights``, ``classes``, ``input_shape`` (or one that
            disagrees with ``input_tensor``), or an ``alpha`` without ImageNet weights.
    """
    _common.check_weights_arg(weights, include_top, classes)
    default_size = _default_size(input_shape, input_tensor)
    img_shape = imagenet_utils.obtain_input_shape(input_shape, default_size, 32,
                                                  "channels_last", include_top, weights)
    rows, cols = img_shape[0], img_shape[1]
    if weights == "imagenet":
        if alpha not in _ALPHAS:
            raise ValueError("If imagenet weights are being loaded, alpha must be one of "
                             "`0.35`, `0.50`, `0.75`, `1.0`, `1.3` or `1.4` only; Received "
                             f"`alpha={alpha}`")
        if rows != cols or rows not in _SIZES:
            rows = 224
            warnings.warn("`input_shape` is undefined or non-square, or `rows` is not in "
                          "[96, 128, 160, 192, 224]. Weights for input shape (224, 224) "
                          "will be loaded as the default.", stacklevel=2)
    img_input = _common.make_input(input_tensor, img_shape)
    x = layers.Conv2D(_make_divisible(32 * alpha, 8), kernel_size=3, strides=(2, 2),
                      padding="same", use_bias=False, name="Conv1")(img_input)
    x = layers.ReLU(6.0, name="Conv1_relu")(_bn("bn_Conv1")(x))
    for block_id, (filters, stride, expansion) in enumerate(_BLOCKS):
        x = _inverted_res_block(x, filters=filters, alpha=alpha, stride=stride,
                                expansion=expansion, block_id=block_id)
    last = _make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    x = layers.Conv2D(last, kernel_size=1, use_bias=False, name="Conv_1")(x)
    x = layers.ReLU(6.0, name="out_relu")(_bn("Conv_1_bn")(x))
    x = _common.pooling_top(x, include_top, pooling, classes, classifier_activation, weights)
    if name is None:
        name = f"mobilenetv2_{alpha:0.2f}_{rows}"
    model = _common.build_model(input_tensor, img_input, x, name)
    if weights == "imagenet":
        file_name = (f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}"
                     f"{'' if include_top else '_no_top'}.h5")
        return _common.load_weights(model, weights, file_name, BASE_WEIGHT_PATH + file_name)
    return _common.load_weights(model, weights)


def preprocess_input(x, data_format=None):
    """Scale pixels to ``[-1, 1]`` ("tf" mode of
    :func:`lamina.applications.imagenet_utils.preprocess_input`)."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")
