"""The CTC loss (Keras's ``keras.losses.CTC`` / ``keras.losses.ctc``)."""

from __future__ import annotations

import numpy as np

from lamina.losses.loss import LossFunctionWrapper
from lamina.ops._common import data as _data
from lamina.ops._common import static_shape
from lamina.ops.ctc import ctc_loss


def ctc(y_true, y_pred):
    """CTC loss of each sequence, with class 0 as the blank.

    Args:
        y_true: ``(batch_size, max_length)`` integer labels; 0 is the blank/padding and
            is not a class: each row's label length is its number of nonzero entries.
        y_pred: ``(batch_size, max_length, num_classes)`` logits (not softmax outputs);
            every time step is used.

    Returns:
        ``(batch_size,)`` losses.

    Raises:
        ValueError: when ``y_true`` is not rank 2 or ``y_pred`` not rank 3.
    """
    if len(static_shape(y_true)) != 2:
        raise ValueError("Targets `y_true` are expected to be a tensor of shape "
                         "`(batch_size, max_length)` in integer format. "
                         f"Received: y_true.shape={static_shape(y_true)}")
    if len(static_shape(y_pred)) != 3:
        raise ValueError("Logits `y_pred` are expected to be a tensor of shape "
                         "`(batch_size, max_length, num_classes)`. "
                         f"Received: y_pred.shape={static_shape(y_pred)}")
    labels = np.asarray(_data(y_true))
    batch, steps = static_shape(y_pred)[:2]
    label_length = np.sum(labels != 0, axis=-1).astype(np.int32)
    output_length = np.full((batch,), steps, dtype=np.int32)
    return ctc_loss(labels, y_pred, label_length, output_length, mask_index=0)


class CTC(LossFunctionWrapper):
    """CTC loss (see :func:`ctc`).

    Args:
        reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
            ``"mean_with_sample_weight"``, ``"none"`` or ``None``.
        name: the loss's name.
        dtype: the loss's computation dtype (``floatx()`` by default).
    """

    def __init__(self, reduction="sum_over_batch_size", name="ctc", dtype=None):
        super().__init__(ctc, reduction=reduction, name=name, dtype=dtype)
