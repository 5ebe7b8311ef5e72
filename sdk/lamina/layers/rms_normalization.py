"""RMSNormalization: ``x * rsqrt(mean(x**2, axis) + epsilon) * scale`` (Zhang & Sennrich)."""

from __future__ import annotations

from lamina import ops
from lamina.layers.layer import Layer


class RMSNormalization(Layer):
    """Root-mean-square normalization with a learned ``scale`` (no centring, no bias).

    Args:
        axis: int or list of ints, the axes normalized over (and the shape of ``scale``).
        epsilon: small float added to the mean square.

    Input shape:
        Any; ``axis`` must exist in it.

    Output shape:
        Same as the input.

    Weights: ``scale`` of shape ``input_shape[axis]`` (initialized to ones).

    Example:
        >>> import numpy as np, lamina as keras
        >>> out = keras.layers.RMSNormalization()(np.array([[3.0, 4.0]]))
        >>> np.round(np.asarray(out, dtype="float64"), 4).tolist()
        [[0.8485, 1.1314]]
    """

    def __init__(self, axis=-1, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, (int, list, tuple)) or isinstance(axis, bool):
            raise TypeError(f"Argument `axis` must be an int or a list of ints. "
                            f"Received: axis={axis!r}")
        if not isinstance(epsilon, (int, float)) or epsilon < 0:
            raise ValueError(f"Argument `epsilon` must be a non-negative float. "
                             f"Received: epsilon={epsilon!r}")
        self.axis = list(axis) if isinstance(axis, tuple) else axis
        self.epsilon = float(epsilon)

    def _check_axes(self, input_shape):
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        for a in axes:
            if a >= len(input_shape) or a < -len(input_shape):
                raise ValueError(f"Axis {a} is out of bounds for input shape "
                                 f"{tuple(input_shape)}. Received: axis={self.axis}")
        return axes

    def build(self, input_shape):
        axes = sorted(self._check_axes(input_shape))
        # Keras stores the axes as a sorted list once built (its config then shows it).
        self.axis = axes
        self.scale = self.add_weight(name="scale", shape=tuple(input_shape[a] for a in axes),
                                     initializer="ones")
        self.built = True

    def call(self, inputs):
        return ops.rms_normalization(inputs, scale=self.scale, axis=self.axis,
                                     epsilon=self.epsilon)

    def compute_output_shape(self, input_shape):
        self._check_axes(input_shape)
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}
