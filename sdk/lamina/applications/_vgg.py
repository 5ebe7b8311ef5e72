"""The VGG builder shared by ``vgg16`` and ``vgg19`` (Simonyan & Zisserman, 2015)."""

from __future__ import annotations

from lamina import layers
from lamina.applications import _common

_ROOT = "https://storage.googleapis.com/tensorflow/keras-applications/"


def vgg(convs_per_block, model_name, hashes, include_top, weights, input_tensor,
        input_shape, pooling, classes, classifier_activation, name):
    """Build VGG with ``convs_per_block`` 3x3 convolutions in each of its 5 blocks."""
    _common.check_weights_arg(weights, include_top, classes)
    img_input = _common.image_input(input_tensor, input_shape, 224, 32, include_top, weights)
    x = img_input
    for block, (filters, convs) in enumerate(zip((64, 128, 256, 512, 512), convs_per_block),
                                             start=1):
        for k in range(1, convs + 1):
            x = layers.Conv2D(filters, (3, 3), activation="relu", padding="same",
                              name=f"block{block}_conv{k}")(x)
        x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
    x = _common.pooling_top(x, include_top, pooling, classes, classifier_activation, weights,
                            pool_before_top=False)
    model = _common.build_model(input_tensor, img_input, x, name)
    suffix = "" if include_top else "_notop"
    file_name = f"{model_name}_weights_tf_dim_ordering_tf_kernels{suffix}.h5"
    return _common.load_weights(model, weights, file_name,
                                f"{_ROOT}{model_name}/{file_name}",
                                hashes[0] if include_top else hashes[1])
