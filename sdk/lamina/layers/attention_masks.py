"""Boolean attention masks shared by the attention layers (True = may attend)."""

from __future__ import annotations

import numpy as np


def causal_mask(query_length, value_length):
    """``(1, T, S)`` lower-triangular mask: query ``i`` sees values ``j <= i``."""
    return np.tril(np.ones((query_length, value_length), dtype=bool))[None]


def sliding_window_mask(query_length, value_length, window):
    """``(1, T, S)`` band mask ``|i - j| < window`` (Keras's symmetric sliding window)."""
    rows = np.arange(query_length)[:, None]
    cols = np.arange(value_length)[None, :]
    return (np.abs(rows - cols) < window)[None]


def check_sliding_window(sliding_window):
    """None or a positive int, else Keras's error."""
    if sliding_window is not None and (isinstance(sliding_window, bool) or not isinstance(
            sliding_window, int) or sliding_window <= 0):
        raise ValueError("`sliding_window` must be `None` or a positive integer. "
                         f"Received: sliding_window={sliding_window}")
    return sliding_window


def check_flash_attention(flash_attention, dropout):
    """Keras refuses dropout with flash attention; Lamina computes the same either way."""
    if flash_attention and dropout > 0.0:
        raise ValueError("Dropout is not supported when flash attention is enabled. Please "
                         "set dropout to 0.0 to use flash attention.")
    return flash_attention


def combine(query_mask, value_mask, key_mask, query_length, value_length, attention_mask,
            use_causal_mask=False, sliding_window=None):
    """Keras's MultiHeadAttention mask: the inputs' padding masks (``(batch, T)``,
    ``(batch, S)``; None when absent), the causal and sliding-window masks and
    ``attention_mask`` combined by AND; None when there is none.

    Returns:
        A boolean ``(batch or 1, T, S)`` array or None.
    """
    auto = None
    if query_mask is not None:
        auto = query_mask[:, :, None]
    for m in (value_mask, key_mask):
        if m is not None:
            m = m[:, None, :]
            auto = m if auto is None else auto & m
    if use_causal_mask:
        extra = causal_mask(query_length, value_length)
        auto = extra if auto is None else auto & extra
    if sliding_window is not None:
        extra = sliding_window_mask(query_length, value_length, sliding_window)
        auto = extra if auto is None else auto & extra
    if attention_mask is not None:
        attention_mask = np.asarray(getattr(attention_mask, "data", attention_mask),
                                    dtype=bool)
    if auto is not None:
        attention_mask = auto if attention_mask is None else attention_mask & auto
    return attention_mask
