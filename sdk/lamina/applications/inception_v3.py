"""``keras.applications.inception_v3``: Inception V3 (Szegedy et al., 2015).

Layers are created in Keras's order, so the automatic names (``conv2d_57``, ...) and
the weight order match Keras's files.
"""

from __future__ import annotations

from lamina import layers
from lamina.applications import _common, imagenet_utils
from lamina.applications.imagenet_utils import decode_predictions

__all__ = ["InceptionV3", "decode_predictions", "preprocess_input"]

_ROOT = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
_HASHES = ("9a0d58056eeedaa3f26cb7ebd46da564", "bcbd6486424b2319ff4ef7d526e38f63")


def conv2d_bn(x, filters, num_row, num_col, padding="same", strides=(1, 1), name=None):
    """Conv2D (no bias) -> BatchNormalization (no scale) -> ReLU."""
    x = layers.Conv2D(filters, (num_row, num_col), strides=strides, padding=padding,
                      use_bias=False, name=None if name is None else f"{name}_conv")(x)
    x = layers.BatchNormalization(axis=3, scale=False,
                                  name=None if name is None else f"{name}_bn")(x)
    return layers.Activation("relu", name=name)(x)


def _avg_branch(x, filters):
    pooled = layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x)
    return conv2d_bn(pooled, filters, 1, 1)


def _block_35(x, pool_filters, name):
    b1 = conv2d_bn(x, 64, 1, 1)
    b5 = conv2d_bn(conv2d_bn(x, 48, 1, 1), 64, 5, 5)
    b3 = conv2d_bn(conv2d_bn(conv2d_bn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3)
    return layers.concatenate([b1, b5, b3, _avg_branch(x, pool_filters)], axis=3, name=name)


def _block_17(x, mid, name):
    b1 = conv2d_bn(x, 192, 1, 1)
    b7 = conv2d_bn(x, mid, 1, 1)
    b7 = conv2d_bn(conv2d_bn(b7, mid, 1, 7), 192, 7, 1)
    d7 = conv2d_bn(x, mid, 1, 1)
    for k, (rows, cols) in enumerate(((7, 1), (1, 7), (7, 1), (1, 7))):
        d7 = conv2d_bn(d7, 192 if k == 3 else mid, rows, cols)
    return layers.concatenate([b1, b7, d7, _avg_branch(x, 192)], axis=3, name=name)


def _block_8(x, i):
    b1 = conv2d_bn(x, 320, 1, 1)
    b3 = conv2d_bn(x, 384, 1, 1)
    b3 = layers.concatenate([conv2d_bn(b3, 384, 1, 3), conv2d_bn(b3, 384, 3, 1)], axis=3,
                            name=f"mixed9_{i}")
    d3 = conv2d_bn(conv2d_bn(x, 448, 1, 1), 384, 3, 3)
    d3 = layers.concatenate([conv2d_bn(d3, 384, 1, 3), conv2d_bn(d3, 384, 3, 1)], axis=3)
    return layers.concatenate([b1, b3, d3, _avg_branch(x, 192)], axis=3, name=f"mixed{9 + i}")


def InceptionV3(include_top=True, weights="imagenet", input_tensor=None,  # noqa: N802
                input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", name="inception_v3"):
    _common.check_weights_arg(weights, include_top, classes)
    img_input = _common.image_input(input_tensor, input_shape, 299, 75, include_top, weights)
    x = conv2d_bn(img_input, 32, 3, 3, strides=(2, 2), padding="valid")
    x = conv2d_bn(x, 32, 3, 3, padding="valid")
    x = conv2d_bn(x, 64, 3, 3)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = conv2d_bn(x, 80, 1, 1, padding="valid")
    x = conv2d_bn(x, 192, 3, 3, padding="valid")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    for i, pool_filters in enumerate((32, 64, 64)):
        x = _block_35(x, pool_filters, f"mixed{i}")
    b3 = conv2d_bn(x, 384, 3, 3, strides=(2, 2), padding="valid")
    d3 = conv2d_bn(conv2d_bn(x, 64, 1, 1), 96, 3, 3)
    d3 = conv2d_bn(d3, 96, 3, 3, strides=(2, 2), padding="valid")
    pool = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = layers.concatenate([b3, d3, pool], axis=3, name="mixed3")
    for i, mid in enumerate((128, 160, 160, 192)):
        x = _block_17(x, mid, f"mixed{4 + i}")
    b3 = conv2d_bn(conv2d_bn(x, 192, 1, 1), 320, 3, 3, strides=(2, 2), padding="valid")
    b7 = conv2d_bn(conv2d_bn(conv2d_bn(x, 192, 1, 1), 192, 1, 7), 192, 7, 1)
    b7 = conv2d_bn(b7, 192, 3, 3, strides=(2, 2), padding="valid")
    pool = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = layers.concatenate([b3, b7, pool], axis=3, name="mixed8")
    for i in range(2):
        x = _block_8(x, i)
    x = _common.pooling_top(x, include_top, pooling, classes, classifier_activation, weights,
                            avg_name="avg_pool" if include_top else None)
    model = _common.build_model(input_tensor, img_input, x, name)
    file_name = ("inception_v3_weights_tf_dim_ordering_tf_kernels"
                 f"{'' if include_top else '_notop'}.h5")
    return _common.load_weights(model, weights, file_name, _ROOT + file_name,
                                _HASHES[0 if include_top else 1])


InceptionV3.__doc__ = ("Instantiate the Inception V3 architecture (default input 299x299, "
                       "minimum 75x75).\n" + _common.ARGS_DOC)


def preprocess_input(x, data_format=None):
    """Scale pixels to ``[-1, 1]`` ("tf" mode of
    :func:`lamina.applications.imagenet_utils.preprocess_input`)."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")
