"""The ``adapt`` half of the lookup layers: count tokens, then build the vocabulary.

Tokens are ordered by count, ties broken by the token itself, both descending (Keras's
``np.lexsort((tokens, counts))[::-1]``); ``max_tokens`` keeps the first ones after the
special indices. With ``tf_idf`` each row is a document and
``idf = log(1 + documents / (1 + document_count))``; the special indices get the mean.
"""

from __future__ import annotations

import collections

import numpy as np

from lamina.backend.config import floatx


class VocabularyAdapter:
    """Mixin of :class:`~lamina.layers.preprocessing.index_lookup.IndexLookup`: ``adapt``."""

    # -- adapt ------------------------------------------------------------------------
    def adapt(self, data, steps=None):
        """Learn the vocabulary (and document frequencies) from ``data``.

        Args:
            data: an array or list (1-D: one token per document), or an iterable of
                batches.
            steps: the number of batches to read from an iterable.
        """
        self._adapt_batches(data, steps)

    def update_state(self, data):
        """Count the tokens of one batch (a 1-D array is one document)."""
        if self._has_input_vocabulary:
            raise ValueError(f"Cannot adapt layer '{self.name}' after setting a static "
                             "vocabulary via `vocabulary` argument or `set_vocabulary()` method.")
        docs = self._documents(data)
        for doc in docs:
            keys = [self._key(v) for v in doc]
            self._token_counts.update(keys)
            if self.output_mode == "tf_idf":
                self._document_counts.update(set(keys))
        if self.output_mode == "tf_idf":
            self._num_documents += len(docs)

    def _documents(self, data):
        if isinstance(data, (list, tuple)) and data and isinstance(data[0], (list, tuple)):
            return [np.asarray(d).reshape(-1).tolist() for d in data]  # ragged rows
        array = self._np(data)
        if array.ndim <= 1:
            array = array.reshape(1, -1)
        return [row.reshape(-1).tolist() for row in array]

    def finalize_state(self):
        """Turn the counts of :meth:`update_state` into the vocabulary."""
        if self._has_input_vocabulary or not self._token_counts:
            self._record_vocabulary_size()
            return
        counts = dict(self._token_counts)
        for special in (self.mask_token, self.oov_token):
            counts.pop(special, None)
        tokens = list(counts)
        order = sorted(range(len(tokens)), key=lambda i: (counts[tokens[i]], tokens[i]),
                       reverse=True)
        if self.max_tokens:
            order = order[:self.max_tokens - self._token_start_index()]
        self._tokens = [tokens[i] for i in order]
        self._index = {t: i + self._token_start_index() for i, t in enumerate(self._tokens)}
        if self.output_mode == "tf_idf":
            doc_counts = np.array([self._document_counts[t] for t in self._tokens], "float64")
            idf = np.log(1 + self._num_documents / (1 + doc_counts)).astype(floatx())
            idf = np.pad(idf, (self._token_start_index(), 0), constant_values=np.mean(idf))
            if self.pad_to_max_tokens and self.max_tokens is not None:
                idf = np.pad(idf, (0, self.max_tokens - idf.size))
            self.idf_weights = idf.astype(floatx())
        self.reset_state()
        self._record_vocabulary_size()

    def reset_state(self):
        """Forget the counts gathered by :meth:`update_state`."""
        self._token_counts = collections.Counter()
        self._document_counts = collections.Counter()
        self._num_documents = 0

