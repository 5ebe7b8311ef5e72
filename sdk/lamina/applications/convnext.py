"""``keras.applications.convnext``: ConvNeXt Tiny, Small, Base, Large, XLarge (Liu et al.).

``LayerScale`` and ``StochasticDepth`` are the family's own layers, as in Keras, and are
registered for serialization. With ``include_preprocessing`` the models normalise
``[0, 255]`` inputs themselves, so ``preprocess_input`` returns its input unchanged.
"""

from __future__ import annotations

import numpy as np

from lamina import layers, ops
from lamina.applications import _common, imagenet_utils
from lamina.applications.imagenet_utils import decode_predictions
from lamina.initializers import Constant
from lamina.saving.registry import register_serializable

__all__ = ["ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtSmall", "ConvNeXtTiny", "ConvNeXtXLarge",
           "decode_predictions", "preprocess_input"]

BASE_WEIGHTS_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/convnext/"
WEIGHTS_HASHES = {
    "convnext_tiny": ("8ae6e78ce2933352b1ef4008e6dd2f17bc40771563877d156bc6426c7cf503ff",
                      "d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1"),
    "convnext_small": ("ce1277d8f1ee5a0ef0e171469089c18f5233860ceaf9b168049cb9263fd7483c",
                       "6fc8009faa2f00c1c1dfce59feea9b0745eb260a7dd11bee65c8e20843da6eab"),
    "convnext_base": ("52cbb006d3dadd03f6e095a8ca1aca47aecdd75acb4bc74bce1f5c695d0086e6",
                      "40a20c5548a5e9202f69735ecc06c990e6b7c9d2de39f0361e27baeb24cb7c45"),
    "convnext_large": ("070c5ed9ed289581e477741d3b34beffa920db8cf590899d6d2c67fba2a198a6",
                       "96f02b6f0753d4f543261bc9d09bed650f24dd6bc02ddde3066135b63d23a1cd"),
    "convnext_xlarge": ("c1f5ccab661354fc3a79a10fa99af82f0fbf10ec65cb894a3ae0815f17a889ee",
                        "de3f8a54174130e0cecdc71583354753d557fcf1f4487331558e2a16ba0cfe05"),
}
MODEL_CONFIGS = {
    "tiny": {"depths": [3, 3, 9, 3], "projection_dims": [96, 192, 384, 768]},
    "small": {"depths": [3, 3, 27, 3], "projection_dims": [96, 192, 384, 768]},
    "base": {"depths": [3, 3, 27, 3], "projection_dims": [128, 256, 512, 1024]},
    "large": {"depths": [3, 3, 27, 3], "projection_dims": [192, 384, 768, 1536]},
    "xlarge": {"depths": [3, 3, 27, 3], "projection_dims": [256, 512, 1024, 2048]},
}


@register_serializable(package="applications")
class StochasticDepth(layers.Layer):
    """Drops the whole residual branch of a sample with probability ``drop_path_rate``
    during training (scaling kept branches by ``1 / (1 - rate)``); identity otherwise.

    Args:
        drop_path_rate: probability of dropping the branch, in ``[0, 1]``.
    """

    def __init__(self, drop_path_rate, **kwargs):
        super().__init__(**kwargs)
        self.drop_path_rate = drop_path_rate

    def call(self, x, training=None):
        if not training:
            return x
        from lamina import random

        keep_prob = 1 - self.drop_path_rate
        shape = (x.shape[0],) + (1,) * (len(x.shape) - 1)
        mask = ops.floor(keep_prob + random.uniform(shape, 0, 1))
        return (x / keep_prob) * mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "drop_path_rate": self.drop_path_rate}


@register_serializable(package="applications")
class LayerScale(layers.Layer):
    """Multiplies the last axis by a learned per-channel ``gamma`` (Touvron et al., 2021).

    Args:
        init_values: initial value of every ``gamma`` entry.
        projection_dim: size of the last axis.
    """

    def __init__(self, init_values, projection_dim, **kwargs):
        super().__init__(**kwargs)
        self.init_values = init_values
        self.projection_dim = projection_dim

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(self.projection_dim,),
                                     initializer=Constant(self.init_values), trainable=True)
        self.built = True

    def call(self, x):
        return x * self.gamma

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "init_values": self.init_values,
                "projection_dim": self.projection_dim}


def ConvNeXtBlock(projection_dim, drop_path_rate=0.0, layer_scale_init_value=1e-6,  # noqa: N802
                  name=None):
    """Depthwise 7x7 conv, LayerNorm, two pointwise Dense layers with GELU, layer
    scale, stochastic depth, residual sum."""

    def apply(inputs):
        x = layers.Conv2D(filters=projection_dim, kernel_size=7, padding="same",
                          groups=projection_dim, name=f"{name}_depthwise_conv")(inputs)
        x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_layernorm")(x)
        x = layers.Dense(4 * projection_dim, name=f"{name}_pointwise_conv_1")(x)
        x = layers.Activation("gelu", name=f"{name}_gelu")(x)
        x = layers.Dense(projection_dim, name=f"{name}_pointwise_conv_2")(x)
        if layer_scale_init_value is not None:
            x = LayerScale(layer_scale_init_value, projection_dim,
                           name=f"{name}_layer_scale")(x)
        if drop_path_rate:
            layer = StochasticDepth(drop_path_rate, name=f"{name}_stochastic_depth")
        else:
            layer = layers.Activation("linear", name=f"{name}_identity")
        return inputs + layer(x)

    return apply


def _prestem(x, name):
    return layers.Normalization(mean=[0.485 * 255, 0.456 * 255, 0.406 * 255],
                                variance=[(0.229 * 255) ** 2, (0.224 * 255) ** 2,
                                          (0.225 * 255) ** 2],
                                name=f"{name}_prestem_normalization")(x)


