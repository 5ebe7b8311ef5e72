"""``keras.applications.xception``: Xception (Chollet, 2017), depthwise separable blocks."""

from __future__ import annotations

from lamina import layers
from lamina.applications import _common, imagenet_utils
from lamina.applications.imagenet_utils import decode_predictions

__all__ = ["Xception", "decode_predictions", "preprocess_input"]

_ROOT = "https://storage.googleapis.com/tensorflow/keras-applications/xception/"
_HASHES = ("0a58e3b7378bc2990ea3b43d5981f1f6", "b0042744bf5b25fce3cb969f33bebb97")


def _sep_bn(x, filters, name):
    x = layers.SeparableConv2D(filters, (3, 3), padding="same", use_bias=False, name=name)(x)
    return layers.BatchNormalization(axis=-1, name=f"{name}_bn")(x)


def _down_block(x, filters, block, first_relu=True):
    """Two separable convs and a strided max-pool, plus a strided 1x1 projection."""
    residual = layers.Conv2D(filters[1], (1, 1), strides=(2, 2), padding="same",
                             use_bias=False)(x)
    residual = layers.BatchNormalization(axis=-1)(residual)
    if first_relu:
        x = layers.Activation("relu", name=f"block{block}_sepconv1_act")(x)
    x = _sep_bn(x, filters[0], f"block{block}_sepconv1")
    x = layers.Activation("relu", name=f"block{block}_sepconv2_act")(x)
    x = _sep_bn(x, filters[1], f"block{block}_sepconv2")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name=f"block{block}_pool")(x)
    return layers.add([x, residual])


def Xception(include_top=True, weights="imagenet", input_tensor=None,  # noqa: N802
             input_shape=None, pooling=None, classes=1000, classifier_activation="softmax",
             name="xception"):
    _common.check_weights_arg(weights, include_top, classes)
    img_input = _common.image_input(input_tensor, input_shape, 299, 71, include_top, weights)
    x = layers.Conv2D(32, (3, 3), strides=(2, 2), use_bias=False, name="block1_conv1")(img_input)
    x = layers.BatchNormalization(axis=-1, name="block1_conv1_bn")(x)
    x = layers.Activation("relu", name="block1_conv1_act")(x)
    x = layers.Conv2D(64, (3, 3), use_bias=False, name="block1_conv2")(x)
    x = layers.BatchNormalization(axis=-1, name="block1_conv2_bn")(x)
    x = layers.Activation("relu", name="block1_conv2_act")(x)
    x = _down_block(x, (128, 128), 2, first_relu=False)
    x = _down_block(x, (256, 256), 3)
    x = _down_block(x, (728, 728), 4)
    for i in range(8):
        residual = x
        prefix = f"block{i + 5}"
        for k in (1, 2, 3):
            x = layers.Activation("relu", name=f"{prefix}_sepconv{k}_act")(x)
            x = _sep_bn(x, 728, f"{prefix}_sepconv{k}")
        x = layers.add([x, residual])
    x = _down_block(x, (728, 1024), 13)
    x = _sep_bn(x, 1536, "block14_sepconv1")
    x = layers.Activation("relu", name="block14_sepconv1_act")(x)
    x = _sep_bn(x, 2048, "block14_sepconv2")
    x = layers.Activation("relu", name="block14_sepconv2_act")(x)
    x = _common.pooling_top(x, include_top, pooling, classes, classifier_activation, weights,
                            avg_name="avg_pool" if include_top else None)
    model = _common.build_model(input_tensor, img_input, x, name)
    file_name = f"xception_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5"
    return _common.load_weights(model, weights, file_name, _ROOT + file_name,
                                _HASHES[0 if include_top else 1])


Xception.__doc__ = ("Instantiate the Xception architecture (default input 299x299, minimum "
                    "71x71).\n" + _common.ARGS_DOC)


def preprocess_input(x, data_format=None):
    """Scale pixels to ``[-1, 1]`` ("tf" mode of
    :func:`lamina.applications.imagenet_utils.preprocess_input`)."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")
