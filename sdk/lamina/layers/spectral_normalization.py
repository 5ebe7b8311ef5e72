"""SpectralNormalization: divides a wrapped layer's kernel by its largest singular value.

As in Keras: in training, ``power_iterations`` steps of the power method (from the
stored ``vector_u``) estimate the spectral norm ``sigma`` of the kernel reshaped to
``(-1, kernel.shape[-1])``; the kernel is *assigned* ``kernel / sigma`` and ``vector_u``
updated, then the wrapped layer runs. The estimate is a constant for the gradient.
Weights, in Keras's order: the wrapped kernel, ``vector_u (1, kernel.shape[-1])``
(non-trainable), then the wrapped layer's other weights.
"""

from __future__ import annotations

import numpy as np

from lamina import initializers
from lamina.layers.input_spec import InputSpec
from lamina.layers.wrapper import Wrapper

_EPSILON = 1e-7


def _l2_normalize(x):
    return x * min(1.0 / np.sqrt(np.sum(np.square(x))), 1.0 / _EPSILON)


class SpectralNormalization(Wrapper):
    """Spectral normalization of a layer with a ``kernel`` (or ``embeddings``) weight.

    Args:
        layer: the layer to wrap (``Dense``, ``Conv2D``, ``Embedding``, ...).
        power_iterations: positive int, power-method steps per training call.

    Call arguments:
        inputs: the wrapped layer's input.
        training: normalize (and update ``vector_u``) when True.

    Raises:
        ValueError: for ``power_iterations <= 0``, or a wrapped layer without a kernel.

    Example:
        >>> import numpy as np, lamina as keras
        >>> layer = keras.layers.SpectralNormalization(keras.layers.Dense(4))
        >>> layer(np.ones((2, 3)), training=True).shape
        (2, 4)
    """

    def __init__(self, layer, power_iterations=1, **kwargs):
        super().__init__(layer, **kwargs)
        if isinstance(power_iterations, bool) or not isinstance(
                power_iterations, (int, np.integer)) or power_iterations <= 0:
            raise ValueError("`power_iterations` should be greater than zero. Received: "
                             f"`power_iterations={power_iterations}`")
        self.power_iterations = int(power_iterations)

    def build(self, input_shape):
        super().build(input_shape)
        self.input_spec = InputSpec(min_ndim=1, axes={-1: input_shape[-1]})
        if hasattr(self.layer, "kernel"):
            self.kernel = self.layer.kernel
        elif hasattr(self.layer, "embeddings"):
            self.kernel = self.layer.embeddings
        else:
            raise ValueError(f"{type(self.layer).__name__} object has no attribute 'kernel' "
                             "nor 'embeddings'")
        # Keras tracks the wrapped kernel as the wrapper's own variable too (weights order
        # and the wrapper's vars in weights files).
        self._own_variables.append(self.kernel)
        self.kernel_shape = tuple(self.kernel.shape)
        self.vector_u = self.add_weight(
            name="vector_u", shape=(1, self.kernel_shape[-1]), trainable=False,
            initializer=initializers.TruncatedNormal(stddev=0.02), dtype=self.kernel.dtype)
        self.built = True

    def call(self, inputs, training=False):
        if training and np.any(self.kernel.data != 0):
            vector_u, kernel = self.normalized_weights()
            self.vector_u.assign(vector_u)
            self.kernel.assign(kernel)
        return self.layer(inputs)

    def normalized_weights(self):
        """``(new vector_u, kernel / sigma)`` as arrays, from the power method."""
        kernel = self.kernel.data
        weights = kernel.reshape(-1, self.kernel_shape[-1]).astype(np.float64)
        vector_u = self.vector_u.data.astype(np.float64)
        for _ in range(self.power_iterations):
            vector_v = _l2_normalize(vector_u @ weights.T)
            vector_u = _l2_normalize(vector_v @ weights)
        sigma = (vector_v @ weights @ vector_u.T).item()
        return vector_u.astype(self.vector_u.dtype), (kernel / sigma).astype(kernel.dtype)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}
