"""Intersection-over-union metrics from an accumulated confusion matrix (Keras's formulas).

The default dtype is ``"int"`` as in Keras: sample weights are truncated to integers, so
pass integer weights or ``dtype="float32"``.
"""

from __future__ import annotations

import numpy as np

from lamina.metrics.base import Metric, to_numpy

_EPSILON = 1e-7


def _is_int(dtype) -> bool:
    return "int" in str(dtype)


class _IoUBase(Metric):
    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None,
                 sparse_y_true=True, sparse_y_pred=True, axis=-1):
        super().__init__(name=name, dtype=dtype or "int")
        self.num_classes, self.ignore_class = num_classes, ignore_class
        self.sparse_y_true, self.sparse_y_pred, self.axis = sparse_y_true, sparse_y_pred, axis
        self.reset_state()

    def reset_state(self) -> None:
        self.total_cm = np.zeros((self.num_classes, self.num_classes))

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = to_numpy(y_true), to_numpy(y_pred)
        if not self.sparse_y_true:
            y_true = np.argmax(y_true, axis=self.axis)
        if not self.sparse_y_pred:
            y_pred = np.argmax(y_pred, axis=self.axis)
        cast = np.int64 if _is_int(self.dtype) else np.float64
        y_true = y_true.astype(cast).reshape(-1).astype(np.int64)
        y_pred = y_pred.astype(cast).reshape(-1).astype(np.int64)
        weight = np.ones(1) if sample_weight is None else to_numpy(sample_weight)
        weight = np.broadcast_to(weight.astype(cast).reshape(-1), y_true.shape)
        valid = (y_true >= 0) & (y_true < self.num_classes) & (y_pred >= 0) & (
            y_pred < self.num_classes)
        if self.ignore_class is not None:
            valid &= y_true != self.ignore_class
        cm = np.zeros((self.num_classes, self.num_classes))
        np.add.at(cm, (y_true[valid], y_pred[valid]), weight[valid])
        self.total_cm = self.total_cm + cm

    def result(self):
        cm = self.total_cm
        tp = np.diag(cm)
        denominator = cm.sum(axis=0) + cm.sum(axis=1) - tp
        ids = np.asarray(self.target_class_ids, dtype=np.int64)
        tp = tp[ids].astype(np.float32)
        denominator = denominator[ids].astype(np.float32)
        valid = denominator > 1e-9
        iou = np.where(valid, tp / (denominator + np.float32(_EPSILON)), 0.0)
        return np.float32(np.sum(iou, dtype=np.float32) / (np.float32(valid.sum())
                                                            + np.float32(_EPSILON)))


class IoU(_IoUBase):
    """Mean IoU ``TP / (TP + FP + FN)`` over ``target_class_ids`` (absent classes skipped).

    Args:
        num_classes: number of classes (size of the confusion matrix).
        target_class_ids: class ids whose IoU is averaged.
        name: metric name.
        dtype: state dtype (``"int"`` by default, as Keras).
        ignore_class: label id left out of the confusion matrix.
        sparse_y_true: whether labels are integer ids (else one-hot, argmax along ``axis``).
        sparse_y_pred: whether predictions are integer ids (else scores).
        axis: the class axis for the argmax.

    Raises:
        ValueError: if a target class id is not below ``num_classes``.
    """

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None,
                 sparse_y_true=True, sparse_y_pred=True, axis=-1):
        super().__init__(num_classes, name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred, axis=axis)
        if max(target_class_ids) >= num_classes:
            raise ValueError(f"Target class id {max(target_class_ids)} is out of range, which "
                             f"is [0, {num_classes}). Received: "
                             f"target_class_ids={list(target_class_ids)}")
        self.target_class_ids = list(target_class_ids)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "num_classes": self.num_classes,
                "target_class_ids": self.target_class_ids, "ignore_class": self.ignore_class,
                "sparse_y_true": self.sparse_y_true, "sparse_y_pred": self.sparse_y_pred,
                "axis": self.axis}


class BinaryIoU(IoU):
    """IoU of binary predictions thresholded at ``threshold`` (``>=`` counts as class 1).

    Args:
        target_class_ids: which of classes 0 and 1 are averaged.
        threshold: decision threshold on the predictions.
        name: metric name.
        dtype: state dtype.
    """

    def __init__(self, target_class_ids=(0, 1), threshold=0.5, name=None, dtype=None):
        super().__init__(num_classes=2, target_class_ids=target_class_ids, name=name,
                         dtype=dtype)
        self.threshold = threshold

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = (to_numpy(y_pred).astype(np.float32) >= self.threshold).astype(np.int64)
        super().update_state(y_true, y_pred, sample_weight)

    def get_config(self) -> dict:
        return {"target_class_ids": self.target_class_ids, "threshold": self.threshold,
                "name": self.name, "dtype": self.dtype}


class MeanIoU(IoU):
    """IoU averaged over all ``num_classes`` classes.

    Args:
        num_classes: number of classes.
        name: metric name.
        dtype: state dtype.
        ignore_class: label id left out.
        sparse_y_true: whether labels are integer ids.
        sparse_y_pred: whether predictions are integer ids.
        axis: the class axis for the argmax.
    """

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None,
                 sparse_y_true=True, sparse_y_pred=True, axis=-1):
        super().__init__(num_classes, list(range(num_classes)), name=name, dtype=dtype,
                         ignore_class=ignore_class, sparse_y_true=sparse_y_true,
                         sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["target_class_ids"]
        return config


class OneHotIoU(IoU):
    """:class:`IoU` with one-hot labels and score predictions.

    Args:
        num_classes: number of classes.
        target_class_ids: class ids whose IoU is averaged.
        name: metric name.
        dtype: state dtype.
        ignore_class: label id left out.
        sparse_y_pred: whether predictions are integer ids.
        axis: the class axis for the argmax.
    """

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None,
                 sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, target_class_ids, name=name, dtype=dtype,
                         ignore_class=ignore_class, sparse_y_true=False,
                         sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["sparse_y_true"]
        return config


class OneHotMeanIoU(MeanIoU):
    """:class:`MeanIoU` with one-hot labels and score predictions.

    Args:
        num_classes: number of classes.
        name: metric name.
        dtype: state dtype.
        ignore_class: label id left out.
        sparse_y_pred: whether predictions are integer ids.
        axis: the class axis for the argmax.
    """

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None,
                 sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=False, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["sparse_y_true"]
        return config
