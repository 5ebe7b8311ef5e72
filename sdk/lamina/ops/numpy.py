"""The numpy namespace of ``keras.ops`` (``keras.ops.numpy``): the same functions as ``ops``."""

from __future__ import annotations

__all__: list[str] = []
