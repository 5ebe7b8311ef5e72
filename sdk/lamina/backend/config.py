"""Global settings with ``keras.backend``'s names: float type, epsilon, image format."""

from __future__ import annotations

import contextlib

import numpy as np

_FLOATX = "float32"
_ALLOWED = ("float16", "float32", "float64")
_EPSILON = 1e-7
_IMAGE_DATA_FORMAT = "channels_last"


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
        raise ValueError(
            f"Unknown floatx type. Expected one of {_ALLOWED}. Received: value={value!r}")
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
    if is_string_dtype(dtype):
        return "string"
    return np.dtype(dtype).name


def is_string_dtype(dtype) -> bool:
    """Whether ``dtype`` means text: ``"string"``, ``str``/``bytes`` or numpy's U/S kinds."""
    if dtype in ("string", "str", "bytes", str, bytes):
        return True
    if isinstance(dtype, str):
        return dtype.startswith(("str", "bytes")) and dtype[-1:].isdigit()
    return isinstance(dtype, np.dtype) and dtype.kind in "US"


_GET_UID: dict = {}


def get_uid(prefix: str = "") -> int:
    """``keras.backend.get_uid``: 1 the first time for ``prefix``, then 2, 3, ...
    (``clear_session`` starts over)."""
    _GET_UID[prefix] = _GET_UID.get(prefix, 0) + 1
    return _GET_UID[prefix]


def backend() -> str:
    """The backend's name (``keras.backend.backend()``): always ``"numpy"``."""
    return "numpy"


def is_float_dtype(dtype) -> bool:
    """Whether ``dtype`` is a floating-point type."""
    return np.issubdtype(np.dtype(standardize_dtype(dtype)), np.floating)


def is_int_dtype(dtype) -> bool:
    """Whether ``dtype`` is a (signed or unsigned) integer type."""
    return np.issubdtype(np.dtype(standardize_dtype(dtype)), np.integer)


def result_type(*dtypes) -> str:
    """The dtype an op on these dtypes gives; Python ``float`` counts as weak
    (``result_type("int32", float)`` is ``floatx()``), as in Keras."""
    if not dtypes:
        return floatx()
    strong = [np.dtype(d) for d in dtypes if d not in (float, int, bool)]
    weak_float = float in dtypes
    if not strong:
        return floatx() if weak_float else ("int32" if int in dtypes else "bool")
    out = np.result_type(*strong)
    if weak_float and not np.issubdtype(out, np.floating):
        return floatx()
    return out.name


def epsilon() -> float:
    """Return the fuzz factor Keras uses in numeric expressions (``1e-7``)."""
    return _EPSILON


def set_epsilon(value: float) -> None:
    """Set the value returned by :func:`epsilon` (built-in losses keep Keras's 1e-7)."""
    global _EPSILON
    _EPSILON = float(value)


def image_data_format() -> str:
    """Return the default image layout; Lamina implements ``"channels_last"``."""
    return _IMAGE_DATA_FORMAT


def set_image_data_format(data_format: str) -> None:
    """Set the default image layout.

    Raises:
        ValueError: for anything but ``"channels_last"`` (the only layout implemented).
    """
    if data_format != "channels_last":
        raise ValueError("Lamina implements the 'channels_last' image data format only. "
                         f"Received: data_format={data_format!r}")


def clear_session(free_memory=True) -> None:
    """Reset the automatic layer-name counters (``dense``, ``dense_1``, ...), as Keras does."""
    from lamina.utils.naming import reset_uids

    reset_uids()
    _GET_UID.clear()
