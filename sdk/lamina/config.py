"""Global settings with ``keras.config``'s names.

Lamina has one backend (numpy) and computes in float32 (float64 for gradient checks):
``backend()`` answers ``"numpy"``; mixed-precision policies are accepted and compute in
float32 (see :class:`lamina.dtype_policies.DTypePolicy`); flash attention and traceback
filtering are flags that numpy has nothing to switch, kept so that scripts setting them
run. ``set_max_epochs``/``set_max_steps_per_epoch`` cap every ``fit``, as in Keras.
"""

from __future__ import annotations

from lamina.backend.config import (
    epsilon,
    floatx,
    image_data_format,
    set_epsilon,
    set_floatx,
    set_image_data_format,
)

__all__ = [
    "backend", "disable_flash_attention", "disable_interactive_logging",
    "disable_traceback_filtering", "dtype_policy", "enable_flash_attention",
    "enable_interactive_logging", "enable_traceback_filtering",
    "enable_unsafe_deserialization", "epsilon", "floatx", "image_data_format",
    "is_flash_attention_enabled", "is_interactive_logging_enabled", "is_nnx_enabled",
    "is_traceback_filtering_enabled", "is_unsafe_deserialization_enabled", "max_epochs",
    "max_steps_per_epoch", "set_backend", "set_dtype_policy", "set_epsilon", "set_floatx",
    "set_image_data_format", "set_max_epochs", "set_max_steps_per_epoch",
]

_STATE = {"flash_attention": None, "interactive_logging": True, "traceback_filtering": True,
          "unsafe_deserialization": False, "max_epochs": None, "max_steps_per_epoch": None,
          "dtype_policy": None}


def backend() -> str:
    """The backend's name: always ``"numpy"``."""
    return "numpy"


def set_backend(backend) -> None:
    """Keras switches backends here; Lamina has only numpy.

    Raises:
        ValueError: for any backend but ``"numpy"``.
    """
    if backend != "numpy":
        raise ValueError("Lamina computes on numpy only; it has no other backend. "
                         f"Received: backend={backend!r}")


def is_nnx_enabled() -> bool:
    """Flax NNX is a JAX feature: never enabled."""
    return False


def enable_flash_attention() -> None:
    """Recorded only: numpy attention has no flash kernel."""
    _STATE["flash_attention"] = True


def disable_flash_attention() -> None:
    """Recorded only: numpy attention has no flash kernel."""
    _STATE["flash_attention"] = False


def is_flash_attention_enabled():
    """``None`` (unset, Keras's default), or what the last enable/disable call set."""
    return _STATE["flash_attention"]


def enable_interactive_logging() -> None:
    """Progress bars print to stdout (the default)."""
    _STATE["interactive_logging"] = True


def disable_interactive_logging() -> None:
    """Progress bars go to the ``lamina`` logger (INFO) instead of stdout."""
    _STATE["interactive_logging"] = False


def is_interactive_logging_enabled() -> bool:
    """Whether progress output prints to stdout."""
    return _STATE["interactive_logging"]


def enable_traceback_filtering() -> None:
    """Recorded only: Lamina's tracebacks are plain Python and never filtered."""
    _STATE["traceback_filtering"] = True


def disable_traceback_filtering() -> None:
    """Recorded only: Lamina's tracebacks are plain Python and never filtered."""
    _STATE["traceback_filtering"] = False


def is_traceback_filtering_enabled() -> bool:
    """What the last enable/disable call set (True by default, as in Keras)."""
    return _STATE["traceback_filtering"]


def enable_unsafe_deserialization() -> None:
    """Let ``load_model`` build Lambda layers from files (``safe_mode=False`` everywhere).

    Only for files you wrote yourself: a Lambda layer in a file is code.
    """
    _STATE["unsafe_deserialization"] = True


def is_unsafe_deserialization_enabled() -> bool:
    """Whether :func:`enable_unsafe_deserialization` was called."""
    return _STATE["unsafe_deserialization"]


def _positive_or_none(name, value):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
        raise ValueError(f"`{name}` must be a positive integer or None. "
                         f"Received: {name}={value!r}")
    return value


def set_max_epochs(max_epochs) -> None:
    """Cap the epochs of every ``fit`` (None removes the cap)."""
    _STATE["max_epochs"] = _positive_or_none("max_epochs", max_epochs)


def max_epochs():
    """The cap set by :func:`set_max_epochs`, or None."""
    return _STATE["max_epochs"]


def set_max_steps_per_epoch(max_steps_per_epoch) -> None:
    """Cap the steps of every epoch of ``fit`` (None removes the cap)."""
    _STATE["max_steps_per_epoch"] = _positive_or_none("max_steps_per_epoch",
                                                      max_steps_per_epoch)


def max_steps_per_epoch():
    """The cap set by :func:`set_max_steps_per_epoch`, or None."""
    return _STATE["max_steps_per_epoch"]


def set_dtype_policy(policy) -> None:
    """Set the global dtype policy (a name such as ``"mixed_float16"`` or a policy)."""
    from lamina.dtype_policies import DTypePolicy

    if isinstance(policy, str):
        policy = DTypePolicy(policy)
    if not isinstance(policy, DTypePolicy):
        raise ValueError("Invalid `policy` argument. Expected the string name of a policy "
                         f"(such as 'mixed_float16') or a `DTypePolicy` instance. "
                         f"Received: policy={policy!r}")
    _STATE["dtype_policy"] = policy


def dtype_policy():
    """The global dtype policy (``DTypePolicy(floatx())`` unless set)."""
    from lamina.dtype_policies import DTypePolicy

    return _STATE["dtype_policy"] or DTypePolicy(floatx())
