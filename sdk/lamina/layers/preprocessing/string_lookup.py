"""StringLookup: strings to vocabulary indices (or back, with ``invert=True``)."""

from __future__ import annotations

from lamina.layers.preprocessing.index_lookup import IndexLookup


class StringLookup(IndexLookup):
    """Maps strings to integer indices from a vocabulary (given or learned by ``adapt``).

    Args:
        max_tokens: cap on the vocabulary size, special tokens included.
        num_oov_indices: indices for out-of-vocabulary strings (hashed when > 1).
        mask_token: a string mapped to 0 (``"int"`` mode) or dropped (other modes).
        oov_token: returned for unknown indices when ``invert=True``.
        vocabulary: a list/array of strings, or the path of a text file (one per line).
        idf_weights: inverse document frequencies (``"tf_idf"`` with a ``vocabulary``).
        invert: map indices back to strings.
        output_mode: ``"int"``, ``"one_hot"``, ``"multi_hot"``, ``"count"`` or ``"tf_idf"``.
        pad_to_max_tokens: pad encoded outputs to ``max_tokens``.
        sparse: must be False.
        encoding: text encoding of byte inputs.
        name: layer name.
        salt: keys SipHash for the OOV buckets instead of FarmHash.

    Input shape:
        Any array of strings (numpy ``str``/``object``/``bytes``).

    Output shape:
        Same as the input for ``"int"``; else the last axis is the vocabulary size.

    Example:
        >>> import numpy as np
        >>> from lamina import layers
        >>> layer = layers.StringLookup(vocabulary=["a", "b", "c"])
        >>> layer(np.array([["a", "c", "z"]])).numpy()
        array([[1, 3, 0]])
    """

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token="[UNK]",
                 vocabulary=None, idf_weights=None, invert=False, output_mode="int",
                 pad_to_max_tokens=False, sparse=False, encoding="utf-8", name=None, salt=None,
                 **kwargs):
        self.encoding = encoding
        kwargs.pop("vocabulary_dtype", None)
        super().__init__(max_tokens=max_tokens, num_oov_indices=num_oov_indices,
                         mask_token=mask_token, oov_token=oov_token, vocabulary=vocabulary,
                         idf_weights=idf_weights, invert=invert, output_mode=output_mode,
                         pad_to_max_tokens=pad_to_max_tokens, sparse=sparse, name=name,
                         salt=salt, vocabulary_dtype="string", **kwargs)

    def adapt(self, data, steps=None):
        """Learn the vocabulary from strings: most frequent first, ties by token, descending.

        Args:
            data: an array or list of strings, or an iterable of batches.
            steps: the number of batches to read from an iterable.
        """
        super().adapt(data, steps=steps)

    def get_config(self):
        config = super().get_config()
        del config["vocabulary_dtype"]
        return {**config, "encoding": self.encoding}
