"""Quantisation configs (``keras.quantizers.*QuantizationConfig``, Keras 3.15.1).

They describe how a layer would be quantised (mode, quantizers, int4 block size) and
serialise as Keras's do; Lamina has no ``Model.quantize`` that consumes them yet.
"""

from __future__ import annotations


class QuantizationConfig:
    """Base of the quantisation configs.

    Args:
        weight_quantizer: quantizer of the weights (``None``: the mode's default).
        activation_quantizer: quantizer of the activations (``None``: none).
    """

    def __init__(self, weight_quantizer=None, activation_quantizer=None):
        self.weight_quantizer = weight_quantizer
        self.activation_quantizer = activation_quantizer

    @property
    def mode(self):
        """The quantisation mode (``"int8"``, ``"int4"``, ``"float8"``).

        Raises:
            NotImplementedError: in the base class.
        """
        raise NotImplementedError("Subclasses must implement this property. Do not "
                                  "instantiate QuantizationConfig directly.")

    def get_config(self):
        """The quantizers, serialised as Keras does."""
        from lamina.quantizers import serialize

        return {"weight_quantizer": serialize(self.weight_quantizer),
                "activation_quantizer": serialize(self.activation_quantizer)}

    @classmethod
    def from_config(cls, config):
        """Rebuild from :meth:`get_config`'s dict."""
        from lamina.quantizers import deserialize

        return cls(weight_quantizer=deserialize(config.get("weight_quantizer")),
                   activation_quantizer=deserialize(config.get("activation_quantizer")))

    @staticmethod
    def weight_quantizer_or_default(config, default):
        """``config``'s weight quantizer, or ``default`` if it has none."""
        if config is not None and config.weight_quantizer is not None:
            return config.weight_quantizer
        return default

    @staticmethod
    def activation_quantizer_or_default(config, default):
        """``config``'s activation quantizer (may be ``None``), or ``default`` without a
        config."""
        if config is not None:
            return config.activation_quantizer
        return default


class Int8QuantizationConfig(QuantizationConfig):
    """Int8 quantisation; activations default to an ``AbsMaxQuantizer``.

    Args:
        weight_quantizer: an int8 quantizer, or ``None``.
        activation_quantizer: ``"default"`` (``AbsMaxQuantizer()``), a quantizer or
            ``None``.

    Raises:
        ValueError: for a weight quantizer whose ``output_dtype`` is not int8.
    """

    def __init__(self, weight_quantizer=None, activation_quantizer="default"):
        from lamina.quantizers.quantizers import AbsMaxQuantizer

        if isinstance(activation_quantizer, str) and activation_quantizer == "default":
            activation_quantizer = AbsMaxQuantizer()
        super().__init__(weight_quantizer, activation_quantizer)
        if weight_quantizer is not None and weight_quantizer.output_dtype != "int8":
            raise ValueError("Int8QuantizationConfig requires a weight_quantizer with "
                             "output_dtype='int8'. Received: "
                             f"output_dtype={weight_quantizer.output_dtype}")

    @property
    def mode(self):
        """``"int8"``."""
        return "int8"


class Int4QuantizationConfig(QuantizationConfig):
    """Int4 quantisation, per channel or in blocks of ``block_size`` input rows.

    Args:
        weight_quantizer: a quantizer with ``value_range=(-8, 7)`` and int8 output (only
            per channel), or ``None``.
        activation_quantizer: ``"default"`` (none) or a quantizer (only per channel).
        block_size: rows per block; ``None`` or ``-1`` for per-channel.

    Raises:
        ValueError: for a bad ``block_size``, custom quantizers with blocks, or a weight
            quantizer of the wrong range/dtype.
    """

    def __init__(self, weight_quantizer=None, activation_quantizer="default", block_size=128):
        if isinstance(activation_quantizer, str) and activation_quantizer == "default":
            activation_quantizer = None
        super().__init__(weight_quantizer, activation_quantizer)
        if block_size is not None and block_size != -1 and block_size <= 0:
            raise ValueError("block_size must be None, -1, or a positive integer. "
                             f"Received: block_size={block_size}")
        self.block_size = block_size
        sub_channel = block_size is not None and block_size > 0
        if sub_channel and (weight_quantizer is not None or activation_quantizer is not None):
            raise ValueError(
                "Int4 sub-channel quantization (block_size > 0) does not support custom "
                "quantizers. Either set block_size to None or -1 for per-channel "
                "quantization, or remove the custom quantizer arguments. Received: "
                f"block_size={block_size}")
        if weight_quantizer is not None:
            if tuple(weight_quantizer.value_range) != (-8, 7):
                raise ValueError("Int4QuantizationConfig requires a weight_quantizer with "
                                 "value_range=(-8, 7). Received: "
                                 f"value_range={weight_quantizer.value_range}")
            if weight_quantizer.output_dtype != "int8":
                raise ValueError("Int4QuantizationConfig requires a weight_quantizer with "
                                 "output_dtype='int8'. Received: "
                                 f"output_dtype={weight_quantizer.output_dtype}")

    @property
    def mode(self):
        """``"int4"``."""
        return "int4"

    def get_config(self):
        """The quantizers and ``block_size``."""
        config = super().get_config()
        config["block_size"] = self.block_size
        return config

    @classmethod
    def from_config(cls, config):
        """Rebuild from :meth:`get_config`'s dict."""
        from lamina.quantizers import deserialize

        return cls(weight_quantizer=deserialize(config.get("weight_quantizer")),
                   activation_quantizer=deserialize(config.get("activation_quantizer")),
                   block_size=config.get("block_size", None))


class Float8QuantizationConfig(QuantizationConfig):
    """Float8 (delayed-scaling) quantisation; takes no arguments."""

    def __init__(self):
        super().__init__(None, None)

    @property
    def mode(self):
        """``"float8"``."""
        return "float8"

    def get_config(self):
        """An empty dict."""
        return {}

    @classmethod
    def from_config(cls, config):
        """A new ``Float8QuantizationConfig``."""
        return cls()
