"""Keras's Reuters newswire topics: 11,228 newswires as lists of word ids, 46 topics."""

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

_LABEL_NAMES = (
    "cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing",
    "money-supply", "coffee", "sugar", "trade", "reserves", "ship", "cotton", "carcass",
    "crude", "nat-gas", "cpi", "money-fx", "interest", "gnp", "meal-feed", "alum",
    "oilseed", "gold", "tin", "strategic-metal", "livestock", "retail", "ipi",
    "iron-steel", "rubber", "heat", "jobs", "lei", "bop", "zinc", "orange", "pet-chem",
    "dlr", "gas", "silver", "wpi", "hog", "lead",
)


def load_data(path="reuters.npz", num_words=None, skip_top=0, maxlen=None, test_split=0.2,
              seed=113, start_char=1, oov_char=2, index_from=3):
    """Load Reuters (``keras.datasets.reuters.load_data``).

    The newswires are shuffled with ``np.random.RandomState(seed)``, shifted by
    ``index_from``, filtered by ``maxlen`` and vocabulary-limited, then the last
    ``test_split`` fraction is the test set, in Keras's order.

    Args:
        path: the file name in the cache (``~/.keras/datasets/``).
        num_words: keep the ids below this (after shifting); None keeps all.
        skip_top: ids below this count as out of vocabulary.
        maxlen: drop the newswires that are not shorter than this (None keeps all).
        test_split: the fraction of the data used as test set.
        seed: the shuffling seed.
        start_char: the id that starts every sequence (None: no start mark).
        oov_char: the id that replaces out-of-vocabulary words (None: drop them).
        index_from: the offset added to the file's word ids.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: object arrays of int lists and int
        topic labels ``0..45``.

    Raises:
        ValueError: if the file's hash is not Keras's.
        OSError: if the file is not cached and cannot be downloaded.
    """
    f = load_npz(_remote.fetch("reuters.npz", fname=path))
    xs, labels = shuffled(np.random.RandomState(seed), f["x"], f["y"])
    if start_char is not None or index_from:
        xs = shift(xs, start_char, index_from)
    if maxlen:
        xs, labels = remove_long_seq(maxlen, xs, labels)
    xs = limit_vocabulary(xs, num_words, skip_top, oov_char)
    idx = int(len(xs) * (1 - test_split))
    return ((to_object_array(xs[:idx]), np.array(labels[:idx])),
            (to_object_array(xs[idx:]), np.array(labels[idx:])))


def get_word_index(path="reuters_word_index.json"):
    """The word -> id dictionary of Reuters (``keras.datasets.reuters.get_word_index``).

    Args:
        path: the file name in the cache.

    Returns:
        A dict mapping words (str) to ids (int), before ``index_from`` is added.
    """
    with open(_remote.fetch("reuters_word_index.json", fname=path)) as f:
        return json.load(f)


def get_label_names():
    """The 46 topic names, indexed by label (``keras.datasets.reuters.get_label_names``).

    Returns:
        A tuple of str.
    """
    return _LABEL_NAMES
