"""``keras.applications.inception_resnet_v2``: Inception-ResNet-v2 (Szegedy et al., 2016)."""

from __future__ import annotations

from lamina import layers
from lamina.applications import _common, imagenet_utils
from lamina.applications.imagenet_utils import decode_predictions
from lamina.saving.registry import register_serializable

__all__ = ["InceptionResNetV2", "decode_predictions", "preprocess_input"]

BASE_WEIGHT_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/"
                   "inception_resnet_v2/")
_HASHES = ("e693bd0210a403b3192acc6073ad2e96", "d19885ff4a710c122648d3b5c3b684e4")


@register_serializable(package="applications")
class CustomScaleLayer(layers.Layer):
    """``inputs[0] + scale * inputs[1]``: the scaled residual sum of Inception-ResNet blocks.

    Args:
        scale: the factor applied to the residual branch.
    """

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, inputs):
        return inputs[0] + inputs[1] * self.scale

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def conv2d_bn(x, filters, kernel_size, strides=1, padding="same", activation="relu",
              use_bias=False, name=None):
    """Conv2D, then BatchNormalization (no scale) when there is no bias, then activation."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding,
                      use_bias=use_bias, name=name)(x)
    if not use_bias:
        x = layers.BatchNormalization(axis=3, scale=False,
                                      name=None if name is None else f"{name}_bn")(x)
    if activation is not None:
        x = layers.Activation(activation, name=None if name is None else f"{name}_ac")(x)
    return x


_BRANCHES = {
    "block35": [[(32, 1)], [(32, 1), (32, 3)], [(32, 1), (48, 3), (64, 3)]],
    "block17": [[(192, 1)], [(128, 1), (160, [1, 7]), (192, [7, 1])]],
    "block8": [[(192, 1)], [(192, 1), (224, [1, 3]), (256, [3, 1])]],
}


def inception_resnet_block(x, scale, block_type, block_idx, activation="relu"):
    """One Inception-ResNet block: ``x + scale * conv(concat(branches(x)))``.

    Raises:
        ValueError: for a ``block_type`` other than block35, block17 or block8.
    """
    if block_type not in _BRANCHES:
        raise ValueError("Unknown Inception-ResNet block type. Expects \"block35\", "
                         f"\"block17\" or \"block8\", but got: {block_type}")
    branches = []
    for convs in _BRANCHES[block_type]:
        y = x
        for filters, kernel in convs:
            y = conv2d_bn(y, filters, kernel)
        branches.append(y)
    name = f"{block_type}_{block_idx}"
    mixed = layers.Concatenate(axis=3, name=f"{name}_mixed")(branches)
    up = conv2d_bn(mixed, x.shape[3], 1, activation=None, use_bias=True, name=f"{name}_conv")
    x = CustomScaleLayer(scale)([x, up])
    if activation is not None:
        x = layers.Activation(activation, name=f"{name}_ac")(x)
    return x


def InceptionResNetV2(include_top=True, weights="imagenet", input_tensor=None,  # noqa: N802
                      input_shape=None, pooling=None, classes=1000,
                      classifier_activation="softmax", name="inception_resnet_v2"):
    _common.check_weights_arg(weights, include_top, classes)
    img_input = _common.image_input(input_tensor, input_shape, 299, 75, include_top, weights)
    x = conv2d_bn(img_input, 32, 3, strides=2, padding="valid")
    x = conv2d_bn(x, 32, 3, padding="valid")
    x = conv2d_bn(x, 64, 3)
    x = layers.MaxPooling2D(3, strides=2)(x)
    x = conv2d_bn(x, 80, 1, padding="valid")
    x = conv2d_bn(x, 192, 3, padding="valid")
    x = layers.MaxPooling2D(3, strides=2)(x)
    b0 = conv2d_bn(x, 96, 1)
    b1 = conv2d_bn(conv2d_bn(x, 48, 1), 64, 5)
    b2 = conv2d_bn(conv2d_bn(conv2d_bn(x, 64, 1), 96, 3), 96, 3)
    pool = conv2d_bn(layers.AveragePooling2D(3, strides=1, padding="same")(x), 64, 1)
    x = layers.Concatenate(axis=3, name="mixed_5b")([b0, b1, b2, pool])
    for idx in range(1, 11):
        x = inception_resnet_block(x, scale=0.17, block_type="block35", block_idx=idx)
    b0 = conv2d_bn(x, 384, 3, strides=2, padding="valid")
    b1 = conv2d_bn(conv2d_bn(conv2d_bn(x, 256, 1), 256, 3), 384, 3, strides=2,
                   padding="valid")
    pool = layers.MaxPooling2D(3, strides=2, padding="valid")(x)
    x = layers.Concatenate(axis=3, name="mixed_6a")([b0, b1, pool])
    for idx in range(1, 21):
        x = inception_resnet_block(x, scale=0.1, block_type="block17", block_idx=idx)
    b0 = conv2d_bn(conv2d_bn(x, 256, 1), 384, 3, strides=2, padding="valid")
    b1 = conv2d_bn(conv2d_bn(x, 256, 1), 288, 3, strides=2, padding="valid")
    b2 = conv2d_bn(conv2d_bn(conv2d_bn(x, 256, 1), 288, 3), 320, 3, strides=2,
                   padding="valid")
    pool = layers.MaxPooling2D(3, strides=2, padding="valid")(x)
    x = layers.Concatenate(axis=3, name="mixed_7a")([b0, b1, b2, pool])
    for idx in range(1, 10):
        x = inception_resnet_block(x, scale=0.2, block_type="block8", block_idx=idx)
    x = inception_resnet_block(x, scale=1.0, activation=None, block_type="block8",
                               block_idx=10)
    x = conv2d_bn(x, 1536, 1, name="conv_7b")
    x = _common.pooling_top(x, include_top, pooling, classes, classifier_activation, weights,
                            avg_name="avg_pool" if include_top else None)
    model = _common.build_model(input_tensor, img_input, x, name)
    file_name = ("inception_resnet_v2_weights_tf_dim_ordering_tf_kernels"
                 f"{'' if include_top else '_notop'}.h5")
    return _common.load_weights(model, weights, file_name, BASE_WEIGHT_URL + file_name,
                                _HASHES[0 if include_top else 1])


InceptionResNetV2.__doc__ = ("Instantiate the Inception-ResNet v2 architecture (default input "
                             "299x299, minimum 75x75).\n" + _common.ARGS_DOC)


def preprocess_input(x, data_format=None):
    """Scale pixels to ``[-1, 1]`` ("tf" mode of
    :func:`lamina.applications.imagenet_utils.preprocess_input`)."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")
