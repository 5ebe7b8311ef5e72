"""Keras's IMDB movie-review sentiment dataset: 25,000 / 25,000 reviews as lists of word
ids (ranked by frequency), labels 0 (negative) / 1 (positive)."""

from __future__ import annotations

import json

import numpy as np

from lamina.datasets import _remote
from lamina.datasets._safe_pickle import load_npz
from lamina.datasets._sequences import (
    limit_vocabulary,
    remove_long_seq,
    shift,
    shuffled,
    to_object_array,
)


def load_data(path="imdb.npz", num_words=None, skip_top=0, maxlen=None, seed=113,
              start_char=1, oov_char=2, index_from=3, **kwargs):
    """Load IMDB (``keras.datasets.imdb.load_data``).

    Word id ``i`` of the file becomes ``i + index_from``; ids 0, ``start_char`` and
    ``oov_char`` are reserved. Train and test are shuffled with one
    ``np.random.RandomState(seed)``, long reviews are dropped, then the vocabulary is
    limited over both splits, in Keras's order.

    Args:
        path: the file name in the cache (``~/.keras/datasets/``).
        num_words: keep the ids below this (after shifting); None keeps all.
        skip_top: ids below this count as out of vocabulary.
        maxlen: drop the reviews that are not shorter than this (None keeps all).
        seed: the shuffling seed.
        start_char: the id that starts every review (None: no start mark).
        oov_char: the id that replaces out-of-vocabulary words (None: drop them).
        index_from: the offset added to the file's word ids.
        **kwargs: accepted and ignored, as Keras does.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: object arrays of int lists and int
        labels.

    Raises:
        ValueError: if ``maxlen`` keeps no review in a split, or the hash is not Keras's.
        OSError: if the file is not cached and cannot be downloaded.
    """
    f = load_npz(_remote.fetch("imdb.npz", fname=path))
    rng = np.random.RandomState(seed)
    x_train, labels_train = shuffled(rng, f["x_train"], f["y_train"])
    x_test, labels_test = shuffled(rng, f["x_test"], f["y_test"])
    x_train = shift(x_train, start_char, index_from)
    x_test = shift(x_test, start_char, index_from)
    if maxlen:
        x_train, labels_train = remove_long_seq(maxlen, x_train, labels_train)
        x_test, labels_test = remove_long_seq(maxlen, x_test, labels_test)
        if not x_train or not x_test:
            raise ValueError(f"After filtering for sequences shorter than maxlen={maxlen}, "
                             "no sequence was kept. Increase maxlen.")
    xs = limit_vocabulary(x_train + x_test, num_words, skip_top, oov_char)
    labels = np.concatenate([labels_train, labels_test])
    idx = len(x_train)
    return (to_object_array(xs[:idx]), labels[:idx]), (to_object_array(xs[idx:]), labels[idx:])


def get_word_index(path="imdb_word_index.json"):
    """The word -> id dictionary of IMDB (``keras.datasets.imdb.get_word_index``).

    The ids are the file's, before ``index_from`` is added by :func:`load_data`.

    Args:
        path: the file name in the cache.

    Returns:
        A dict mapping words (str) to ids (int).
    """
    with open(_remote.fetch("imdb_word_index.json", fname=path)) as f:
        return json.load(f)
