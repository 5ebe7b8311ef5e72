"""``keras.applications.mobilenet``: MobileNet v1 (Howard et al., 2017)."""

from __future__ import annotations

import warnings

from lamina import layers
from lamina.applications import _common, imagenet_utils
from lamina.applications.imagenet_utils import decode_predictions

__all__ = ["MobileNet", "decode_predictions", "preprocess_input"]

BASE_WEIGHT_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"
_SIZES = (128, 160, 192, 224)
_ALPHA_TEXT = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}
# (pointwise filters, strides) of depthwise blocks 1..13
_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
           (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def _conv_block(inputs, filters, alpha, kernel=(3, 3), strides=(1, 1)):
    x = layers.Conv2D(int(filters * alpha), kernel, padding="same", use_bias=False,
                      strides=strides, name="conv1")(inputs)
    x = layers.BatchNormalization(axis=-1, name="conv1_bn")(x)
    return layers.ReLU(6.0, name="conv1_relu")(x)


def _depthwise_conv_block(inputs, pointwise_conv_filters, alpha, depth_multiplier=1,
                          strides=(1, 1), block_id=1):
    x = inputs
    if strides != (1, 1):
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block_id}")(x)
    x = layers.DepthwiseConv2D((3, 3), padding="same" if strides == (1, 1) else "valid",
                               depth_multiplier=depth_multiplier, strides=strides,
                               use_bias=False, name=f"conv_dw_{block_id}")(x)
    x = layers.BatchNormalization(axis=-1, name=f"conv_dw_{block_id}_bn")(x)
    x = layers.ReLU(6.0, name=f"conv_dw_{block_id}_relu")(x)
    x = layers.Conv2D(int(pointwise_conv_filters * alpha), (1, 1), padding="same",
                      use_bias=False, strides=(1, 1), name=f"conv_pw_{block_id}")(x)
    x = layers.BatchNormalization(axis=-1, name=f"conv_pw_{block_id}_bn")(x)
    return layers.ReLU(6.0, name=f"conv_pw_{block_id}_relu")(x)


def MobileNet(input_shape=None, alpha=1.0, depth_multiplier=1, dropout=1e-3,  # noqa: N802
              include_top=True, weights="imagenet", input_tensor=None, pooling=None,
              classes=1000, classifier_activation="softmax", name=None):
    """Instantiate MobileNet (v1).

    Args:
        input_shape: optional ``(rows, cols, 3)``; sizes at least 32. ImageNet weights
            exist for square inputs of 128, 160, 192 and 224.
        alpha: width multiplier of every layer's filters (0.25, 0.5, 0.75 or 1.0 for
            ImageNet weights).
        depth_multiplier: depthwise channel multiplier (1 for ImageNet weights).
        dropout: dropout rate before the classifier.
        include_top: whether to include the classifier (a 1x1 convolution).
        weights: None, ``"imagenet"`` (Keras's published weights, cached in
            ``~/.keras/models``) or the path of a weights file.
        input_tensor: optional Keras tensor to use as the image input.
        pooling: ``None``, ``"avg"`` or ``"max"`` when ``include_top`` is False.
        classes: number of classes for the classifier.
        classifier_activation: activation of the top layer (None gives logits).
        name: the model's name; by default ``mobilenet_<alpha>_<rows>``.

    Returns:
        A functional :class:`~lamina.Model`.

    Raises:
        ValueError: for invalid ``weights``, ``classes``, ``input_shape``, or ``alpha``/
            ``depth_multiplier`` without ImageNet weights for them.
    """
    _common.check_weights_arg(weights, include_top, classes)
    default_size = 224
    if input_shape is not None:
        rows, cols = input_shape[0], input_shape[1]
        if rows == cols and rows in _SIZES:
            default_size = rows
    img_shape = imagenet_utils.obtain_input_shape(input_shape, default_size, 32,
                                                  "channels_last", include_top, weights)
    rows, cols = img_shape[0], img_shape[1]
    if weights == "imagenet":
        if depth_multiplier != 1:
            raise ValueError("If imagenet weights are being loaded, depth multiplier must "
                             f"be 1.  Received depth_multiplier={depth_multiplier}")
        if alpha not in _ALPHA_TEXT:
            raise ValueError("If imagenet weights are being loaded, alpha can be one of"
                             "`0.25`, `0.50`, `0.75` or `1.0` only.  "
                             f"Received alpha={alpha}")
        if rows != cols or rows not in _SIZES:
            rows = 224
            warnings.warn("`input_shape` is undefined or non-square, or `rows` is not in "
                          "[128, 160, 192, 224]. Weights for input shape (224, 224) will be "
                          "loaded as the default.", stacklevel=2)
    img_input = _common.make_input(input_tensor, img_shape)
    x = _conv_block(img_input, 32, alpha, strides=(2, 2))
    for block_id, (filters, stride) in enumerate(_BLOCKS, start=1):
        x = _depthwise_conv_block(x, filters, alpha, depth_multiplier,
                                  strides=(stride, stride), block_id=block_id)
    if include_top:
        x = layers.GlobalAveragePooling2D(keepdims=True)(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Conv2D(classes, (1, 1), padding="same", name="conv_preds")(x)
        x = layers.Reshape((classes,), name="reshape_2")(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = layers.Activation(activation=classifier_activation, name="predictions")(x)
    else:
        x = _common.pooling_top(x, False, pooling, classes, classifier_activation, weights)
    if name is None:
        name = f"mobilenet_{alpha:0.2f}_{rows}"
    model = _common.build_model(input_tensor, img_input, x, name)
    if weights == "imagenet":
        tail = "tf.h5" if include_top else "tf_no_top.h5"
        file_name = f"mobilenet_{_ALPHA_TEXT[alpha]}_{rows}_{tail}"
        return _common.load_weights(model, weights, file_name, BASE_WEIGHT_PATH + file_name)
    return _common.load_weights(model, weights)


def preprocess_input(x, data_format=None):
    """Scale pixels to ``[-1, 1]`` ("tf" mode of
    :func:`lamina.applications.imagenet_utils.preprocess_input`)."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")
