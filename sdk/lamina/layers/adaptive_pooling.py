"""Adaptive pooling: pool any spatial size down to a fixed ``output_size``.

AdaptiveAveragePooling1D/2D/3D and AdaptiveMaxPooling1D/2D/3D run
:func:`lamina.ops.adaptive_average_pool` / :func:`lamina.ops.adaptive_max_pool`
(PyTorch's bins: bin ``i`` covers ``floor(i*n/out)`` to ``ceil((i+1)*n/out)``).
"""

from __future__ import annotations

from lamina import ops
from lamina.layers.base_conv import standardize_data_format
from lamina.layers.layer import Layer


class BaseAdaptivePooling(Layer):
    """Pools ``rank`` spatial axes to ``output_size``; members choose average or max."""

    _rank = None
    _op = None

    def __init__(self, output_size, data_format=None, **kwargs):
        rank = self._rank
        if isinstance(output_size, int) and not isinstance(output_size, bool):
            sizes = (output_size,) * rank
        elif isinstance(output_size, (tuple, list)):
            if len(output_size) != rank:
                raise ValueError(f"For {rank}D input, `output_size` tuple must have length "
                                 f"{rank}. Received: output_size={output_size!r}")
            sizes = tuple(output_size)
        else:
            raise TypeError(f"`output_size` must be an integer or a tuple of {rank} integers. "
                            f"Received: output_size={output_size!r}")
        if any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in sizes):
            raise ValueError(f"`output_size` must hold positive integers. "
                             f"Received: output_size={output_size!r}")
        super().__init__(**kwargs)
        self.output_size = sizes
        self.data_format = standardize_data_format(data_format)
        self.built = True

    def _check(self, shape):
        if len(shape) != self._rank + 2:
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: expected "
                f"ndim={self._rank + 2}, found ndim={len(shape)}. Full shape received: "
                f"{tuple(shape)}")

    def call(self, inputs):
        self._check(inputs.shape)
        return type(self)._op(inputs, self.output_size, data_format=self.data_format)

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        if self.data_format == "channels_last":
            return (input_shape[0], *self.output_size, input_shape[-1])
        return (input_shape[0], input_shape[1], *self.output_size)

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size,
                "data_format": self.data_format}


_DOC = """Adaptive {what} pooling of {rank}D data to a fixed ``output_size``.

    Args:
        output_size: int or tuple of {rank} positive ints, the pooled spatial size.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.

    Input shape:
        ``(batch, {spatial}, channels)`` (or channels_first).

    Output shape:
        ``(batch, *output_size, channels)`` (or channels_first).
"""


def _doc(what, rank):
    spatial = ("steps", "rows, cols", "d1, d2, d3")[rank - 1]
    return _DOC.format(what=what, rank=rank, spatial=spatial)


class AdaptiveAveragePooling1D(BaseAdaptivePooling):
    __doc__ = _doc("average", 1)
    _rank, _op = 1, staticmethod(ops.adaptive_average_pool)


class AdaptiveAveragePooling2D(BaseAdaptivePooling):
    __doc__ = _doc("average", 2)
    _rank, _op = 2, staticmethod(ops.adaptive_average_pool)


class AdaptiveAveragePooling3D(BaseAdaptivePooling):
    __doc__ = _doc("average", 3)
    _rank, _op = 3, staticmethod(ops.adaptive_average_pool)


class AdaptiveMaxPooling1D(BaseAdaptivePooling):
    __doc__ = _doc("max", 1)
    _rank, _op = 1, staticmethod(ops.adaptive_max_pool)


class AdaptiveMaxPooling2D(BaseAdaptivePooling):
    __doc__ = _doc("max", 2)
    _rank, _op = 2, staticmethod(ops.adaptive_max_pool)


class AdaptiveMaxPooling3D(BaseAdaptivePooling):
    __doc__ = _doc("max", 3)
    _rank, _op = 3, staticmethod(ops.adaptive_max_pool)
