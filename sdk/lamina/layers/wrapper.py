"""``Wrapper``: the base of layers that wrap another layer (TimeDistributed, Bidirectional,
SpectralNormalization), as in Keras."""

from __future__ import annotations

from lamina.layers.layer import Layer
from lamina.layers.layer_serialization import deserialize, serialize


class Wrapper(Layer):
    """A layer that holds another layer in ``self.layer`` and builds it on first use.

    Subclass it and implement ``call`` (and usually ``compute_output_shape``); the wrapped
    layer's weights are the wrapper's, and ``get_config``/``from_config`` carry it.

    Args:
        layer: the layer to wrap.

    Raises:
        ValueError: when ``layer`` is not a layer.
    """

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(f"Layer {layer} supplied to Wrapper isn't a supported layer type. "
                             "Please ensure wrapped layer is a valid Keras layer.")
        super().__init__(**kwargs)
        self.layer = layer
        self.supports_masking = bool(getattr(layer, "supports_masking", False))

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
            self.layer.built = True
        self.built = True

    def get_config(self):
        return {**super().get_config(), "layer": serialize(self.layer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        layer = config.pop("layer")
        if not isinstance(layer, Layer):
            layer = deserialize(layer, custom_objects=custom_objects)
        return cls(layer, **config)
