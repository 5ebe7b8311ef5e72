"""Preprocessing layers: Normalization (with ``adapt``) and Rescaling."""

from __future__ import annotations

import numpy as np

from lamina import ops
from lamina.layers.layer import Layer

_EPSILON = 1e-7


class Normalization(Layer):
    """Standardizes features: ``(x - mean) / max(sqrt(variance), 1e-7)``.

    The statistics are given (``mean``, ``variance``) or computed from data by
    :meth:`adapt`. With ``invert=True`` the layer undoes the standardization.

    Args:
        axis: int, tuple of ints or None: the axes that keep a separate mean and
            variance per index (``-1``: one per feature). None: one scalar mean and
            variance.
        mean, variance: optional statistics (scalars or arrays broadcastable to the
            kept axes); both or neither.
        invert: if True, compute ``mean + x * sqrt(variance)``.

    Input shape:
        Any, with known sizes along ``axis``.

    Output shape:
        Same as the input.

    Example:
        >>> import numpy as np
        >>> from lamina import layers
        >>> layer = layers.Normalization()
        >>> layer.adapt(np.array([[0.0], [2.0]]))
        >>> layer(np.array([[4.0]])).numpy()
        array([[3.]], dtype=float32)
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, (int, np.integer)):
            axis = (int(axis),)
        else:
            axis = tuple(int(a) for a in axis)
        self.axis = axis
        if (mean is None) != (variance is None):
            raise ValueError(
                "When setting values directly, both `mean` and `variance` must be set. "
                f"Received: mean={mean!r} and variance={variance!r}")
        self.input_mean = mean
        self.input_variance = variance
        self.invert = bool(invert)
        self.supports_masking = True

    def build(self, input_shape):
        ndim = len(input_shape)
        for a in self.axis:
            if not -ndim <= a < ndim:
                raise ValueError(
                    f"All `axis` values must be in the range [-ndim, ndim). Received inputs "
                    f"with ndim={ndim}, while axis={self.axis}")
        self._keep_axes = tuple(sorted(a % ndim for a in self.axis))
        self._reduce_axes = tuple(a for a in range(ndim) if a not in self._keep_axes)
        stats_shape = tuple(input_shape[a] for a in self._keep_axes)
        if any(d is None for d in stats_shape):
            raise ValueError(
                f"All `axis` values to be kept must have a known shape. Received axis="
                f"{self.axis}, inputs.shape={tuple(input_shape)}, with unknown axis at index "
                f"{[a for a in self._keep_axes if input_shape[a] is None][0]}")
        self._broadcast_shape = tuple(input_shape[a] if a in self._keep_axes else 1
                                      for a in range(ndim))
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(name="mean", shape=stats_shape,
                                              initializer="zeros", trainable=False)
            self.adapt_variance = self.add_weight(name="variance", shape=stats_shape,
                                                  initializer="ones", trainable=False)
            # Keras 3 keeps this (unused) counter for older saved models; kept for layout.
            self.count = self.add_weight(name="count", shape=(), dtype="int64",
                                         initializer="zeros", trainable=False)
        self.built = True

    def adapt(self, data):
        """Compute the mean and (biased) variance of ``data`` over the reduced axes.

        Args:
            data: an array (or Tensor) of samples, or an iterable of batches.

        Raises:
            ValueError: when the layer was given ``mean`` and ``variance``.
        """
        if self.input_mean is not None:
            raise ValueError("Cannot `adapt` a Normalization layer that was given `mean` and "
                             "`variance` arguments.")
        if isinstance(data, (list, tuple)) or hasattr(data, "shape"):
            batches = [np.asarray(getattr(data, "data", data), dtype="float64")]
        else:
            batches = [np.asarray(getattr(b, "data", b), dtype="float64") for b in data]
        if not self.built:
            self.build((None, *batches[0].shape[1:]))
        # Chan et al.'s pairwise merge keeps the variance exact across batches.
        count, mean, m2 = 0, 0.0, 0.0
        for batch in batches:
            n = int(np.prod([batch.shape[a] for a in self._reduce_axes]))
            b_mean = np.mean(batch, axis=self._reduce_axes)
            b_m2 = np.sum(np.square(batch - np.mean(batch, axis=self._reduce_axes,
                                                    keepdims=True)), axis=self._reduce_axes)
            delta = b_mean - mean
            total = count + n
            mean = mean + delta * n / total
            m2 = m2 + b_m2 + np.square(delta) * count * n / total
            count = total
        self.adapt_mean.assign(np.reshape(mean, self.adapt_mean.shape))
        self.adapt_variance.assign(np.reshape(m2 / count, self.adapt_variance.shape))

    def _stats(self):
        if self.input_mean is not None:
            mean = np.broadcast_to(np.asarray(self.input_mean, dtype=self.dtype),
                                   self._broadcast_shape)
            variance = np.broadcast_to(np.asarray(self.input_variance, dtype=self.dtype),
                                       self._broadcast_shape)
            return mean, variance
        return (self.adapt_mean.data.reshape(self._broadcast_shape),
                self.adapt_variance.data.reshape(self._broadcast_shape))

    def call(self, inputs):
        mean, variance = self._stats()
        std = np.maximum(np.sqrt(variance), np.asarray(_EPSILON, dtype=variance.dtype))
        if self.invert:
            return ops.add(ops.multiply(inputs, std), mean)
        return ops.divide(ops.subtract(inputs, mean), std)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        def plain(value):
            return np.asarray(value).tolist() if value is not None else None

        return {**super().get_config(), "axis": list(self.axis) if self.axis else None,
                "mean": plain(self.input_mean), "variance": plain(self.input_variance),
                "invert": self.invert}


class Rescaling(Layer):
    """Computes ``inputs * scale + offset`` (e.g. ``scale=1/255`` for pixels).

    Args:
        scale: float (or array broadcastable to the input).
        offset: float (or array broadcastable to the input).

    Input shape:
        Any.

    Output shape:
        Same as the input.
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        dtype = inputs.data.dtype if inputs.data.dtype.kind == "f" else np.dtype(self.dtype)
        inputs = ops.cast(inputs, dtype)
        return ops.add(ops.multiply(inputs, np.asarray(self.scale, dtype=dtype)),
                       np.asarray(self.offset, dtype=dtype))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        def plain(value):
            return np.asarray(value).tolist() if np.ndim(value) else float(value)

        return {**super().get_config(), "scale": plain(self.scale),
                "offset": plain(self.offset)}
