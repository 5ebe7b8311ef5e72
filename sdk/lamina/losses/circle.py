"""Circle loss (Sun et al., 2020) for metric learning, as Keras 3 defines it."""

from __future__ import annotations

import numpy as np

from lamina import ops
from lamina.backend.tensor import Tensor
from lamina.losses.loss import LossFunctionWrapper

# Stands in for -inf inside logsumexp: same value (softplus of it is exactly 0 in float32)
# without the NaN gradients an infinite entry would bring.
_NEG_LARGE = -1e30


def _labels(y):
    return np.asarray(y.data if isinstance(y, Tensor) else y).astype(np.int32).reshape(-1, 1)


def circle(y_true, y_pred, ref_labels=None, ref_embeddings=None, remove_diagonal=True,
           gamma=80, margin=0.4):
    """Circle loss of L2-normalised embeddings ``y_pred`` with integer labels ``y_true``.

    Args:
        y_true: integer labels, shape ``(batch,)``.
        y_pred: L2-normalised embeddings, shape ``(batch, dim)``.
        ref_labels: labels of the reference embeddings (default: ``y_true``).
        ref_embeddings: L2-normalised reference embeddings (default: ``y_pred``).
        remove_diagonal: leave each sample's similarity to itself out of the positives.
        gamma: the scale of the similarity scores.
        margin: the relaxation margin.

    Returns:
        Per-sample losses; samples whose loss is 0 are masked out of the mean
        (``_keras_mask``), as in Keras.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    refs = y_pred if ref_embeddings is None else ops.convert_to_tensor(ref_embeddings)
    query = _labels(y_true)
    keys = query if ref_labels is None else _labels(ref_labels)
    positive = query == keys.T
    negative = ~positive
    if remove_diagonal:
        positive &= ~np.eye(query.size, keys.size, dtype=bool)
    distances = ops.maximum(ops.subtract(1.0, ops.matmul(y_pred, ops.transpose(refs))), 0.0)
    pos_weights = ops.maximum(ops.multiply(ops.add(distances, margin), positive.astype("float32")),
                              0.0)
    neg_weights = ops.maximum(ops.multiply(ops.subtract(1.0 + margin, distances),
                                           negative.astype("float32")), 0.0)
    pos_scores = ops.multiply(ops.multiply(-gamma, pos_weights), ops.subtract(margin, distances))
    neg_scores = ops.multiply(ops.multiply(gamma, neg_weights),
                              ops.subtract(1.0 - margin, distances))
    p_loss = ops.logsumexp(ops.where(positive, pos_scores, _NEG_LARGE), axis=1)
    n_loss = ops.logsumexp(ops.where(negative, neg_scores, _NEG_LARGE), axis=1)
    loss = ops.softplus(ops.add(p_loss, n_loss))
    loss._keras_mask = loss.data > 0
    return loss


class Circle(LossFunctionWrapper):
    """Circle loss between integer labels and L2-normalised embeddings.

    Args:
        gamma: the scale of the similarity scores (80).
        margin: the relaxation margin (0.4).
        remove_diagonal: leave self-similarities out of the positives (True).
        reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
            ``"mean_with_sample_weight"`` or ``None``.
        name: the loss's name.
        dtype: the computation dtype.
    """

    def __init__(self, gamma=80.0, margin=0.4, remove_diagonal=True,
                 reduction="sum_over_batch_size", name="circle", dtype=None):
        super().__init__(circle, name=name, reduction=reduction, dtype=dtype, gamma=gamma,
                         margin=margin, remove_diagonal=remove_diagonal)
        self.gamma, self.margin, self.remove_diagonal = gamma, margin, remove_diagonal
