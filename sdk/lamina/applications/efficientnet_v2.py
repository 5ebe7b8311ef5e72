"""``keras.applications.efficientnet_v2``: EfficientNetV2 B0-B3, S, M, L (Tan & Le, 2021).

With ``include_preprocessing`` the models scale ``[0, 255]`` inputs themselves, so
``preprocess_input`` returns its input unchanged.
"""

from __future__ import annotations

import math

from lamina import layers
from lamina.applications import _common, imagenet_utils
from lamina.applications.efficientnet import CONV_KERNEL_INITIALIZER, DENSE_KERNEL_INITIALIZER
from lamina.applications.imagenet_utils import decode_predictions

__all__ = ["EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3",
           "EfficientNetV2L", "EfficientNetV2M", "EfficientNetV2S", "decode_predictions",
           "preprocess_input"]

BASE_WEIGHTS_PATH = ("https://storage.googleapis.com/tensorflow/keras-applications/"
                     "efficientnet_v2/")
WEIGHTS_HASHES = {
    "b0": ("21ecbf6da12460d5c40bb2f29ceb2188", "893217f2bb855e2983157299931e43ff"),
    "b1": ("069f0534ff22adf035c89e2d9547a9dc", "0e80663031ca32d657f9caa404b6ec37"),
    "b2": ("424e49f28180edbde1e94797771950a7", "1dfe2e7a5d45b6632553a8961ea609eb"),
    "b3": ("1f1fc43bd98a6e4fd8fdfd551e02c7a0", "f6abf7b5849ac99a89b50dd3fd532856"),
    "-s": ("e1d88a8495beba45748fedd0cecbe016", "af0682fb74e8c54910f2d4393339c070"),
    "-m": ("a3bf6aa3276309f4fc6a34aa114c95cd", "1b8dc055df72dde80d614482840fe342"),
    "-l": ("27e6d408b53c7ebc868fefa357689935", "b0b66b5c863aef5b46e8608fe1711615"),
}
_KEYS = ("kernel_size", "num_repeat", "input_filters", "output_filters", "expand_ratio",
         "se_ratio", "strides", "conv_type")
_B = ((3, 1, 32, 16, 1, 0, 1, 1), (3, 2, 16, 32, 4, 0, 2, 1), (3, 2, 32, 48, 4, 0, 2, 1),
      (3, 3, 48, 96, 4, 0.25, 2, 0), (3, 5, 96, 112, 6, 0.25, 1, 0),
      (3, 8, 112, 192, 6, 0.25, 2, 0))
_TABLES = {
    "efficientnetv2-s": ((3, 2, 24, 24, 1, 0.0, 1, 1), (3, 4, 24, 48, 4, 0.0, 2, 1),
                         (3, 4, 48, 64, 4, 0, 2, 1), (3, 6, 64, 128, 4, 0.25, 2, 0),
                         (3, 9, 128, 160, 6, 0.25, 1, 0), (3, 15, 160, 256, 6, 0.25, 2, 0)),
    "efficientnetv2-m": ((3, 3, 24, 24, 1, 0, 1, 1), (3, 5, 24, 48, 4, 0, 2, 1),
                         (3, 5, 48, 80, 4, 0, 2, 1), (3, 7, 80, 160, 4, 0.25, 2, 0),
                         (3, 14, 160, 176, 6, 0.25, 1, 0), (3, 18, 176, 304, 6, 0.25, 2, 0),
                         (3, 5, 304, 512, 6, 0.25, 1, 0)),
    "efficientnetv2-l": ((3, 4, 32, 32, 1, 0, 1, 1), (3, 7, 32, 64, 4, 0, 2, 1),
                         (3, 7, 64, 96, 4, 0, 2, 1), (3, 10, 96, 192, 4, 0.25, 2, 0),
                         (3, 19, 192, 224, 6, 0.25, 1, 0), (3, 25, 224, 384, 6, 0.25, 2, 0),
                         (3, 7, 384, 640, 6, 0.25, 1, 0)),
    **{f"efficientnetv2-b{i}": _B for i in range(4)},
}
DEFAULT_BLOCKS_ARGS = {name: [dict(zip(_KEYS, row)) for row in table]
                       for name, table in _TABLES.items()}


