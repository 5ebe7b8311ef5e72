"""Global numeric settings: the default float type."""

from __future__ import annotations

import contextlib

import numpy as np

_FLOATX = "float32"
_ALLOWED = ("float16", "float32", "float64")


def floatx() -> str:
    """Return the default float type as a string (``"float32"`` unless changed)."""
    return _FLOATX


def set_floatx(value: str) -> None:
    """Set the default float type.

    Args:
        value: one of ``"float16"``, ``"float32"``, ``"float64"``.

    Raises:
        ValueError: for any other value.
    """
    global _FLOATX
    if value not in _ALLOWED:
        raise ValueError(f"Unknown floatx type. Expected one of {_ALLOWED}. Received: value={value!r}")
    _FLOATX = str(value)


@contextlib.contextmanager
def floatx_scope(value: str):
    """Temporarily set the default float type (used by float64 gradient checks)."""
    previous = floatx()
    set_floatx(value)
    try:
        yield
    finally:
        set_floatx(previous)


def standardize_dtype(dtype) -> str:
    """Return the dtype as a string name, ``floatx()`` when ``dtype`` is None."""
    if dtype is None:
        return floatx()
    return np.dtype(dtype).name
