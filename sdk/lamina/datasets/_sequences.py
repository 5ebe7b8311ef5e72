"""The word-index preprocessing ``imdb`` and ``reuters`` share (Keras's order of steps)."""

from __future__ import annotations

import numpy as np


def shift(xs, start_char, index_from):
    """Prepend ``start_char`` (unless None) and add ``index_from`` to every word id."""
    if start_char is not None:
        return [[start_char] + [w + index_from for w in x] for x in xs]
    if index_from:
        return [[w + index_from for w in x] for x in xs]
    return [list(x) for x in xs]


def remove_long_seq(maxlen, seq, label):
    """Keep the sequences shorter than ``maxlen`` (strictly, as Keras) and their labels."""
    kept = [(x, y) for x, y in zip(seq, label) if len(x) < maxlen]
    return [x for x, _ in kept], [y for _, y in kept]


def limit_vocabulary(xs, num_words, skip_top, oov_char):
    """Replace (``oov_char``) or drop (None) ids outside ``[skip_top, num_words)``.

    ``num_words`` falsy means the largest id present.
    """
    if not num_words:
        num_words = max(max(x) for x in xs)
    if oov_char is not None:
        return [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    return [[w for w in x if skip_top <= w < num_words] for x in xs]


def shuffled(rng: np.random.RandomState, *arrays):
    """The arrays reordered by one permutation drawn from ``rng`` (Keras's order)."""
    indices = np.arange(len(arrays[0]))
    rng.shuffle(indices)
    return [a[indices] for a in arrays]


def to_object_array(xs):
    # Keras calls np.array(..., dtype="object"): equal-length sequences make a 2-D array.
    return np.array(xs, dtype="object")
