"""Normalization layers: BatchNormalization, LayerNormalization, GroupNormalization,
UnitNormalization.

The heavy lifting is one fused primitive, :class:`lamina.backend.normalization.Normalize`;
these layers pick the axes, shape ``gamma``/``beta`` to broadcast, and (BatchNorm) keep
the moving statistics.
"""

from __future__ import annotations

import numpy as np

from lamina import constraints, initializers, ops, regularizers
from lamina.backend.normalization import normalize
from lamina.layers import batch_renorm
from lamina.layers.input_spec import InputSpec
from lamina.layers.layer import Layer


def _check_epsilon(epsilon):
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or epsilon < 0:
        raise ValueError(
            f"Argument `epsilon` must be a non-negative float. Received: epsilon={epsilon!r}")
    return float(epsilon)


def _param_shape(ndim, axes, input_shape):
    """Shape of a parameter over ``axes`` broadcastable to an input of rank ``ndim``."""
    return tuple(input_shape[a] if a in axes else 1 for a in range(ndim))


class _AffineMixin:
    """``gamma``/``beta`` arguments, weights and config shared by the normalizations."""

    def _init_affine(self, center, scale, beta_initializer, gamma_initializer,
                     beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint):
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)

    def _build_affine(self, shape, gamma=True, beta=True):
        self.gamma = self.beta = None
        if gamma:
            self.gamma = self.add_weight(
                name="gamma", shape=shape, initializer=self.gamma_initializer,
                regularizer=self.gamma_regularizer, constraint=self.gamma_constraint)
        if beta:
            self.beta = self.add_weight(
                name="beta", shape=shape, initializer=self.beta_initializer,
                regularizer=self.beta_regularizer, constraint=self.beta_constraint)

    def _affine_config(self):
        return {
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer)
            if self.beta_regularizer else None,
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer)
            if self.gamma_regularizer else None,
            "beta_constraint": constraints.serialize(self.beta_constraint)
            if self.beta_constraint else None,
            "gamma_constraint": constraints.serialize(self.gamma_constraint)
            if self.gamma_constraint else None,
        }


def _reshaped(weight, shape):
    return None if weight is None else ops.reshape(weight, shape)


