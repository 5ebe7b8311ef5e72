"""How a batch is packed for ``train_step``: ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sw)``.

``keras.utils.pack_x_y_sample_weight`` and ``unpack_x_y_sample_weight``; the training
loop (``lamina.models``) uses the same two functions.
"""

from __future__ import annotations


def pack_x_y_sample_weight(x, y=None, sample_weight=None):
    """Pack a batch as Keras hands it to ``train_step``: ``x``, ``(x,)``, ``(x, y)`` or
    ``(x, y, sample_weight)`` (a list/tuple ``x`` is wrapped so that it stays one entry)."""
    if y is None:
        return (x,) if isinstance(x, (list, tuple)) else x
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def unpack_x_y_sample_weight(data):
    """``(x, y, sample_weight)`` from what :func:`pack_x_y_sample_weight` made.

    Raises:
        ValueError: for a tuple of more than 3 entries.
    """
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) in (1, 2, 3):
        return tuple(data) + (None,) * (3 - len(data))
    raise ValueError("Data is expected to be in format `x`, `(x,)`, `(x, y)`, or "
                     f"`(x, y, sample_weight)`. Received a tuple of {len(data)} entries.")
