"""IntegerLookup: integers to vocabulary indices (or back, with ``invert=True``)."""

from __future__ import annotations

from lamina.layers.preprocessing.index_lookup import IndexLookup


class IntegerLookup(IndexLookup):
    """Maps integers to contiguous indices from a vocabulary (given or learned by ``adapt``).

    Args:
        max_tokens: cap on the vocabulary size, special tokens included.
        num_oov_indices: indices for out-of-vocabulary values; with several, a value goes
            to ``value % num_oov_indices`` (``oov_method="floormod"``) or to its
            FarmHash64 bucket (``"farmhash"``; SipHash when ``salt`` is set).
        mask_token: an integer mapped to 0 (``"int"`` mode) or dropped.
        oov_token: returned for unknown indices when ``invert=True``.
        vocabulary: a list/array of integers, or the path of a text file.
        vocabulary_dtype: only ``"int64"``.
        idf_weights: inverse document frequencies (``"tf_idf"`` with a ``vocabulary``).
        invert: map indices back to values.
        output_mode: ``"int"``, ``"one_hot"``, ``"multi_hot"``, ``"count"`` or ``"tf_idf"``.
        sparse: must be False.
        pad_to_max_tokens: pad encoded outputs to ``max_tokens``.
        oov_method: ``"floormod"`` or ``"farmhash"``.
        salt: keys SipHash (with ``oov_method="farmhash"``).
        name: layer name.

    Input shape:
        Any array of integers.

    Output shape:
        Same as the input for ``"int"``; else the last axis is the vocabulary size.

    Example:
        >>> import numpy as np
        >>> from lamina import layers
        >>> layer = layers.IntegerLookup(vocabulary=[12, 36, 1138, 42])
        >>> layer(np.array([[12, 1138, 42], [42, 1000, 36]])).numpy()
        array([[1, 3, 4],
               [4, 0, 2]])
    """

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1,
                 vocabulary=None, vocabulary_dtype="int64", idf_weights=None, invert=False,
                 output_mode="int", sparse=False, pad_to_max_tokens=False,
                 oov_method="floormod", salt=None, name=None, **kwargs):
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError("If `max_tokens` is set for `IntegerLookup`, it must be greater "
                             f"than 1. Received: max_tokens={max_tokens}")
        if num_oov_indices < 0:
            raise ValueError("The value of `num_oov_indices` argument for `IntegerLookup` "
                             f"must >= 0. Received: num_oov_indices={num_oov_indices}")
        if vocabulary_dtype != "int64":
            raise ValueError("Only `vocabulary_dtype='int64'` is supported at this time. "
                             f"Received: vocabulary_dtype={vocabulary_dtype}")
        super().__init__(max_tokens=max_tokens, num_oov_indices=num_oov_indices,
                         mask_token=mask_token, oov_token=oov_token, vocabulary=vocabulary,
                         vocabulary_dtype=vocabulary_dtype, idf_weights=idf_weights,
                         invert=invert, output_mode=output_mode, sparse=sparse,
                         pad_to_max_tokens=pad_to_max_tokens, oov_method=oov_method,
                         salt=salt, name=name, **kwargs)

    def adapt(self, data, steps=None):
        """Learn the vocabulary from integers: most frequent first, ties by value, descending.

        Args:
            data: an array or list of integers, or an iterable of batches.
            steps: the number of batches to read from an iterable.
        """
        super().adapt(data, steps=steps)

    def get_config(self):
        config = super().get_config()
        for key in ("oov_token", "mask_token"):
            if config[key] is not None:
                config[key] = int(config[key])
        if config["vocabulary"] is not None:
            config["vocabulary"] = [int(v) for v in config["vocabulary"]]
        return config
