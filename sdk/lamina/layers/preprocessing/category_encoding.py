"""CategoryEncoding: integer category ids to one-hot, multi-hot or count vectors."""

from __future__ import annotations

import numpy as np

from lamina.layers.preprocessing.data_layer import DataLayer, encode_categorical, encoded_shape


class CategoryEncoding(DataLayer):
    """Encodes integer features as one-hot, multi-hot or count vectors.

    Args:
        num_tokens: number of categories; inputs must lie in ``[0, num_tokens)``.
        output_mode: ``"one_hot"`` (each element), ``"multi_hot"`` or ``"count"`` (each
            sample, reducing its last axis).
        sparse: must be False.

    Call arguments:
        inputs: integer ids.
        count_weights: with ``"count"``, a weight per input element.

    Input shape:
        ``(batch,)`` or ``(batch, n)`` (and, for ``one_hot``, any rank).

    Output shape:
        ``(..., num_tokens)`` (see :func:`~lamina.layers.preprocessing.data_layer.encoded_shape`).

    Example:
        >>> import numpy as np
        >>> from lamina import layers
        >>> layers.CategoryEncoding(num_tokens=4, output_mode="multi_hot")(
        ...     np.array([[0, 1], [3, 3]])).numpy()
        array([[1., 1., 0., 0.],
               [0., 0., 0., 1.]], dtype=float32)
    """

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if output_mode == "binary":
            output_mode = "multi_hot"
        if output_mode not in ("count", "one_hot", "multi_hot"):
            raise ValueError(f"Unknown arg for output_mode: {output_mode}")
        if num_tokens is None:
            raise ValueError("num_tokens must be set to use this layer. If the number of "
                             "tokens is not known beforehand, use the IntegerLookup layer "
                             "instead.")
        if num_tokens < 1:
            raise ValueError(f"`num_tokens` must be >= 1. Received: num_tokens={num_tokens}.")
        if sparse:
            raise ValueError("`sparse=True` is not supported: Lamina has no sparse tensors. "
                             f"Received: sparse={sparse}")
        self.num_tokens = num_tokens
        self.output_mode = output_mode
        self.sparse = sparse
        self.built = True

    def call(self, inputs, count_weights=None):
        if count_weights is not None:
            if self.output_mode != "count":
                raise ValueError("`count_weights` is not used when `output_mode` is not "
                                 f"`'count'`. Received `count_weights={count_weights}`.")
            count_weights = np.asarray(self._np(count_weights), dtype=self.dtype)
        indices = self._np(inputs).astype("int64")
        return self._tensor(encode_categorical(indices, self.output_mode, self.num_tokens,
                                               dtype=self.dtype, count_weights=count_weights))

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if self.output_mode == "one_hot" and len(input_shape) == 1:
            return input_shape + (self.num_tokens,)
        return encoded_shape(input_shape, self.output_mode, self.num_tokens)

    def get_config(self):
        return {**super().get_config(), "num_tokens": self.num_tokens,
                "output_mode": self.output_mode}