def round_filters(filters, width_coefficient, min_depth, depth_divisor):
    """Scale ``filters`` by the width coefficient, rounded to the divisor."""
    filters *= width_coefficient
    minimum = min_depth or depth_divisor
    return int(max(minimum, int(filters + depth_divisor / 2) // depth_divisor * depth_divisor))


def round_repeats(repeats, depth_coefficient):
    """Scale a stage's repeat count by the depth coefficient (rounded up)."""
    return int(math.ceil(depth_coefficient * repeats))


def _bn(name, momentum):
    return layers.BatchNormalization(axis=3, momentum=momentum, name=name)


def _squeeze_excite(x, filters, input_filters, se_ratio, activation, name):
    se = layers.GlobalAveragePooling2D(name=f"{name}se_squeeze")(x)
    se = layers.Reshape((1, 1, filters), name=f"{name}se_reshape")(se)
    se = layers.Conv2D(max(1, int(input_filters * se_ratio)), 1, padding="same",
                       activation=activation, kernel_initializer=CONV_KERNEL_INITIALIZER,
                       name=f"{name}se_reduce")(se)
    se = layers.Conv2D(filters, 1, padding="same", activation="sigmoid",
                       kernel_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}se_expand")(se)
    return layers.multiply([x, se], name=f"{name}se_excite")


def _skip(x, inputs, strides, input_filters, output_filters, survival_probability, name):
    if strides == 1 and input_filters == output_filters:
        if survival_probability:
            x = layers.Dropout(survival_probability, noise_shape=(None, 1, 1, 1),
                               name=f"{name}drop")(x)
        x = layers.add([x, inputs], name=f"{name}add")
    return x


def MBConvBlock(input_filters, output_filters, expand_ratio=1, kernel_size=3,  # noqa: N802
                strides=1, se_ratio=0.0, bn_momentum=0.9, activation="swish",
                survival_probability=0.8, name=None):
    """Mobile inverted bottleneck (1x1 expand, depthwise, squeeze-excite, 1x1 project)."""

    def apply(inputs):
        filters = input_filters * expand_ratio
        x = inputs
        if expand_ratio != 1:
            x = layers.Conv2D(filters, kernel_size=1, strides=1, padding="same",
                              kernel_initializer=CONV_KERNEL_INITIALIZER, use_bias=False,
                              name=f"{name}expand_conv")(x)
            x = _bn(f"{name}expand_bn", bn_momentum)(x)
            x = layers.Activation(activation, name=f"{name}expand_activation")(x)
        x = layers.DepthwiseConv2D(kernel_size=kernel_size, strides=strides, padding="same",
                                   depthwise_initializer=CONV_KERNEL_INITIALIZER,
                                   use_bias=False, name=f"{name}dwconv2")(x)
        x = _bn(f"{name}bn", bn_momentum)(x)
        x = layers.Activation(activation, name=f"{name}activation")(x)
        if 0 < se_ratio <= 1:
            x = _squeeze_excite(x, filters, input_filters, se_ratio, activation, name)
        x = layers.Conv2D(output_filters, kernel_size=1, strides=1, padding="same",
                          kernel_initializer=CONV_KERNEL_INITIALIZER, use_bias=False,
                          name=f"{name}project_conv")(x)
        x = _bn(f"{name}project_bn", bn_momentum)(x)
        return _skip(x, inputs, strides, input_filters, output_filters,
                     survival_probability, name)

    return apply


def FusedMBConvBlock(input_filters, output_filters, expand_ratio=1, kernel_size=3,  # noqa: N802
                     strides=1, se_ratio=0.0, bn_momentum=0.9, activation="swish",
                     survival_probability=0.8, name=None):
    """Fused block: the expansion and depthwise convolutions as one full convolution."""

    def apply(inputs):
        filters = input_filters * expand_ratio
        x = inputs
        if expand_ratio != 1:
            x = layers.Conv2D(filters, kernel_size=kernel_size, strides=strides,
                              kernel_initializer=CONV_KERNEL_INITIALIZER, padding="same",
                              use_bias=False, name=f"{name}expand_conv")(x)
            x = _bn(f"{name}expand_bn", bn_momentum)(x)
            x = layers.Activation(activation=activation, name=f"{name}expand_activation")(x)
        if 0 < se_ratio <= 1:
            x = _squeeze_excite(x, filters, input_filters, se_ratio, activation, name)
        fused = expand_ratio == 1
        x = layers.Conv2D(output_filters, kernel_size=kernel_size if fused else 1,
                          strides=strides if fused else 1,
                          kernel_initializer=CONV_KERNEL_INITIALIZER, padding="same",
                          use_bias=False, name=f"{name}project_conv")(x)
        x = _bn(f"{name}project_bn", bn_momentum)(x)
        if fused:
            x = layers.Activation(activation=activation, name=f"{name}project_activation")(x)
        return _skip(x, inputs, strides, input_filters, output_filters,
                     survival_probability, name)

    return apply


def EfficientNetV2(width_coefficient, depth_coefficient, default_size,  # noqa: N802
                   dropout_rate=0.2, drop_connect_rate=0.2, depth_divisor=8, min_depth=8,
                   bn_momentum=0.9, activation="swish", blocks_args="default",
                   name="efficientnetv2", include_top=True, weights="imagenet",
                   input_tensor=None, input_shape=None, pooling=None, classes=1000,
                   classifier_activation="softmax", include_preprocessing=True,
                   weights_name=None):
    """The EfficientNetV2 family's builder.

    Raises:
        ValueError: for invalid arguments, or a stage with ``num_repeat <= 0``.
    """
    variant = f"efficientnetv2-{weights_name.lstrip('-')}" if weights_name else name
    if blocks_args == "default":
        blocks_args = DEFAULT_BLOCKS_ARGS[variant]
    _common.check_weights_arg(weights, include_top, classes)
    img_input = _common.image_input(input_tensor, input_shape, default_size, 32, include_top,
                                    weights)
    x = img_input
    if include_preprocessing:
        if variant.split("-")[-1].startswith("b") and img_input.shape[3] == 3:
            x = layers.Rescaling(scale=1.0 / 255)(x)
            x = layers.Normalization(mean=[0.485, 0.456, 0.406],
                                     variance=[0.229**2, 0.224**2, 0.225**2], axis=3)(x)
        else:
            x = layers.Rescaling(scale=1.0 / 128.0, offset=-1)(x)

    def filters_of(f):
        return round_filters(f, width_coefficient, min_depth, depth_divisor)

    x = layers.Conv2D(filters=filters_of(blocks_args[0]["input_filters"]), kernel_size=3,
                      strides=2, kernel_initializer=CONV_KERNEL_INITIALIZER, padding="same",
                      use_bias=False, name="stem_conv")(x)
    x = _bn("stem_bn", bn_momentum)(x)
    x = layers.Activation(activation, name="stem_activation")(x)
    total = float(sum(args["num_repeat"] for args in blocks_args))
    b = 0
    for i, stage in enumerate(blocks_args):
        args = dict(stage)
        if args["num_repeat"] <= 0:
            raise ValueError("The number of repeats in `EfficientNetV2` must be > 0. "
                             f"Received: num_repeat={args['num_repeat']}")
        args["input_filters"] = filters_of(args["input_filters"])
        args["output_filters"] = filters_of(args["output_filters"])
        block = FusedMBConvBlock if args.pop("conv_type") == 1 else MBConvBlock
        for j in range(round_repeats(args.pop("num_repeat"), depth_coefficient)):
            if j > 0:
                args["strides"] = 1
                args["input_filters"] = args["output_filters"]
            x = block(activation=activation, bn_momentum=bn_momentum,
                      survival_probability=drop_connect_rate * b / total,
                      name=f"block{i + 1}{chr(j + 97)}_", **args)(x)
            b += 1
    x = layers.Conv2D(filters=filters_of(1280), kernel_size=1, strides=1,
                      kernel_initializer=CONV_KERNEL_INITIALIZER, padding="same",
                      use_bias=False, name="top_conv")(x)
    x = _bn("top_bn", bn_momentum)(x)
    x = layers.Activation(activation=activation, name="top_activation")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name="top_dropout")(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = layers.Dense(classes, activation=classifier_activation,
                         kernel_initializer=DENSE_KERNEL_INITIALIZER,
                         bias_initializer="zeros", name="predictions")(x)
    else:
        x = _common.pooling_top(x, False, pooling, classes, classifier_activation, weights,
                                avg_name="avg_pool", max_name="max_pool")
    model = _common.build_model(input_tensor, img_input, x, name)
    if weights == "imagenet":
        file_name = name + (".h5" if include_top else "_notop.h5")
        return _common.load_weights(model, weights, file_name, BASE_WEIGHTS_PATH + file_name,
                                    WEIGHTS_HASHES[weights_name][0 if include_top else 1])
    return _common.load_weights(model, weights)


def _variant(suffix, weights_name, width, depth, size):
    fn_name = f"EfficientNetV2{suffix}"
    default_name = f"efficientnetv2-{suffix.lower()}"

    def build(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
              pooling=None, classes=1000, classifier_activation="softmax",
              include_preprocessing=True, name=default_name):
        return EfficientNetV2(width_coefficient=width, depth_coefficient=depth,
                              default_size=size, name=name, include_top=include_top,
                              weights=weights, input_tensor=input_tensor,
                              input_shape=input_shape, pooling=pooling, classes=classes,
                              classifier_activation=classifier_activation,
                              include_preprocessing=include_preprocessing,
                              weights_name=weights_name)

    build.__name__ = build.__qualname__ = fn_name
    build.__doc__ = (f"Instantiate {fn_name} (default input {size}x{size}).\n"
                     + _common.ARGS_DOC.replace(
                         "        name: the model's name.",
                         "        include_preprocessing: whether the model scales [0, 255] "
                         "inputs itself.\n        name: the model's name."))
    return build


EfficientNetV2B0 = _variant("B0", "b0", 1.0, 1.0, 224)
EfficientNetV2B1 = _variant("B1", "b1", 1.0, 1.1, 240)
EfficientNetV2B2 = _variant("B2", "b2", 1.1, 1.2, 260)
EfficientNetV2B3 = _variant("B3", "b3", 1.2, 1.4, 300)
EfficientNetV2S = _variant("S", "-s", 1.0, 1.0, 384)
EfficientNetV2M = _variant("M", "-m", 1.0, 1.0, 480)
EfficientNetV2L = _variant("L", "-l", 1.0, 1.0, 480)


def preprocess_input(x, data_format=None):
    """Return ``x`` unchanged: EfficientNetV2 models scale their inputs themselves.

    Args:
        x: a float numpy array or tensor.
        data_format: unused, kept for the common signature.

    Returns:
        ``x``.
    """
    return x
