"""Regularisation layers: Dropout, SpatialDropout1D/2D, GaussianNoise, GaussianDropout,
AlphaDropout, ActivityRegularization."""

from __future__ import annotations

import math

import numpy as np

from lamina import ops, regularizers
from lamina.backend import nn as _nn
from lamina.backend.random import SeedGenerator
from lamina.distribute import keys as noise_keys
from lamina.layers.layer import Layer


class Dropout(Layer):
    """Sets a fraction ``rate`` of inputs to 0 during training, scaling the rest by 1/(1-rate).

    Inside ``fit`` the mask of each sample is drawn from a counter-based hash of (seed,
    epoch, the sample's position in the epoch, the layer's stream), so it does not
    depend on the rest of its batch and data-parallel replicas draw what one process would
    (:mod:`lamina.distribute.keys`); elsewhere it comes from the layer's generator.

    Args:
        rate: float in [0, 1), the fraction of units to drop.
        noise_shape: optional shape of the binary mask (``None`` entries follow the input).
        seed: optional int for a reproducible mask stream.

    Call arguments:
        inputs: any tensor.
        training: drop only when True.

    Input shape:
        Any.

    Output shape:
        Same as the input.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(
                f"Invalid value received for argument `rate`. Expected a float value between "
                f"0 and 1. Received: rate={rate!r}")
        self.rate = float(rate)
        self.noise_shape = noise_shape
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        if training and self.rate > 0:
            return _keyed_dropout(self, inputs, self.noise_shape)
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "noise_shape": self.noise_shape}


def _keyed_dropout(layer, inputs, noise_shape):
    """Dropout whose mask for sample ``i`` comes from its (seed, epoch, global index) key
    inside ``fit`` (:mod:`lamina.distribute.keys`), else from the layer's generator."""
    shape = noise_keys.noise_shape_of(inputs.shape, noise_shape)
    keys = noise_keys.layer_keys(layer, shape[0])
    if keys is None:
        return ops.dropout(inputs, layer.rate, noise_shape=noise_shape,
                           rng=layer.seed_generator.rng)
    mask = noise_keys.dropout_mask(keys, shape, layer.rate, inputs.data.dtype)
    return _nn.Dropout.apply(inputs, mask)


def _normal(layer, shape):
    """Standard normal noise, keyed per sample inside ``fit`` (see ``_keyed_dropout``)."""
    keys = noise_keys.layer_keys(layer, shape[0])
    if keys is None:
        return layer.seed_generator.rng.standard_normal(shape)
    return noise_keys.normal(keys, shape)


def _check_rate(rate, upper_inclusive=False):
    ok = isinstance(rate, (int, float)) and not isinstance(rate, bool) and (
        0 <= rate <= 1 if upper_inclusive else 0 <= rate < 1)
    if not ok:
        raise ValueError(
            f"Invalid value received for argument `rate`. Expected a float value between "
            f"0 and 1. Received: rate={rate!r}")
    return float(rate)


def _check_data_format(data_format):
    data_format = data_format or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError("`data_format` must be 'channels_last' or 'channels_first'. "
                         f"Received: data_format={data_format!r}")
    return data_format


def _check_ndim(layer, inputs, ndim):
    if inputs.ndim != ndim:
        raise ValueError(
            f"Input 0 of layer '{layer.name}' is incompatible with the layer: expected "
            f"ndim={ndim}, found ndim={inputs.ndim}. Full shape received: {tuple(inputs.shape)}")


class SpatialDropout1D(Dropout):
    """Drops whole feature maps (channels) of a sequence instead of single elements.

    Args:
        rate: float in [0, 1), the fraction of channels to drop.
        seed: optional int for a reproducible mask stream.

    Input shape:
        3D ``(batch_size, timesteps, channels)``.

    Output shape:
        Same as the input.
    """

    def __init__(self, rate, seed=None, name=None, dtype=None, **kwargs):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)

    def call(self, inputs, training=False):
        _check_ndim(self, inputs, 3)
        if training and self.rate > 0:
            return _keyed_dropout(self, inputs, (inputs.shape[0], 1, inputs.shape[2]))
        return inputs

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape")
        return config


