"""Dtype policies with ``keras.dtype_policies``' names; Lamina computes in float32.

A policy names a compute and a variable dtype. ``"float32"``/``"float64"`` are honoured
as they are; the mixed policies (``"mixed_float16"``, ``"mixed_bfloat16"``) are accepted
so that scripts written for accelerators run, and are reported as what numpy does: the
name is kept, both dtypes are float32 (float16 matmuls on a CPU are slower and less
exact, and numpy has no bfloat16). Quantized policies are not offered.

Example:
    >>> from lamina import dtype_policies
    >>> policy = dtype_policies.DTypePolicy("mixed_float16")
    >>> policy.name, policy.compute_dtype, policy.variable_dtype
    ('mixed_float16', 'float32', 'float32')
"""

from __future__ import annotations

__all__ = ["DTypePolicy", "FloatDTypePolicy", "deserialize", "get", "serialize"]

_MIXED = ("mixed_float16", "mixed_bfloat16")
_FLOAT = ("float16", "bfloat16", "float32", "float64")


class DTypePolicy:
    """A named pair of compute and variable dtypes.

    Args:
        name: ``"float32"``, ``"float64"``, ``"float16"``, ``"bfloat16"``,
            ``"mixed_float16"`` or ``"mixed_bfloat16"``; None means ``floatx()``.

    Raises:
        ValueError: for any other name.
    """

    def __init__(self, name=None) -> None:
        from lamina.backend.config import floatx

        name = floatx() if name is None else name
        if name not in _MIXED + _FLOAT:
            raise ValueError(f"Cannot convert '{name}' to a mixed precision DTypePolicy. "
                             f"Valid policies include {_MIXED + _FLOAT}. Received: name={name!r}")
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def compute_dtype(self) -> str:
        return "float64" if self._name == "float64" else "float32"

    @property
    def variable_dtype(self) -> str:
        return self.compute_dtype

    @property
    def quantization_mode(self):
        return None

    def get_config(self) -> dict:
        return {"name": self._name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other) -> bool:
        return isinstance(other, DTypePolicy) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self._name)

    def __repr__(self) -> str:
        return f'<DTypePolicy "{self._name}">'


FloatDTypePolicy = DTypePolicy


def serialize(dtype_policy) -> dict:
    """Keras's serialised form of a policy."""
    return {"module": "keras", "class_name": "DTypePolicy",
            "config": dtype_policy.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None) -> DTypePolicy:
    """A policy from :func:`serialize`'s form (``custom_objects`` is not consulted)."""
    del custom_objects
    if not isinstance(config, dict) or config.get("class_name") not in (
            "DTypePolicy", "FloatDTypePolicy"):
        raise ValueError(f"Cannot deserialize a dtype policy from config={config!r}")
    return DTypePolicy(**config.get("config", {}))


def get(identifier) -> DTypePolicy:
    """A policy from a name, a serialised dict, a policy or None (the global policy)."""
    from lamina import config

    if identifier is None:
        return config.dtype_policy()
    if isinstance(identifier, DTypePolicy):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return DTypePolicy(identifier)
    raise ValueError(f"Cannot interpret `dtype` argument. Received: identifier={identifier!r}")
