"""Lamina's environment switches (``LAMINA_*``): one validated reader for each kind.

Every switch the SDK reads goes through one of these three readers (a :class:`Switch`
wraps :func:`choice` for a word read once a process), so that all of
them accept the same spellings and fail the same way: a value is stripped and compared
without case, an unset or blank variable gives the switch's default, and anything else
raises ``ValueError`` naming the variable, echoing its value and listing what it
accepts (a typo such as ``LAMINA_SHARED_UPDATE=flase`` must not silently mean "on").
The table of switches is in docs/architecture.md ("Environment switches").

The readers read the environment when called, never at import: each switch's owner
decides when (most once per process or per object).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence

#: The spellings of a boolean switch (compared without case).
TRUE = ("1", "true", "on", "yes")
FALSE = ("0", "false", "off", "no")


def _read(name: str) -> tuple[str, str]:
    """The variable's value as set and its normalised form ("" when unset or blank)."""
    raw = os.environ.get(name, "")
    return raw, raw.strip().lower()


def flag(name: str, default: bool) -> bool:
    """Read the boolean switch ``name``.

    Args:
        name: the environment variable, e.g. ``"LAMINA_SHARED_UPDATE"``.
        default: the value when the variable is unset or blank.

    Returns:
        True for ``1``, ``true``, ``on``, ``yes``; False for ``0``, ``false``, ``off``,
        ``no`` (any case, surrounding spaces ignored); ``default`` when unset or blank.

    Raises:
        ValueError: for any other value, naming the variable and echoing the value.
    """
    raw, value = _read(name)
    if not value:
        return bool(default)
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(f"{name} must be one of {', '.join(TRUE)} (on) or {', '.join(FALSE)} "
                     f"(off), in any case, or unset for the default "
                     f"({'on' if default else 'off'}). Received: {name}={raw!r}")


def path(name: str) -> str | None:
    """Read the folder switch ``name``: the value with surrounding spaces stripped (case
    kept), None when unset or blank; ``~`` expands to the user's home."""
    raw = os.environ.get(name, "").strip()
    return os.path.expanduser(raw) if raw else None


def choice(name: str, choices: Sequence[str], default: str | int, *,
           positive_int: bool = False) -> str | int:
    """Read the switch ``name`` that takes one of a few words (or a positive integer).

    Args:
        name: the environment variable, e.g. ``"LAMINA_KERNELS"``.
        choices: the accepted words, lower case.
        default: the value when the variable is unset or blank.
        positive_int: also accept a positive integer (returned as an ``int``).

    Returns:
        The word in lower case (matched without case, surrounding spaces ignored), the
        integer, or ``default`` when the variable is unset or blank.

    Raises:
        ValueError: for any other value, naming the variable and echoing the value.
    """
    raw, value = _read(name)
    if not value:
        return default
    if value in choices:
        return value
    if positive_int and value.isdigit() and int(value) > 0:
        return int(value)
    accepted = ", ".join(choices) + (" or a positive integer" if positive_int else "")
    raise ValueError(f"{name} must be one of {accepted}. Received: {name}={raw!r}")


def number(name: str, default: float, *, minimum: float | None = None) -> float:
    """Read the numeric switch ``name``.

    Args:
        name: the environment variable, e.g. ``"LAMINA_BUCKET_CAP_MB"``.
        default: the value when the variable is unset or blank.
        minimum: the smallest accepted value, if any.

    Returns:
        The value as a float, or ``float(default)`` when unset or blank.

    Raises:
        ValueError: for a value that is not a finite number (or is below ``minimum``),
            naming the variable and echoing the value.
    """
    raw, value = _read(name)
    if not value:
        return float(default)
    try:
        parsed = float(value)
    except ValueError:
        parsed = math.nan
    if not math.isfinite(parsed) or (minimum is not None and parsed < minimum):
        bound = "" if minimum is None else f" >= {minimum:g}"
        raise ValueError(f"{name} must be a finite number{bound}. Received: {name}={raw!r}")
    return parsed


class Switch:
    """A word switch read once a process through :func:`choice`, which the process may
    override (:meth:`set`) or override for a block (:meth:`use`), e.g. tests comparing
    two paths.

    Args:
        name: the environment variable, e.g. ``"LAMINA_KERNELS"``.
        choices: the accepted words, lower case.
        default: the word when the variable is unset or blank.
    """

    def __init__(self, name: str, choices: Sequence[str], default: str):
        self.name, self.choices, self.default = name, tuple(choices), default
        self._value: str | None = None

    def get(self) -> str:
        """The word in force (the environment's, read at the first call, unless set)."""
        if self._value is None:
            self._value = choice(self.name, self.choices, self.default)
        return self._value

    def set(self, value: str) -> None:
        """Override the environment for this process.

        Raises:
            ValueError: for a word not in ``choices``, echoing it.
        """
        if value not in self.choices:
            raise ValueError(f"`value` must be one of {', '.join(self.choices)}. "
                             f"Received: value={value!r}")
        self._value = value

    @contextlib.contextmanager
    def use(self, value: str):
        """Run a block with ``value`` in force; the previous word after it."""
        previous = self.get()
        self.set(value)
        try:
            yield
        finally:
            self._value = previous
