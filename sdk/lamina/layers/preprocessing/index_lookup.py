"""IndexLookup: the vocabulary logic shared by StringLookup and IntegerLookup.

Index layout (Keras's): ``[mask (int mode only)] [OOV x num_oov_indices] [tokens...]``.
``adapt`` counts tokens and orders them by count, ties broken by the token itself, both
descending; with ``tf_idf`` it also learns ``idf = log(1 + docs / (1 + doc_count))``.
Several OOV indices split unknown values by FarmHash64 (strings; integers with
``oov_method="farmhash"``), SipHash (with ``salt``) or ``value % num_oov_indices``.
"""

from __future__ import annotations

import collections
import os

import numpy as np

from lamina.backend.config import floatx
from lamina.layers.preprocessing import hash_functions
from lamina.layers.preprocessing.data_layer import DataLayer, encode_categorical, encoded_shape
from lamina.layers.preprocessing.lookup_adapt import VocabularyAdapter

_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")
VOCABULARY_ASSET = "vocabulary.txt"


def _listify(x):
    if x is None:
        return None
    if isinstance(x, np.ndarray):
        return x.tolist()
    return list(x) if isinstance(x, tuple) else x


class IndexLookup(VocabularyAdapter, DataLayer):
    """Maps values of a vocabulary to integer indices (base of the lookup layers).

    Args: see :class:`lamina.layers.StringLookup`; ``vocabulary_dtype`` is ``"string"``
    or ``"int64"``.
    """

    def __init__(self, max_tokens, num_oov_indices, mask_token, oov_token, vocabulary_dtype,
                 vocabulary=None, idf_weights=None, invert=False, output_mode="int",
                 sparse=False, pad_to_max_tokens=False, oov_method="floormod", name=None,
                 salt=None, **kwargs):
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError("If set, `max_tokens` must be greater than 1. "
                             f"Received: max_tokens={max_tokens}")
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError("If pad_to_max_tokens is True, must set `max_tokens`. "
                             f"Received: max_tokens={max_tokens}")
        if num_oov_indices < 0:
            raise ValueError("`num_oov_indices` must be greater than or equal to 0. "
                             f"Received: num_oov_indices={num_oov_indices}")
        if oov_method not in ("floormod", "farmhash"):
            raise ValueError("The `oov_method` argument of IndexLookup must be one of "
                             f"'floormod', 'farmhash'. Received: oov_method={oov_method}")
        is_int = vocabulary_dtype != "string"
        if salt is not None:
            if is_int and oov_method != "farmhash":
                raise ValueError("`salt` can only be used when `oov_method='farmhash'`. "
                                 f"Received: oov_method={oov_method}")
            if isinstance(salt, (tuple, list)) and len(salt) == 2:
                salt = list(salt)
            elif isinstance(salt, int):
                salt = [salt, salt]
            else:
                raise ValueError("The `salt` argument for `IndexLookup` can only be a tuple "
                                 f"of 2 integers, or a single integer. Received: salt={salt}.")
        output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
        if output_mode not in _MODES:
            raise ValueError(f"The `output_mode` argument of {type(self).__name__} must be one "
                             f"of {', '.join(repr(m) for m in _MODES)}. "
                             f"Received: output_mode={output_mode}")
        if invert and output_mode != "int":
            raise ValueError("`output_mode` must be `'int'` when `invert` is true. "
                             f"Received: output_mode={output_mode}")
        if sparse:
            raise ValueError("`sparse=True` is not supported: Lamina has no sparse tensors. "
                             f"Received: sparse={sparse}")
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError("`idf_weights` should only be set if `output_mode` is "
                             f"`'tf_idf'`. Received: idf_weights={idf_weights} and "
                             f"output_mode={output_mode}")
        frozen = kwargs.pop("vocabulary_size", None)
        has_input_vocabulary = kwargs.pop("has_input_vocabulary", vocabulary is not None)
        kwargs.pop("trainable", None)
        kwargs.pop("dtype", None)
        if kwargs:
            raise ValueError(f"Unrecognized keyword argument(s): {kwargs}")
        super().__init__(name=name)
        self.invert = invert
        self.max_tokens = max_tokens
        self.num_oov_indices = num_oov_indices
        self.mask_token = mask_token
        self.oov_token = oov_token
        self.output_mode = output_mode
        self.sparse = sparse
        self.pad_to_max_tokens = pad_to_max_tokens
        self.vocabulary_dtype = vocabulary_dtype
        self.oov_method = oov_method
        self.salt = salt
        self._frozen_vocab_size = frozen
        self.input_vocabulary = vocabulary if not isinstance(vocabulary, str) else None
        self.input_idf_weights = idf_weights
        self._has_input_vocabulary = has_input_vocabulary
        self._tokens = []
        self._index = {}
        self.idf_weights = None
        if output_mode == "tf_idf":
            if has_input_vocabulary and idf_weights is None:
                raise ValueError("When specifying the `vocabulary` argument, in TF-IDF output "
                                 "mode, the `idf_weights` argument must also be provided.")
            if idf_weights is not None:
                self.idf_weights = np.asarray(idf_weights, dtype=floatx())
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)
        self.reset_state()
        self.built = True

    # -- vocabulary -----------------------------------------------------------------
    def _oov_start_index(self):
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start_index(self):
        return self._oov_start_index() + self.num_oov_indices

    def _key(self, value):
        if self.vocabulary_dtype == "string":
            return value.decode(self.encoding) if isinstance(value, bytes) else str(value)
        return int(value)

    def vocabulary_size(self):
        """The vocabulary's size, including the mask and OOV indices."""
        return len(self._tokens) + self._token_start_index()

    def get_vocabulary(self, include_special_tokens=True):
        """The vocabulary, index ``i`` holding the token that maps to ``i``.

        Args:
            include_special_tokens: include the mask and OOV tokens.
        """
        vocab = [self.oov_token] * self._token_start_index() + list(self._tokens)
        if self.mask_token is not None and self.output_mode == "int":
            vocab[0] = self.mask_token
        if not include_special_tokens:
            vocab = vocab[self._token_start_index():]
        return vocab

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Set the vocabulary (and ``idf_weights`` for ``tf_idf``) directly.

        Args:
            vocabulary: a list/array of tokens, or the path of a text file with one per
                line. May start with the special tokens in index order.
            idf_weights: the inverse document frequencies (``tf_idf`` only).

        Raises:
            ValueError: for an empty vocabulary, repeated tokens, special tokens out of
                place, a vocabulary over ``max_tokens``, or misplaced ``idf_weights``.
        """
        if self.output_mode == "tf_idf":
            if idf_weights is None:
                raise ValueError("`idf_weights` must be set if output_mode is 'tf_idf'.")
        elif idf_weights is not None:
            raise ValueError("`idf_weights` should only be set if output_mode is `'tf_idf'`. "
                             f"Received: output_mode={self.output_mode} and "
                             f"idf_weights={idf_weights}")
        if isinstance(vocabulary, (str, os.PathLike)):
            if not os.path.exists(vocabulary):
                raise ValueError(f"Vocabulary file {vocabulary} does not exist.")
            if self.output_mode == "tf_idf":
                raise ValueError("output_mode `'tf_idf'` does not support loading a "
                                 "vocabulary from file.")
            with open(vocabulary, encoding="utf-8") as f:
                lines = f.read().splitlines()
            vocabulary = [self._key(line) for line in lines]
            file_tokens = vocabulary
            self._set_tokens(file_tokens, None, from_file=True)
            return
        vocabulary = [self._key(v) for v in np.asarray(vocabulary).reshape(-1).tolist()]
        self._set_tokens(vocabulary, idf_weights)

    def _set_tokens(self, vocabulary, idf_weights, from_file=False):
        if not vocabulary:
            raise ValueError(f"Cannot set an empty vocabulary. Received: vocabulary={vocabulary}")
        oov_start, token_start = self._oov_start_index(), self._token_start_index()
        special = [self.mask_token] * oov_start + [self.oov_token] * self.num_oov_indices
        found_special = vocabulary[:token_start] == special
        tokens = vocabulary[token_start:] if found_special else vocabulary
        if from_file:
            # Keras's file tables take every line as a token after the special indices.
            tokens, found_special = vocabulary, False
        repeated = [t for t, c in collections.Counter(tokens).items() if c > 1]
        if repeated:
            raise ValueError("The passed vocabulary has at least one repeated term. Please "
                             f"uniquify your dataset. The repeated terms are: {repeated}")
        if self.mask_token is not None and self.mask_token in tokens:
            raise ValueError(
                "Found reserved mask token at unexpected location in `vocabulary`. Note that "
                "passed `vocabulary` does not need to include the OOV and mask tokens. Either "
                "remove all mask and OOV tokens, or include them only at the start of the "
                f"vocabulary in precisely this order: {special}. Received: "
                f"mask_token={self.mask_token} at vocabulary index {tokens.index(self.mask_token)}")
        if self.oov_token is not None and self.invert and self.oov_token in tokens:
            raise ValueError(
                "Found reserved OOV token at unexpected location in `vocabulary`. Either "
                "remove all mask and OOV tokens, or include them only at the start of the "
                f"vocabulary in precisely this order: {special}. Received: "
                f"oov_token={self.oov_token} at vocabulary index {tokens.index(self.oov_token)}")
        size = token_start + len(tokens)
        if self.max_tokens is not None and size > self.max_tokens:
            raise ValueError("Attempted to set a vocabulary larger than the maximum vocab "
                             f"size. Received vocabulary size is {size}; `max_tokens` is "
                             f"{self.max_tokens}.")
        self._tokens = list(tokens)
        self._index = {t: i + token_start for i, t in enumerate(self._tokens)}
        self._record_vocabulary_size()
        if self.output_mode == "tf_idf" and idf_weights is not None:
            weights = np.asarray(idf_weights, dtype="float64").reshape(-1)
            if len(vocabulary) != len(weights):
                raise ValueError("`idf_weights` must be the same length as vocabulary. "
                                 f"len(idf_weights) is {len(weights)}; len(vocabulary) is "
                                 f"{len(vocabulary)}")
            front, front_value = (0, 0.0) if found_special else (token_start, np.average(weights))
            back = (self.max_tokens - front - len(weights)
                    if self.pad_to_max_tokens and self.max_tokens is not None else 0)
            self.idf_weights = np.pad(weights, (front, back), constant_values=(
                front_value, 0.0)).astype(floatx())

    def _record_vocabulary_size(self):
        new = self.vocabulary_size()
        if (self.output_mode != "int" and not self.pad_to_max_tokens
                and self._frozen_vocab_size is not None and new != self._frozen_vocab_size
                and getattr(self, "_called", False)):
            raise RuntimeError(
                f"When using `output_mode={self.output_mode}` and `pad_to_max_tokens=False`, "
                "the vocabulary size cannot be changed after the layer is called. Old vocab "
                f"size is {self._frozen_vocab_size}, new vocab size is {new}")
        self._frozen_vocab_size = new

    # -- call -----------------------------------------------------------------------
    def _oov_indices(self, values):
        n = self.num_oov_indices
        if self.vocabulary_dtype != "string" and self.oov_method != "farmhash":
            return [int(v) % n for v in values]
        texts = [hash_functions.as_bytes(v, getattr(self, "encoding", "utf-8")) for v in values]
        if self.salt is not None:
            return [hash_functions.siphash24(self.salt, t) % n for t in texts]
        return [hash_functions.fingerprint64(t) % n for t in texts]

    def _lookup(self, array):
        flat = [self._key(v) for v in array.reshape(-1).tolist()]
        oov_start = self._oov_start_index()
        out = np.empty(len(flat), dtype="int64")
        missing = []
        mask_value = 0 if self.output_mode == "int" else np.iinfo("int64").max
        for i, v in enumerate(flat):
            if self.mask_token is not None and v == self.mask_token:
                out[i] = mask_value
            elif v in self._index:
                out[i] = self._index[v]
            else:
                missing.append(i)
        if missing:
            if self.num_oov_indices == 0:
                raise ValueError("When `num_oov_indices=0` all inputs should be in vocabulary, "
                                 f"found OOV values {[flat[i] for i in missing]}, consider "
                                 "setting `num_oov_indices=1`.")
            if self.num_oov_indices == 1:
                out[missing] = oov_start
            else:
                out[missing] = np.asarray(self._oov_indices([flat[i] for i in missing])) \
                    + oov_start
        return out.reshape(array.shape)

    def _invert(self, array):
        vocab = self.get_vocabulary()
        flat = array.reshape(-1).astype("int64").tolist()
        values = [vocab[i] if self._token_start_index() <= i < len(vocab) else self.oov_token
                  for i in flat]
        if self.mask_token is not None:
            values = [self.mask_token if i == 0 else v for i, v in zip(flat, values)]
        if self.vocabulary_dtype == "string":
            out = np.empty(len(values), dtype=object)
            out[:] = values
            return out.reshape(array.shape)
        return np.asarray(values, dtype="int64").reshape(array.shape)

    def _depth(self):
        if self.pad_to_max_tokens:
            return self.max_tokens
        if self._frozen_vocab_size is None:
            raise RuntimeError(
                f"When using `output_mode={self.output_mode}` and `pad_to_max_tokens=False`, "
                "you must set the layer's vocabulary before calling it. Either pass a "
                "`vocabulary` argument to the layer, or call `adapt` with some sample data.")
        return self._frozen_vocab_size

    def _call_array(self, array):
        if self.invert:
            return self._invert(array)
        indices = self._lookup(array)
        if self.output_mode == "int":
            return indices
        self._called = True
        mode = "count" if self.output_mode == "tf_idf" else self.output_mode
        out = encode_categorical(indices, mode, self._depth(), dtype=floatx())
        if self.output_mode == "tf_idf":
            if self.idf_weights is None:
                raise ValueError("When `output_mode` is `'tf_idf'`, `idf_weights` must be "
                                 "provided.")
            out = (out * self.idf_weights).astype(floatx())
        return out

    def call(self, inputs):
        return self._tensor(self._call_array(self._np(inputs)))

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        depth = self.max_tokens if self.pad_to_max_tokens else self._frozen_vocab_size
        return encoded_shape(input_shape, self.output_mode, depth)

    def _output_dtype_name(self):
        if self.invert:
            return "string" if self.vocabulary_dtype == "string" else "int64"
        return "int64" if self.output_mode == "int" else floatx()

    def get_config(self):
        config = super().get_config()
        config.update({
            "invert": self.invert, "max_tokens": self.max_tokens,
            "num_oov_indices": self.num_oov_indices, "oov_token": self.oov_token,
            "mask_token": self.mask_token, "output_mode": self.output_mode,
            "sparse": self.sparse, "pad_to_max_tokens": self.pad_to_max_tokens,
            "vocabulary_dtype": self.vocabulary_dtype,
            "idf_weights": _listify(self.input_idf_weights),
            "vocabulary": _listify(self.input_vocabulary),
            "vocabulary_size": self._frozen_vocab_size, "oov_method": self.oov_method,
            "salt": self.salt})
        return config

    # -- saving (Keras's assets/<path>/vocabulary.txt and vars/idf_weights) ------------
    def save_own_variables(self, store):
        """Write ``idf_weights`` (tf_idf only) into a weights-file group."""
        if self.output_mode == "tf_idf" and self.idf_weights is not None:
            store["idf_weights"] = np.asarray(self.idf_weights)

    def load_own_variables(self, store):
        """Read ``idf_weights`` (tf_idf only) back."""
        if self.output_mode == "tf_idf" and "idf_weights" in store:
            self.idf_weights = np.asarray(store["idf_weights"], dtype=floatx())

    def save_assets(self, dir_path):
        """Write the vocabulary to ``dir_path/vocabulary.txt`` (unless it is in the config)."""
        if self.input_vocabulary is not None:
            return
        with open(os.path.join(dir_path, VOCABULARY_ASSET), "w", encoding="utf-8") as f:
            f.write("\n".join(str(w) for w in self.get_vocabulary()))

    def load_assets(self, dir_path):
        """Read the vocabulary written by :meth:`save_assets`."""
        if self.input_vocabulary is not None:
            return
        with open(os.path.join(dir_path, VOCABULARY_ASSET), encoding="utf-8") as f:
            lines = f.read().splitlines()
        while lines and lines[-1] == "":
            lines.pop()
        values = [self._key(line) for line in lines]
        idf = self.idf_weights if self.output_mode == "tf_idf" else None
        self._set_tokens(values, idf)
