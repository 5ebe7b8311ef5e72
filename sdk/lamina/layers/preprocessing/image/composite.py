"""Layers built from other layers: Pipeline, RandomColorJitter, RandAugment, AugMix; and
MaxNumBoundingBoxes (pads or truncates a dict's bounding boxes)."""

from __future__ import annotations

import numpy as np

from lamina import ops
from lamina.layers.layer import Layer
from lamina.layers.preprocessing.image.base import (
    BaseImagePreprocessingLayer,
    parse_value_range,
)
from lamina.layers.preprocessing.image.color import (
    RandomBrightness,
    RandomColorDegeneration,
    RandomContrast,
    RandomHue,
    RandomSaturation,
    RandomSharpness,
)
from lamina.layers.preprocessing.image.geometric import (
    RandomRotation,
    RandomShear,
    RandomTranslation,
)
from lamina.layers.preprocessing.image.intensity import (
    AutoContrast,
    Equalization,
    RandomPosterization,
    Solarization,
)
from lamina.layers.recurrent import deserialize_layer, serialize_layer


class Pipeline(Layer):
    """Applies ``layers`` one after the other (like ``Sequential``, but a single layer,
    so random augmentations can be chained inside a data pipeline or a model).

    Args:
        layers: the layers, in order.
        name: the layer's name.

    Input shape:
        What the first layer takes.

    Output shape:
        What the last layer returns.
    """

    def __init__(self, layers, name=None):
        super().__init__(name=name)
        self._pipeline_layers = list(layers)
        self.built = True

    @property
    def layers(self):
        return self._pipeline_layers

    def call(self, inputs, training=True):
        for layer in self._pipeline_layers:
            if layer._call_has_training and training is not None:
                inputs = layer(inputs, training=training)
            else:
                inputs = layer(inputs)
        return inputs

    def compute_output_shape(self, input_shape):
        for layer in self._pipeline_layers:
            input_shape = layer.compute_output_shape(input_shape)
        return input_shape

    def get_config(self):
        return {"layers": [serialize_layer(layer) for layer in self._pipeline_layers],
                "name": self.name}

    @classmethod
    def from_config(cls, config):
        layers = config.get("layers")
        if not isinstance(layers, (list, tuple)):
            raise ValueError("`Pipeline` config must contain a `layers` key mapping to a list "
                             f"of serialized layers. Received config with layers={layers}.")
        return cls(**{**config, "layers": [deserialize_layer(layer) for layer in layers]})


