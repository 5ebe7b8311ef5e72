"""``keras.quantizers``: int8/int4/float8 quantisation helpers and configs (numpy).

Not provided: ``GPTQConfig`` and ``AWQConfig`` (they drive ``Model.quantize`` with a
calibration dataset and tokenizer, which Lamina does not have).
"""

from __future__ import annotations

import re

from lamina.quantizers.fake_quant import fake_quant_with_min_max_vars
from lamina.quantizers.int4 import pack_int4, unpack_int4
from lamina.quantizers.quantization_config import (
    Float8QuantizationConfig,
    Int4QuantizationConfig,
    Int8QuantizationConfig,
    QuantizationConfig,
)
from lamina.quantizers.quantizers import (
    AbsMaxQuantizer,
    Quantizer,
    abs_max_quantize,
    abs_max_quantize_grouped_with_zero_point,
    compute_float8_amax_history,
    compute_float8_scale,
    quantize_and_dequantize,
)

__all__ = [
    "AbsMaxQuantizer", "Float8QuantizationConfig", "Int4QuantizationConfig",
    "Int8QuantizationConfig", "QuantizationConfig", "Quantizer", "abs_max_quantize",
    "abs_max_quantize_grouped_with_zero_point", "compute_float8_amax_history",
    "compute_float8_scale", "deserialize", "fake_quant_with_min_max_vars", "get",
    "pack_int4", "quantize_and_dequantize", "serialize", "unpack_int4",
]

_ALL_OBJECTS = (Quantizer, AbsMaxQuantizer, QuantizationConfig, Int8QuantizationConfig,
                Int4QuantizationConfig, Float8QuantizationConfig)
_ALL_OBJECTS_DICT = {cls.__name__: cls for cls in _ALL_OBJECTS}
_ALL_OBJECTS_DICT.update({re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower(): cls
                          for cls in _ALL_OBJECTS})


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def serialize(initializer):
    """A quantizer or config as Keras's config dict (``None`` stays ``None``).

    Args:
        initializer: the quantizer or quantisation config (Keras's argument name).

    Returns:
        ``{"module": "keras.quantizers", "class_name", "config", "registered_name"}``.
    """
    if initializer is None:
        return None
    return {"module": "keras.quantizers", "class_name": type(initializer).__name__,
            "config": _plain(initializer.get_config()), "registered_name": None}


def deserialize(config, custom_objects=None):
    """A quantizer or config from :func:`serialize`'s dict.

    Args:
        config: the dict (``None`` gives ``None``).
        custom_objects: extra classes by name.

    Returns:
        The object.

    Raises:
        ValueError: for an unknown class name.
    """
    if config is None:
        return None
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Could not interpret quantizer config. Received: config={config!r}")
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or _ALL_OBJECTS_DICT.get(name)
    if cls is None:
        raise ValueError(f"Unknown quantizer class. Received: class_name={name!r}")
    inner = dict(config.get("config") or {})
    if "value_range" in inner:
        inner["value_range"] = tuple(inner["value_range"])
    if "axis" in inner and isinstance(inner["axis"], list):
        inner["axis"] = tuple(inner["axis"])
    return cls.from_config(inner)


def get(identifier, **kwargs):
    """A quantizer from a name (``"AbsMaxQuantizer"``, ``"abs_max_quantizer"``), a config
    dict, or an instance (returned as is).

    Args:
        identifier: the name, dict, callable or ``None``.
        **kwargs: constructor arguments for a name.

    Returns:
        The quantizer (``None`` for ``None``).

    Raises:
        ValueError: for an identifier that names nothing.
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = _ALL_OBJECTS_DICT.get(identifier, None)
    else:
        obj = identifier
    if callable(obj):
        return obj(**kwargs) if isinstance(obj, type) else obj
    raise ValueError(f"Could not interpret quantizer identifier: {identifier}. "
                     f"Received: identifier={identifier!r}")