class BatchNormalization(_AffineMixin, Layer):
    """Normalizes with the batch's statistics in training and moving averages otherwise.

    In training (``training=True`` and the layer trainable) the output is
    ``gamma * (x - mean(x)) / sqrt(var(x) + epsilon) + beta`` over every axis but
    ``axis``, and ``moving = moving * momentum + batch * (1 - momentum)`` for the mean
    and the (biased) variance. In inference the moving statistics are used.

    Args:
        axis: the feature axis (``-1`` for channels_last, ``1`` for channels_first).
        momentum: momentum of the moving averages.
        epsilon: small float added to the variance.
        center: whether to add ``beta``.
        scale: whether to multiply by ``gamma``.
        beta_initializer, gamma_initializer, moving_mean_initializer,
        moving_variance_initializer: initializers of the four weights.
        beta_regularizer, gamma_regularizer: optional regularizers.
        beta_constraint, gamma_constraint: optional constraints.
        renorm: use batch renormalization in training (see
            :mod:`lamina.layers.batch_renorm`; adds ``moving_stddev``, ``renorm_mean``,
            ``renorm_stddev``).
        renorm_clipping: optional dict with ``rmax``, ``rmin``, ``dmax`` clipping the
            renorm corrections.
        renorm_momentum: momentum of the renorm statistics.

    Call arguments:
        inputs: a tensor of any rank >= 2.
        training: use (and update) the batch statistics when True.
        mask: optional boolean mask broadcastable to the input without ``axis``;
            masked positions do not count towards the batch statistics.

    Input shape:
        Any, with a known size along ``axis``.

    Output shape:
        Same as the input.

    Weights: ``gamma``, ``beta`` (trainable), ``moving_mean``, ``moving_variance``,
    each of shape ``(input_shape[axis],)``.
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, renorm=False, renorm_clipping=None, renorm_momentum=0.99,
                 synchronized=False, **kwargs):
        super().__init__(**kwargs)
        self.renorm = bool(renorm)
        self.renorm_clipping = batch_renorm.check_renorm_clipping(self.renorm, renorm_clipping)
        self.renorm_momentum = float(renorm_momentum)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"Argument `axis` must be an int. Received: axis={axis!r}")
        if not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
            raise ValueError(
                f"Argument `momentum` must be a float in [0, 1]. Received: momentum={momentum!r}")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = _check_epsilon(epsilon)
        self.synchronized = bool(synchronized)
        self._init_affine(center, scale, beta_initializer, gamma_initializer,
                          beta_regularizer, gamma_regularizer, beta_constraint,
                          gamma_constraint)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim:
            raise ValueError(
                f"Argument `axis` of layer '{self.name}' is out of range for an input of rank "
                f"{ndim}. Received: axis={self.axis}")
        dim = input_shape[self.axis]
        if dim is None:
            raise ValueError(
                f"Axis {self.axis} of the input to BatchNormalization '{self.name}' must have "
                f"a known size. Received: input_shape={tuple(input_shape)}")
        self._build_affine((dim,), gamma=self.scale, beta=self.center)
        self.moving_mean = self.add_weight(
            name="moving_mean", shape=(dim,), initializer=self.moving_mean_initializer,
            trainable=False)
        self.moving_variance = self.add_weight(
            name="moving_variance", shape=(dim,), initializer=self.moving_variance_initializer,
            trainable=False)
        if self.renorm:
            batch_renorm.add_renorm_weights(self, dim)
        self.input_spec = InputSpec(ndim=ndim, axes={self.axis: dim})
        self.built = True

    def call(self, inputs, training=None, mask=None):
        ndim = inputs.ndim
        axis = self.axis % ndim
        reduce_axes = tuple(a for a in range(ndim) if a != axis)
        bshape = _param_shape(ndim, (axis,), inputs.shape)
        gamma, beta = _reshaped(self.gamma, bshape), _reshaped(self.beta, bshape)
        if not (training and self.trainable):
            out, _, _ = normalize(inputs, gamma, beta, axes=reduce_axes, epsilon=self.epsilon,
                                  mean=self.moving_mean.data.reshape(bshape),
                                  variance=self.moving_variance.data.reshape(bshape))
            return out
        if self.renorm:
            return batch_renorm.renorm_training_call(self, inputs, mask, gamma, beta,
                                                     reduce_axes, bshape)
        if mask is None:
            out, mean, variance = normalize(inputs, gamma, beta, axes=reduce_axes,
                                            epsilon=self.epsilon)
        else:
            out, mean, variance = self._masked_call(inputs, mask, gamma, beta, reduce_axes)
        self._update_moving(self.moving_mean, mean.reshape(-1))
        self._update_moving(self.moving_variance, variance.reshape(-1))
        return out

    def _masked_call(self, inputs, mask, gamma, beta, reduce_axes):
        return batch_renorm.masked_batch_norm(inputs, mask, gamma, beta, reduce_axes,
                                              self.epsilon)

    def _update_moving(self, variable, batch_value):
        variable.assign(variable.data * self.momentum + batch_value * (1.0 - self.momentum))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            **self._affine_config(),
            "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": initializers.serialize(
                self.moving_variance_initializer),
            "renorm": self.renorm,
            "renorm_clipping": self.renorm_clipping,
            "renorm_momentum": self.renorm_momentum,
            "synchronized": self.synchronized,
        }


def _normalize_axes(axis, ndim, name):
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(
                f"Axis {a} of layer '{name}' is out of bounds for an input of rank {ndim}. "
                f"Received: axis={axis!r}")
    return tuple(sorted({int(a) % ndim for a in axes}))


class LayerNormalization(_AffineMixin, Layer):
    """Normalizes each sample over ``axis``: ``gamma * (x - mean) / sqrt(var + eps) + beta``.

    Args:
        axis: int or list of ints, the axes normalized together (``-1``).
        epsilon: small float added to the variance.
        center: whether to add ``beta``.
        scale: whether to multiply by ``gamma``.
        rms_scaling: if True, ``center`` and ``scale`` are ignored and the output is
            ``x * gamma / sqrt(mean(x ** 2) + epsilon)`` (RMS normalization).
        beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer,
        beta_constraint, gamma_constraint: as for :class:`BatchNormalization`.

    Input shape:
        Any.

    Output shape:
        Same as the input.

    Weights: ``gamma`` then ``beta``, of shape ``input_shape[axis]`` (one entry per axis).
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis = [int(a) for a in axis]
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            self.axis = int(axis)
        else:
            raise TypeError(
                f"Expected an int or a list/tuple of ints for the argument 'axis', but "
                f"received: {axis!r}")
        self.epsilon = _check_epsilon(epsilon)
        self.rms_scaling = bool(rms_scaling)
        self._init_affine(center, scale, beta_initializer, gamma_initializer,
                          beta_regularizer, gamma_regularizer, beta_constraint,
                          gamma_constraint)
        self.supports_masking = True

    def build(self, input_shape):
        axes = _normalize_axes(self.axis, len(input_shape), self.name)
        shape = tuple(input_shape[a] for a in axes)
        if any(d is None for d in shape):
            raise ValueError(
                f"The normalized axes of LayerNormalization '{self.name}' must have known "
                f"sizes. Received: input_shape={tuple(input_shape)}")
        self._build_affine(shape, gamma=self.scale or self.rms_scaling,
                           beta=self.center and not self.rms_scaling)
        self.built = True

    def call(self, inputs):
        ndim = inputs.ndim
        axes = _normalize_axes(self.axis, ndim, self.name)
        bshape = _param_shape(ndim, axes, inputs.shape)
        gamma, beta = _reshaped(self.gamma, bshape), _reshaped(self.beta, bshape)
        if self.rms_scaling:
            mean_square = ops.mean(ops.square(inputs), axis=axes, keepdims=True)
            out = ops.multiply(inputs, ops.divide(1.0, ops.sqrt(
                ops.add(mean_square, self.epsilon))))
            return ops.multiply(out, gamma) if gamma is not None else out
        out, _, _ = normalize(inputs, gamma, beta, axes=axes, epsilon=self.epsilon)
        return out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "rms_scaling": self.rms_scaling, **self._affine_config()}