class RandomColorJitter(BaseImagePreprocessingLayer):
    """RandomBrightness, RandomContrast, RandomSaturation and RandomHue in this order, each
    only when its factor is given. A dict's ``"bounding_boxes"`` pass unchanged.

    Args:
        value_range: the ``(min, max)`` of the pixel values.
        brightness_factor: RandomBrightness's ``factor`` or None.
        contrast_factor: RandomContrast's ``factor`` or None.
        saturation_factor: RandomSaturation's ``factor`` or None.
        hue_factor: RandomHue's ``factor`` or None.
        seed: an int for reproducible draws.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    _BOXES_UNCHANGED = True
    _USE_BASE_FACTOR = False

    def __init__(self, value_range=(0, 255), brightness_factor=None, contrast_factor=None,
                 saturation_factor=None, hue_factor=None, seed=None, data_format=None,
                 **kwargs):
        super().__init__(data_format=data_format, seed=seed, **kwargs)
        self.value_range = parse_value_range(value_range)
        self.brightness_factor = brightness_factor
        self.contrast_factor = contrast_factor
        self.saturation_factor = saturation_factor
        self.hue_factor = hue_factor
        # The steps follow this layer's data_format (Keras leaves them at the default).
        common = {"value_range": self.value_range, "seed": seed, "data_format": data_format}
        steps = ((RandomBrightness, brightness_factor), (RandomContrast, contrast_factor),
                 (RandomSaturation, saturation_factor), (RandomHue, hue_factor))
        self._steps = [cls(factor=factor, **common) for cls, factor in steps
                       if factor is not None]
        for step in self._steps:
            step.generator = self.generator

    def transform_images(self, images, transformation, training=True):
        if not training:
            return images
        for step in self._steps:
            images = step.transform_images(images, step.get_random_transformation(images))
        return images

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range,
                "brightness_factor": self.brightness_factor,
                "contrast_factor": self.contrast_factor,
                "saturation_factor": self.saturation_factor, "hue_factor": self.hue_factor,
                "seed": self.seed}


def _augmentations(owner, factor, value_range, interpolation, data_format, seed, all_ops=True):
    """RandAugment's/AugMix's operations at strength ``factor`` (all sharing one stream)."""
    common = {"seed": seed, "data_format": data_format}
    ops_ = {
        "random_shear": RandomShear(x_factor=factor, y_factor=factor,
                                    interpolation=interpolation, **common),
        "random_translation": RandomTranslation(factor, factor, interpolation=interpolation,
                                                **common),
        "random_rotation": RandomRotation(factor, interpolation=interpolation, **common),
        "random_posterization": RandomPosterization(max(1, int(8 * factor[1])), value_range,
                                                    **common),
        "solarization": Solarization(factor, factor, value_range, seed=seed,
                                     data_format=data_format),
        "auto_contrast": AutoContrast(value_range, data_format=data_format),
        "equalization": Equalization(value_range, data_format=data_format),
    }
    if all_ops:
        ops_.update({
            "random_brightness": RandomBrightness(factor, value_range, seed=seed,
                                                  data_format=data_format),
            "random_color_degeneration": RandomColorDegeneration(factor, value_range, **common),
            "random_contrast": RandomContrast(factor, value_range, seed=seed,
                                              data_format=data_format),
            "random_sharpness": RandomSharpness(factor, value_range, **common),
        })
    for layer in ops_.values():
        layer.generator = owner.generator
    return ops_


class RandAugment(BaseImagePreprocessingLayer):
    """Applies ``num_ops`` operations picked at random (per call) from shear, translation,
    rotation, brightness, colour degeneration, contrast, sharpness, posterization,
    solarization, auto-contrast and equalization, each at strength ``factor``.

    A dict's ``"bounding_boxes"`` go through the picked operations in the order and with
    the draws the images get (the geometric ones move them, the others keep them). Keras
    3.15.1 instead moves the boxes once per distinct picked operation, in its list's
    order, so its boxes leave the pixels when an operation is picked twice or two
    geometric ones come out of that order; otherwise the two agree.

    Args:
        value_range: the ``(min, max)`` of the pixel values.
        num_ops: how many operations to apply.
        factor: a number in [0, 1] or a pair: the strength of every operation.
        interpolation: ``"bilinear"`` or ``"nearest"`` for the geometric operations.
        seed: an int for reproducible draws.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        **kwargs: base layer arguments, e.g. ``bounding_box_format`` (needed with boxes).

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``), or a dict
        with ``"images"`` and optionally ``"bounding_boxes"``.

    Output shape:
        Same as the input.
    """

    _FACTOR_BOUNDS = (0, 1)

    def __init__(self, value_range=(0, 255), num_ops=2, factor=0.5, interpolation="bilinear",
                 seed=None, data_format=None, **kwargs):
        super().__init__(factor=factor, data_format=data_format, seed=seed, **kwargs)
        self.value_range = parse_value_range(value_range)
        self.num_ops = num_ops
        self.interpolation = interpolation
        self._augment = _augmentations(self, self.factor, self.value_range, interpolation,
                                       data_format, seed)
        for layer in self._augment.values():
            layer.bounding_box_format = self.bounding_box_format

    def get_random_transformation(self, data, training=True, seed=None):
        """``[(operation name, its transformation), ...]`` in the order applied."""
        if not training:
            return None
        names = list(self._augment)
        picked = [names[i] for i in self.rng.integers(0, len(names), self.num_ops)]
        # Every operation keeps the image shape, so each can draw from the input batch.
        return [(name, self._augment[name].get_random_transformation(data))
                for name in picked]

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        for name, step in transformation:
            images = self._augment[name].transform_images(images, step)
        return images

    def transform_bounding_boxes(self, bounding_boxes, transformation, training=True):
        if not training or transformation is None:
            return bounding_boxes
        for name, step in transformation:
            bounding_boxes = self._augment[name].transform_bounding_boxes(bounding_boxes, step)
        return bounding_boxes

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range,
                "num_ops": self.num_ops, "interpolation": self.interpolation,
                "seed": self.seed}


class AugMix(BaseImagePreprocessingLayer):
    """AugMix: ``num_chains`` chains of up to ``chain_depth`` random operations, mixed with
    Dirichlet(``alpha``) weights, then blended with the original by a Beta(``alpha``,
    ``alpha``) weight. A dict's ``"bounding_boxes"`` pass unchanged, as in Keras 3.15.1
    (the output blends differently warped copies, which share no box).

    Args:
        value_range: the ``(min, max)`` of the pixel values.
        num_chains: the number of augmentation chains.
        chain_depth: the maximum operations per chain (each step may be skipped).
        factor: a number in [0, 1] or a pair: the strength of every operation.
        alpha: the Dirichlet and Beta concentration.
        all_ops: also use brightness, colour degeneration, contrast and sharpness.
        interpolation: ``"bilinear"`` or ``"nearest"`` for the geometric operations.
        seed: an int for reproducible draws.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Input shape:
        ``(H, W, C)`` or ``(B, H, W, C)`` (channels first per ``data_format``).

    Output shape:
        Same as the input.
    """

    _BOXES_UNCHANGED = True
    _MASKS_UNCHANGED = False  # Keras mixes the masks with the images
    _FACTOR_BOUNDS = (0, 1)

    def __init__(self, value_range=(0, 255), num_chains=3, chain_depth=3, factor=0.3,
                 alpha=1.0, all_ops=True, interpolation="bilinear", seed=None,
                 data_format=None, **kwargs):
        super().__init__(factor=factor, data_format=data_format, seed=seed, **kwargs)
        self.value_range = parse_value_range(value_range)
        self.num_chains = num_chains
        self.chain_depth = chain_depth
        self.alpha = alpha
        self.all_ops = all_ops
        self.interpolation = interpolation
        self._augment = _augmentations(self, self.factor, self.value_range, interpolation,
                                       data_format, seed, all_ops=all_ops)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        gamma = self.rng.gamma(self.alpha, 1.0, self.num_chains)
        names = [*self._augment, None]
        chains = [[names[i] for i in self.rng.integers(0, len(names), self.chain_depth)
                   if names[i] is not None] for _ in range(self.num_chains)]
        return gamma / gamma.sum(), self.rng.beta(self.alpha, self.alpha), chains

    def transform_images(self, images, transformation, training=True):
        if not training or transformation is None:
            return images
        weights, keep, chains = transformation
        dtype = np.dtype(images.dtype)
        mixed = None
        for weight, chain in zip(weights, chains):
            x = images
            for name in chain:
                layer = self._augment[name]
                x = layer.transform_images(x, layer.get_random_transformation(x))
            x = ops.multiply(x, np.asarray(weight, dtype))
            mixed = x if mixed is None else ops.add(mixed, x)
        out = ops.add(ops.multiply(images, np.asarray(keep, dtype)),
                      ops.multiply(mixed, np.asarray(1.0 - keep, dtype)))
        return ops.clip(out, *self.value_range)

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range,
                "num_chains": self.num_chains, "chain_depth": self.chain_depth,
                "alpha": self.alpha, "all_ops": self.all_ops,
                "interpolation": self.interpolation, "seed": self.seed}


class MaxNumBoundingBoxes(BaseImagePreprocessingLayer):
    """Pads (with ``fill_value``) or truncates a dict's ``bounding_boxes`` (``boxes``
    ``(B, N, 4)`` and ``labels`` ``(B, N)``) to ``max_number`` boxes; images pass through.

    Args:
        max_number: the number of boxes kept.
        fill_value: the value of padded boxes and labels.

    Input shape:
        A dict with ``"images"`` and ``"bounding_boxes"``, or images alone.

    Output shape:
        The same structure, with ``max_number`` boxes.
    """

    _USE_BASE_FACTOR = False

    def __init__(self, max_number, fill_value=-1, **kwargs):
        super().__init__(**kwargs)
        self.max_number = int(max_number)
        self.fill_value = int(fill_value)

    def transform_images(self, images, transformation=None, training=True):
        return images

    def transform_bounding_boxes(self, bounding_boxes, transformation=None, training=True):
        result = dict(bounding_boxes)
        for key, width in (("boxes", ((0, 0), (0, None), (0, 0))), ("labels", ((0, 0), (0, None)))):
            value = np.asarray(ops.convert_to_numpy(bounding_boxes[key]))[:, :self.max_number]
            pad = [(a, self.max_number - value.shape[1] if b is None else b) for a, b in width]
            result[key] = ops.convert_to_tensor(np.pad(value, pad,
                                                       constant_values=self.fill_value))
        return result

    def get_config(self):
        return {**super().get_config(), "max_number": self.max_number}
