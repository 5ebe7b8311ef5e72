"""TextVectorization: strings to token indices or bag-of-words encodings.

Keras runs TensorFlow's string ops; these are their numpy/Python equivalents:
``tf.strings.lower`` lowercases ASCII letters only, punctuation is Keras's regex
character class, ``"whitespace"`` splits on runs of ASCII whitespace, ``"character"``
splits into Unicode code points, and ``ngrams`` joins consecutive tokens with a space,
all widths of the first size, then the next (none for a sequence shorter than the width).
"""

from __future__ import annotations

import re
import string

import numpy as np

from lamina.backend.config import floatx
from lamina.layers.preprocessing.data_layer import DataLayer, decode_strings
from lamina.layers.preprocessing.string_lookup import StringLookup

_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_ASCII_SPACE = re.compile(r"[ \t\n\r\f\v]+")
_STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation")
_SPLIT = ("whitespace", "character")
_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


def _check_choice(value, allowed, arg):
    if value is None or callable(value) or value in allowed:
        return
    raise ValueError(f"Unkown value for `{arg}`. Allowed values are: {', '.join(allowed)}, "
                     f"None, or a callable. Received: {arg}={value}")


class TextVectorization(DataLayer):
    """Turns strings into sequences of token indices or into token encodings.

    Standardize (lowercase, strip punctuation), split into tokens, form n-grams, then
    look the tokens up in a vocabulary learned by ``adapt`` or given.

    Args:
        max_tokens: cap on the vocabulary size, the mask ``""`` and OOV included.
        standardize: ``"lower_and_strip_punctuation"``, ``"lower"``,
            ``"strip_punctuation"``, None, or a callable on an array of strings.
        split: ``"whitespace"``, ``"character"``, None, or a callable taking a 1-D
            array of strings and returning one list of tokens per string.
        ngrams: None, an int ``n`` (widths ``1..n``) or a tuple of widths.
        output_mode: ``"int"``, ``"multi_hot"``, ``"count"`` or ``"tf_idf"``.
        output_sequence_length: ``"int"`` mode: pad or truncate to this length.
        pad_to_max_tokens: encoded modes: pad the last axis to ``max_tokens``.
        vocabulary: a list of strings or a file path.
        idf_weights: with ``"tf_idf"`` and a ``vocabulary``.
        sparse: must be False. ragged: must be False.
        encoding: text encoding of byte inputs.
        name: layer name.

    Input shape:
        ``(batch,)`` or ``(batch, 1)`` strings.

    Output shape:
        ``(batch, output_sequence_length)`` indices (``"int"``), else
        ``(batch, vocabulary_size)``.

    Example:
        >>> import numpy as np
        >>> from lamina import layers
        >>> layer = layers.TextVectorization(output_sequence_length=4)
        >>> layer.adapt(["the cat sat", "the dog"])
        >>> layer(np.array(["The dog sat!"])).numpy()
        array([[2, 4, 3, 0]])
    """

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation",
                 split="whitespace", ngrams=None, output_mode="int",
                 output_sequence_length=None, pad_to_max_tokens=False, vocabulary=None,
                 idf_weights=None, sparse=False, ragged=False, encoding="utf-8", name=None,
                 **kwargs):
        if sparse:
            raise ValueError("`sparse=True` is not supported: Lamina has no sparse tensors. "
                             f"Received: sparse={sparse}")
        if ragged:
            raise ValueError("`ragged=True` is not supported: Lamina has no ragged tensors. "
                             f"Received: ragged={ragged}")
        _check_choice(standardize, _STANDARDIZE, "standardize")
        _check_choice(split, _SPLIT, "split")
        output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
        if output_mode not in _MODES:
            raise ValueError(f"Unkown value for `output_mode`. Allowed values are: "
                             f"{', '.join(_MODES)}. Received: output_mode={output_mode}")
        if isinstance(ngrams, list):
            ngrams = tuple(ngrams)
        if not (ngrams is None or isinstance(ngrams, int) or (
                isinstance(ngrams, tuple) and all(isinstance(i, int) for i in ngrams))):
            raise ValueError("`ngrams` must be None, an integer, or a tuple of integers. "
                             f"Received: ngrams={ngrams}")
        if output_mode == "int" and not (output_sequence_length is None
                                         or isinstance(output_sequence_length, int)):
            raise ValueError("`output_sequence_length` must be either None or an integer when "
                             "`output_mode` is 'int'. Received: "
                             f"output_sequence_length={output_sequence_length}")
        if output_mode != "int" and output_sequence_length is not None:
            raise ValueError("`output_sequence_length` must not be set if `output_mode` is not "
                             f"'int'. Received output_sequence_length={output_sequence_length}.")
        self._max_tokens = max_tokens
        self._standardize = standardize
        self._split = split
        self._ngrams_arg = ngrams
        self._ngrams = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams
        self._ragged = ragged
        self._output_mode = output_mode
        self._output_sequence_length = output_sequence_length
        self._encoding = encoding
        self._has_input_vocabulary = kwargs.pop("has_input_vocabulary", vocabulary is not None)
        vocabulary_size = kwargs.pop("vocabulary_size", None)
        super().__init__(name=name, **kwargs)
        self._lookup_layer = StringLookup(
            max_tokens=max_tokens, vocabulary=vocabulary, idf_weights=idf_weights,
            pad_to_max_tokens=pad_to_max_tokens, mask_token="", output_mode=output_mode,
            sparse=sparse, has_input_vocabulary=self._has_input_vocabulary,
            encoding=encoding, vocabulary_size=vocabulary_size)
        self.built = True

    # -- text processing --------------------------------------------------------------
    def _standardize_array(self, texts: np.ndarray) -> np.ndarray:
        mode = self._standardize
        if callable(mode):
            return decode_strings(np.asarray(mode(texts)), self._encoding)
        flat = texts.reshape(-1).tolist()
        if mode in ("lower", "lower_and_strip_punctuation"):
            flat = [t.translate(_ASCII_LOWER) for t in flat]
        if mode in ("strip_punctuation", "lower_and_strip_punctuation"):
            flat = [_PUNCTUATION.sub("", t) for t in flat]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(texts.shape)

    def _ngram_tokens(self, tokens):
        if self._ngrams is None:
            return tokens
        out = []
        for width in self._ngrams:
            out.extend(" ".join(tokens[i:i + width]) for i in range(len(tokens) - width + 1))
        return out

    def _preprocess(self, inputs):
        """Standardized inputs as a list of token lists (``split``) or a 2-D object array."""
        texts = decode_strings(self._np(inputs), self._encoding)
        texts = self._standardize_array(texts)
        if self._split is None:
            if texts.ndim <= 1:
                texts = texts.reshape(-1, 1)
            if self._ngrams is None:
                return texts
            return [self._ngram_tokens(list(row)) for row in texts.tolist()]
        if texts.ndim > 1:
            if texts.shape[-1] != 1:
                raise ValueError(
                    "When using `TextVectorization` to tokenize strings, the input rank must "
                    "be 1 or the last shape dimension must be 1. Received: "
                    f"inputs.shape={texts.shape} with rank={texts.ndim}")
            texts = texts[..., 0]
        texts = texts.reshape(-1)
        if self._split == "whitespace":
            rows = [[t for t in _ASCII_SPACE.split(s) if t] for s in texts.tolist()]
        elif self._split == "character":
            rows = [list(s) for s in texts.tolist()]
        else:
            rows = [[str(t) for t in row] for row in self._split(texts)]
        return [self._ngram_tokens(row) for row in rows]

    @staticmethod
    def _pad(rows, length):
        width = length if length is not None else max([len(r) for r in rows] + [0])
        out = np.full((len(rows), width), "", dtype=object)
        for i, row in enumerate(rows):
            row = row[:width]
            out[i, :len(row)] = row
        return out

    # -- adapt ------------------------------------------------------------------------
    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary (and IDF weights) from strings.

        Args:
            data: an array or list of strings, or an iterable of batches of strings.
            batch_size: accepted for Keras compatibility (data is read whole).
            steps: the number of batches to read from an iterable.
        """
        self._adapt_batches(data, steps)

    def update_state(self, data):
        """Count the tokens of one batch of strings."""
        tokens = self._preprocess(data)
        if isinstance(tokens, np.ndarray):
            tokens = tokens.tolist()
        self._lookup_layer.update_state(tokens)

    def finalize_state(self):
        """Build the vocabulary from the counts."""
        self._lookup_layer.finalize_state()

    def reset_state(self):
        """Forget the counts."""
        self._lookup_layer.reset_state()

    def get_vocabulary(self, include_special_tokens=True):
        """The vocabulary: ``""`` (mask, index 0), ``"[UNK]"`` (index 1), then tokens."""
        return self._lookup_layer.get_vocabulary(include_special_tokens)

    def vocabulary_size(self):
        """The vocabulary's size, mask and OOV included."""
        return self._lookup_layer.vocabulary_size()

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Set the vocabulary (and ``idf_weights`` for ``"tf_idf"``) directly."""
        self._lookup_layer.set_vocabulary(vocabulary, idf_weights=idf_weights)

    # -- call -------------------------------------------------------------------------
    def call(self, inputs):
        tokens = self._preprocess(inputs)
        if not isinstance(tokens, np.ndarray):
            tokens = self._pad(tokens, self._output_sequence_length
                               if self._output_mode == "int" else None)
        elif self._output_mode == "int" and self._output_sequence_length is not None:
            tokens = self._pad(tokens.tolist(), self._output_sequence_length)
        return self._tensor(self._lookup_layer._call_array(tokens))

    def compute_output_shape(self, input_shape):
        if self._output_mode == "int":
            return (input_shape[0], self._output_sequence_length)
        depth = (self._lookup_layer.max_tokens if self._lookup_layer.pad_to_max_tokens
                 else self._lookup_layer._frozen_vocab_size)
        return (input_shape[0], depth)

    def _output_dtype_name(self):
        return "int64" if self._output_mode == "int" else floatx()

    def get_config(self):
        lookup = self._lookup_layer
        return {**super().get_config(), "max_tokens": lookup.max_tokens,
                "standardize": self._standardize, "split": self._split,
                "ngrams": self._ngrams_arg, "output_mode": self._output_mode,
                "output_sequence_length": self._output_sequence_length,
                "pad_to_max_tokens": lookup.pad_to_max_tokens, "sparse": lookup.sparse,
                "ragged": self._ragged, "vocabulary": lookup.get_config()["vocabulary"],
                "idf_weights": lookup.get_config()["idf_weights"], "encoding": self._encoding,
                "vocabulary_size": self.vocabulary_size()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("ngrams"), list):
            config["ngrams"] = tuple(config["ngrams"])
        for key in ("standardize", "split"):
            if isinstance(config.get(key), dict):
                from lamina.saving import deserialize_keras_object

                config[key] = deserialize_keras_object(config[key])
        return cls(**config)

    # -- saving: the lookup layer holds the state; Keras writes both asset folders ----
    def save_own_variables(self, store):
        """Write ``idf_weights`` (tf_idf) here too: Keras reads them from this group."""
        self._lookup_layer.save_own_variables(store)

    def load_own_variables(self, store):
        """Read ``idf_weights`` (tf_idf) from this layer's group."""
        self._lookup_layer.load_own_variables(store)

    def save_assets(self, dir_path):
        """Write the vocabulary (as Keras does, here and in ``_lookup_layer``'s folder)."""
        self._lookup_layer.save_assets(dir_path)

    def load_assets(self, dir_path):
        """Read the vocabulary written by :meth:`save_assets`."""
        self._lookup_layer.load_assets(dir_path)