class GroupNormalization(_AffineMixin, Layer):
    """Splits the channels into ``groups`` and normalizes each group of each sample.

    Statistics are taken over the spatial axes and the channels of one group;
    ``groups=1`` is LayerNormalization over all non-batch axes, ``groups=channels`` is
    InstanceNormalization.

    Args:
        groups: number of groups; must divide the number of channels.
        axis: the channel axis (``-1``).
        epsilon: small float added to the variance.
        center, scale, beta_initializer, gamma_initializer, beta_regularizer,
        gamma_regularizer, beta_constraint, gamma_constraint: as for
        :class:`BatchNormalization`.

    Input shape:
        ``(batch_size, ..., channels)`` (or channels at ``axis``).

    Output shape:
        Same as the input.

    Weights: ``gamma`` then ``beta``, each of shape ``(channels,)``.
    """

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups <= 0:
            raise ValueError(
                f"Argument `groups` must be a positive integer. Received: groups={groups!r}")
        self.groups = int(groups)
        self.axis = int(axis)
        self.epsilon = _check_epsilon(epsilon)
        self._init_affine(center, scale, beta_initializer, gamma_initializer,
                          beta_regularizer, gamma_regularizer, beta_constraint,
                          gamma_constraint)
        self.supports_masking = True

    def build(self, input_shape):
        channels = input_shape[self.axis]
        if channels is None:
            raise ValueError(
                f"Axis {self.axis} of input tensor should have a defined dimension but the "
                f"layer received an input with shape {tuple(input_shape)}.")
        if self.groups > channels:
            raise ValueError(
                f"Number of groups ({self.groups}) cannot be more than the number of "
                f"channels ({channels}).")
        if channels % self.groups:
            raise ValueError(
                f"Number of groups ({self.groups}) must be a multiple of the number of "
                f"channels ({channels}).")
        self._build_affine((channels,), gamma=self.scale, beta=self.center)
        self.built = True

    def call(self, inputs):
        ndim = inputs.ndim
        axis = self.axis % ndim
        shape = list(inputs.shape)
        grouped = shape[:axis] + [self.groups, shape[axis] // self.groups] + shape[axis + 1:]
        reduce_axes = tuple(a for a in range(1, ndim + 1) if a != axis)
        pshape = _param_shape(ndim + 1, (axis, axis + 1), grouped)
        gamma, beta = _reshaped(self.gamma, pshape), _reshaped(self.beta, pshape)
        out, _, _ = normalize(ops.reshape(inputs, grouped), gamma, beta, axes=reduce_axes,
                              epsilon=self.epsilon)
        return ops.reshape(out, inputs.shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis,
                "epsilon": self.epsilon, **self._affine_config()}


class UnitNormalization(Layer):
    """Scales each sample to unit L2 norm over ``axis``: ``x / sqrt(max(sum(x**2), 1e-12))``.

    Args:
        axis: int or list of ints, the axes whose joint norm becomes 1.

    Input shape:
        Any.

    Output shape:
        Same as the input.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis = [int(a) for a in axis]
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            self.axis = int(axis)
        else:
            raise TypeError(
                f"Invalid value for `axis` argument: expected an int or a list/tuple of ints. "
                f"Received: axis={axis!r}")
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        axes = _normalize_axes(self.axis, inputs.ndim, self.name)
        square_sum = ops.sum(ops.square(inputs), axis=axes, keepdims=True)
        return ops.divide(inputs, ops.sqrt(ops.maximum(square_sum, 1e-12)))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
