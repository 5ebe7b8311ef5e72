"""The additive state of a model's metrics: what replicas sum to get global logs.

Keras-style metrics accumulate sums (totals, counts, confusion-matrix counts), so
the state of the union of two shards is the sum of their states. A metric's
accumulators are its public float / float-array attributes; names mentioning
``threshold`` are configuration, not state.
"""

from __future__ import annotations

import numpy as np


def metric_fields(metric) -> list[str]:
    """The accumulator attribute names of one metric (cached on the metric)."""
    names = getattr(metric, "_lamina_state_keys", None)
    if names is None:
        names = []
        for name, value in sorted(vars(metric).items()):
            if "threshold" in name or name.startswith("_"):
                continue
            if isinstance(value, float) or (
                    isinstance(value, np.ndarray) and value.dtype.kind == "f"):
                names.append(name)
        metric._lamina_state_keys = names
    return names


def additive_fields(model) -> list[tuple[object, str]]:
    """``(object, attribute)`` of the loss tracker's and every compiled metric's
    accumulators, in a fixed order (the same on every replica of a model)."""
    fields = [(model._loss_tracker, "total"), (model._loss_tracker, "count")]
    if model.compiled_metrics is not None:
        for metric in model.compiled_metrics.metrics:
            fields += [(metric, name) for name in metric_fields(metric)]
    return fields


def pack(fields, head=()) -> np.ndarray:
    """The accumulators' current values as one float64 vector, after the floats
    ``head`` (a gradient exchange's control values)."""
    values = [getattr(obj, name) for obj, name in fields]
    if all(type(value) is float for value in values):  # the usual Mean/accuracy sums
        return np.array([*head, *values], np.float64)
    parts = [np.asarray(head, np.float64)]
    parts += [np.asarray(value, np.float64).reshape(-1) for value in values]
    return np.concatenate(parts)


def unpack(fields, vector) -> None:
    """Set the accumulators from a vector made by :func:`pack` (shapes as they are now)."""
    at = 0
    for obj, name in fields:
        current = getattr(obj, name)
        if isinstance(current, np.ndarray):
            size = current.size
            setattr(obj, name, np.asarray(vector[at:at + size]).reshape(current.shape)
                    .astype(current.dtype))
        else:
            size = 1
            setattr(obj, name, float(vector[at]))
        at += size