def _head(x, classes, classifier_activation, name):
    x = layers.GlobalAveragePooling2D(name=f"{name}_head_gap")(x)
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_head_layernorm")(x)
    return layers.Dense(classes, activation=classifier_activation, name=f"{name}_head_dense")(x)


def ConvNeXt(depths, projection_dims, drop_path_rate=0.0,  # noqa: N802
             layer_scale_init_value=1e-6, default_size=224, name="convnext",
             include_preprocessing=True, include_top=True, weights=None, input_tensor=None,
             input_shape=None, pooling=None, classes=1000, classifier_activation="softmax",
             weights_name=None):
    """The ConvNeXt builder: a patchify stem, 4 stages of blocks, 3 downsamplings.

    Raises:
        ValueError: for invalid arguments, or ImageNet weights with a configuration or
            name that does not match ``weights_name``.
    """
    from lamina.models import Sequential

    _common.check_weights_arg(weights, include_top, classes)
    if weights == "imagenet":
        expected = MODEL_CONFIGS[weights_name.split("convnext_")[-1]]
        if list(depths) != expected["depths"] or list(projection_dims) != \
                expected["projection_dims"]:
            raise ValueError(
                f"Architecture configuration does not match {weights_name} variant. When "
                "using pre-trained weights, the model architecture must match the "
                f"pre-trained configuration exactly. Expected depths: {expected['depths']}, "
                f"got: {depths}. Expected projection_dims: {expected['projection_dims']}, "
                f"got: {projection_dims}.")
        if weights_name not in name:
            raise ValueError(
                f'Model name "{name}" does not match weights variant "{weights_name}". When '
                "using imagenet weights, model name must contain the weights variant (e.g., "
                f'"convnext_{weights_name.split("convnext_")[-1]}").')
    img_input = _common.image_input(input_tensor, input_shape, default_size, 32, include_top,
                                    weights)
    if input_tensor is not None:
        inputs, x = _common.source_inputs(input_tensor)[0], input_tensor
    else:
        inputs = x = img_input
    if include_preprocessing and img_input.shape[3] == 3:
        x = _prestem(x, name)
    stages = [Sequential([
        layers.Conv2D(projection_dims[0], kernel_size=4, strides=4, name=f"{name}_stem_conv"),
        layers.LayerNormalization(epsilon=1e-6, name=f"{name}_stem_layernorm"),
    ], name=f"{name}_stem")]
    for i in range(3):
        stages.append(Sequential([
            layers.LayerNormalization(epsilon=1e-6, name=f"{name}_downsampling_layernorm_{i}"),
            layers.Conv2D(projection_dims[i + 1], kernel_size=2, strides=2,
                          name=f"{name}_downsampling_conv_{i}"),
        ], name=f"{name}_downsampling_block_{i}"))
    rates = [float(r) for r in np.linspace(0.0, drop_path_rate, sum(depths))]
    cur = 0
    for i in range(4):
        x = stages[i](x)
        for j in range(depths[i]):
            x = ConvNeXtBlock(projection_dims[i], drop_path_rate=rates[cur + j],
                              layer_scale_init_value=layer_scale_init_value,
                              name=f"{name}_stage_{i}_block_{j}")(x)
        cur += depths[i]
    if include_top:
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = _head(x, classes, classifier_activation, name)
    else:
        x = _common.pooling_top(x, False, pooling, classes, classifier_activation, weights)
        x = layers.LayerNormalization(epsilon=1e-6)(x)
    from lamina.models import Model

    model = Model(inputs=inputs, outputs=x, name=name)
    if weights == "imagenet":
        file_name = name + (".h5" if include_top else "_notop.h5")
        return _common.load_weights(model, weights, file_name, BASE_WEIGHTS_PATH + file_name,
                                    WEIGHTS_HASHES[weights_name][0 if include_top else 1])
    return _common.load_weights(model, weights)


def _variant(size):
    fn_name = f"ConvNeXt{size.capitalize() if size != 'xlarge' else 'XLarge'}"
    default_name = f"convnext_{size}"
    config = MODEL_CONFIGS[size]

    def build(include_top=True, include_preprocessing=True, weights="imagenet",
              input_tensor=None, input_shape=None, pooling=None, classes=1000,
              classifier_activation="softmax", name=default_name):
        return ConvNeXt(weights_name=default_name, depths=config["depths"],
                        projection_dims=config["projection_dims"], drop_path_rate=0.0,
                        layer_scale_init_value=1e-6, default_size=224, name=name,
                        include_top=include_top, include_preprocessing=include_preprocessing,
                        weights=weights, input_tensor=input_tensor, input_shape=input_shape,
                        pooling=pooling, classes=classes,
                        classifier_activation=classifier_activation)

    build.__name__ = build.__qualname__ = fn_name
    build.__doc__ = (f"Instantiate {fn_name} (inputs in ``[0, 255]``).\n"
                     + _common.ARGS_DOC.replace(
                         "        name: the model's name.",
                         "        include_preprocessing: whether the model normalises "
                         "[0, 255] inputs itself.\n        name: the model's name."))
    return build


ConvNeXtTiny = _variant("tiny")
ConvNeXtSmall = _variant("small")
ConvNeXtBase = _variant("base")
ConvNeXtLarge = _variant("large")
ConvNeXtXLarge = _variant("xlarge")


def preprocess_input(x, data_format=None):
    """Return ``x`` unchanged: ConvNeXt models normalise their inputs themselves.

    Args:
        x: a float numpy array or tensor.
        data_format: unused, kept for the common signature.

    Returns:
        ``x``.
    """
    return x
