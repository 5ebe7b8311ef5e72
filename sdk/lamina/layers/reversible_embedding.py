"""ReversibleEmbedding: an Embedding that also projects vectors back to vocabulary logits."""

from __future__ import annotations

from lamina import ops
from lamina.layers.embedding import Embedding


class ReversibleEmbedding(Embedding):
    """Embedding whose ``reverse=True`` call maps ``(..., output_dim)`` vectors to
    ``(..., input_dim)`` logits, with the transposed table (tied) or its own weights.

    Args:
        input_dim, output_dim: vocabulary and vector sizes.
        tie_weights: reverse with ``embeddings.T`` (True) or with a separate trainable
            ``reverse_embeddings (output_dim, input_dim)``.
        embeddings_initializer, embeddings_regularizer, embeddings_constraint, mask_zero:
            as in ``Embedding``.
        reverse_dtype: optional dtype of the reverse projection (inputs and kernel are
            cast to it).
        logit_soft_cap: optional float ``c``: logits become ``c * tanh(logits / c)``.

    Call arguments:
        inputs: integer ids (forward) or vectors (reverse).
        reverse: project back to logits.

    Example:
        >>> import numpy as np, lamina as keras
        >>> layer = keras.layers.ReversibleEmbedding(10, 4)
        >>> vectors = layer(np.array([[1, 2, 3]]))
        >>> vectors.shape, layer(vectors, reverse=True).shape
        ((1, 3, 4), (1, 3, 10))
    """

    def __init__(self, input_dim, output_dim, tie_weights=True,
                 embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, reverse_dtype=None,
                 logit_soft_cap=None, **kwargs):
        super().__init__(input_dim, output_dim, embeddings_initializer=embeddings_initializer,
                         embeddings_regularizer=embeddings_regularizer,
                         embeddings_constraint=embeddings_constraint, mask_zero=mask_zero,
                         **kwargs)
        if logit_soft_cap is not None and (not isinstance(logit_soft_cap, (int, float))
                                           or logit_soft_cap <= 0):
            raise ValueError("Argument `logit_soft_cap` must be a positive number or None. "
                             f"Received: logit_soft_cap={logit_soft_cap!r}")
        self.tie_weights = bool(tie_weights)
        self.reverse_dtype = reverse_dtype
        self.logit_soft_cap = logit_soft_cap
        self._reverse_symbolic = False
        self._last_call_reversed = False

    def build(self, input_shape=None):
        super().build(input_shape)
        if not self.tie_weights:
            self.reverse_embeddings = self.add_weight(
                name="reverse_embeddings", shape=(self.output_dim, self.input_dim),
                initializer=self.embeddings_initializer, trainable=True)
        self.built = True

    def call(self, inputs, reverse=False):
        self._last_call_reversed = bool(reverse)
        if not reverse:
            return super().call(inputs)
        kernel = (ops.transpose(self._lora_merged()) if self.tie_weights
                  else self.reverse_embeddings)
        if self.reverse_dtype is not None:
            inputs, kernel = ops.cast(inputs, self.reverse_dtype), ops.cast(kernel,
                                                                            self.reverse_dtype)
        logits = ops.matmul(inputs, kernel)
        if self.logit_soft_cap is not None:
            cap = float(self.logit_soft_cap)
            logits = ops.multiply(ops.tanh(ops.divide(logits, cap)), cap)
        return logits

    def compute_mask(self, inputs, mask=None):
        if self._last_call_reversed:
            return None
        return super().compute_mask(inputs, mask)

    def _symbolic_call(self, inputs, *args, **kwargs):
        self._reverse_symbolic = bool(kwargs.get("reverse"))
        try:
            return super()._symbolic_call(inputs, *args, **kwargs)
        finally:
            self._reverse_symbolic = False

    def compute_output_shape(self, input_shape, reverse=None):
        reverse = self._reverse_symbolic if reverse is None else reverse
        if reverse:
            return (*tuple(input_shape[:-1]), self.input_dim)
        return super().compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "tie_weights": self.tie_weights,
                "reverse_dtype": self.reverse_dtype, "logit_soft_cap": self.logit_soft_cap}