class SpatialDropout2D(Dropout):
    """Drops whole 2D feature maps (channels) instead of single pixels.

    Args:
        rate: float in [0, 1), the fraction of channels to drop.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        seed: optional int for a reproducible mask stream.

    Input shape:
        4D ``(batch, rows, cols, channels)`` or ``(batch, channels, rows, cols)``.

    Output shape:
        Same as the input.
    """

    def __init__(self, rate, data_format=None, seed=None, name=None, dtype=None, **kwargs):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)
        self.data_format = _check_data_format(data_format)

    def call(self, inputs, training=False):
        _check_ndim(self, inputs, 4)
        if training and self.rate > 0:
            n = inputs.shape[0]
            shape = ((n, 1, 1, inputs.shape[3]) if self.data_format == "channels_last"
                     else (n, inputs.shape[1], 1, 1))
            return _keyed_dropout(self, inputs, shape)
        return inputs

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape")
        return {**config, "data_format": self.data_format}


class GaussianNoise(Layer):
    """Adds zero-centred Gaussian noise of standard deviation ``stddev`` in training.

    Args:
        stddev: float in [0, 1], the noise's standard deviation.
        seed: optional int for a reproducible noise stream.

    Input shape:
        Any.

    Output shape:
        Same as the input.
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(stddev, (int, float)) or isinstance(stddev, bool) or not (
                0 <= stddev <= 1):
            raise ValueError(
                "Invalid value received for argument `stddev`. Expected a float value between "
                f"0 and 1. Received: stddev={stddev!r}")
        self.stddev = float(stddev)
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        if training and self.stddev > 0:
            noise = _normal(self, inputs.shape)
            return ops.add(inputs, (noise * self.stddev).astype(inputs.data.dtype))
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(Layer):
    """Multiplies the input by Gaussian noise of mean 1 and std ``sqrt(rate / (1 - rate))``.

    Args:
        rate: float in [0, 1), the equivalent drop probability.
        seed: optional int for a reproducible noise stream.

    Input shape:
        Any.

    Output shape:
        Same as the input.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _check_rate(rate, upper_inclusive=True)
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        if training and 0 < self.rate < 1:
            stddev = math.sqrt(self.rate / (1.0 - self.rate))
            noise = 1.0 + stddev * _normal(self, inputs.shape)
            return ops.multiply(inputs, noise.astype(inputs.data.dtype))
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class AlphaDropout(Layer):
    """Dropout for SELU networks: keeps the inputs' mean and variance.

    Dropped units are set to SELU's negative saturation value, then an affine map
    ``a * x + b`` restores the mean and variance (Klambauer et al., 2017).

    Args:
        rate: float in [0, 1), the fraction of units to drop.
        noise_shape: optional shape of the binary mask (``None`` entries follow the input).
        seed: optional int for a reproducible mask stream.

    Input shape:
        Any.

    Output shape:
        Same as the input.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _check_rate(rate, upper_inclusive=True)
        self.noise_shape = noise_shape
        self.seed = seed
        self.seed_generator = SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        if not (training and 0 < self.rate < 1):
            return inputs
        alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
        alpha_p = -alpha * scale
        shape = inputs.shape if self.noise_shape is None else tuple(
            n if n is not None else inputs.shape[i] for i, n in enumerate(self.noise_shape))
        dtype = inputs.data.dtype
        keys = noise_keys.layer_keys(self, shape[0])
        kept = (self.seed_generator.rng.random(shape) >= self.rate if keys is None
                else noise_keys.keep_mask(keys, shape, self.rate)).astype(dtype)
        a = ((1 - self.rate) * (1 + self.rate * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * self.rate
        dropped = ops.add(ops.multiply(inputs, kept), (alpha_p * (1 - kept)).astype(dtype))
        return ops.add(ops.multiply(dropped, np.asarray(a, dtype=dtype)),
                       np.asarray(b, dtype=dtype))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape,
                "seed": self.seed}


class ActivityRegularization(Layer):
    """Passes the input through and adds ``l1 * sum(|x|) + l2 * sum(x**2)`` to the losses.

    As for any layer's activity regularizer, the penalty is divided by the batch size.

    Args:
        l1: float >= 0, the L1 factor.
        l2: float >= 0, the L2 factor.

    Input shape:
        Any.

    Output shape:
        Same as the input.
    """

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        kwargs.pop("activity_regularizer", None)
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1, self.l2 = float(l1), float(l2)
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.pop("activity_regularizer", None)
        return {**config, "l1": self.l1, "l2": self.l2}
