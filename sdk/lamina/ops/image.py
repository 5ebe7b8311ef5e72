"""Image operations (``keras.ops.image``): resize, affine transforms, crops, pads, colour."""

from __future__ import annotations

__all__: list[str] = []
