"""What ``compile`` resolves: the loss and metric containers used by the trainer."""

from __future__ import annotations

import numpy as np

from lamina import ops
from lamina.backend.tensor import Tensor
from lamina.callbacks.callback_list import pythonify_logs
from lamina.layers.symbolic import flatten


def _per_output(spec, output_names, what):
    """Spread a compile argument over the outputs: one for all, a list, or a dict."""
    n = len(output_names)
    if isinstance(spec, dict):
        unknown = set(spec) - set(output_names)
        if unknown:
            raise ValueError(
                f"In the dict argument `{what}`, key(s) {sorted(unknown)} do not correspond "
                f"to any model output. Received: {what}={spec}; outputs: {output_names}")
        return [spec.get(name) for name in output_names]
    if isinstance(spec, (list, tuple)) and n > 1:
        if len(spec) != n:
            raise ValueError(
                f"`{what}` has {len(spec)} entries but the model has {n} outputs. "
                f"Received: {what}={spec}")
        return list(spec)
    return [spec] * n if n > 1 else [spec]


class CompileLoss:
    """The compiled loss: per-output losses, weights, and the total."""

    def __init__(self, loss, loss_weights=None, output_names=None):
        from lamina import losses

        self.output_names = list(output_names or ["output"])
        self.spec = loss
        entries = _per_output(loss, self.output_names, "loss")
        self.losses = [_as_loss(losses, e) if e is not None else None for e in entries]
        if loss_weights is None:
            self.weights = [1.0] * len(self.output_names)
        else:
            self.weights = [1.0 if w is None else float(w) for w in
                            _per_output(loss_weights, self.output_names, "loss_weights")]
        # Keras logs each output's unweighted loss as `<output>_loss` when there are several.
        self.trackers = [LossTracker(f"{name}_loss") if fn is not None else None
                         for name, fn in zip(self.output_names, self.losses)] \
            if sum(fn is not None for fn in self.losses) > 1 else [None] * len(self.losses)

    @property
    def metrics(self) -> list:
        """The per-output loss trackers (``<output>_loss``), for ``model.metrics``."""
        return [t for t in self.trackers if t is not None]

    def __call__(self, y_true, y_pred, sample_weight=None):
        """Return the total loss and the list of per-output losses (Tensors)."""
        ys, preds = _align(y_true, y_pred, self.output_names)
        total, parts = None, []
        for fn, w, y, p, tracker in zip(self.losses, self.weights, ys, preds, self.trackers):
            if fn is None:
                parts.append(None)
                continue
            value = fn(y, p, sample_weight=sample_weight)
            parts.append(value)
            if tracker is not None:
                tracker.update_state(value, np.shape(p)[0] if np.ndim(p) else 1)
            term = value if w == 1.0 else ops.multiply(value, w)
            total = term if total is None else ops.add(total, term)
        return total, parts


def _as_loss(losses, identifier):
    """A ``Loss`` object: functions are wrapped as Keras's compile does, so labels of
    shape ``(n,)`` meet predictions of shape ``(n, 1)`` without broadcasting."""
    loss = losses.get(identifier)
    if isinstance(loss, losses.Loss):
        return loss
    return losses.LossFunctionWrapper(loss, name=getattr(loss, "__name__", None))


def _align(y_true, y_pred, output_names):
    preds = flatten(y_pred) if isinstance(y_pred, (list, tuple, dict)) else [y_pred]
    if isinstance(y_true, dict):
        ys = [y_true.get(name) for name in output_names]
    elif isinstance(y_true, (list, tuple)) and len(preds) > 1:
        ys = list(y_true)
    else:
        ys = [y_true]
    if len(ys) != len(preds):
        raise ValueError(f"The model has {len(preds)} outputs but received {len(ys)} targets.")
    return ys, preds


class CompileMetrics:
    """The compiled metrics, resolved against the first batch's shapes.

    Listed in ``model.metrics`` as one entry named ``compile_metrics`` whose ``result()``
    is a dict, as in Keras 3.
    """

    name = "compile_metrics"

    def __init__(self, metrics=None, weighted_metrics=None, output_names=None):
        self.output_names = list(output_names or ["output"])
        self.specs = (metrics, weighted_metrics)
        self.built = False
        self.entries = []  # (output index, metric, weighted)

    def build(self, y_true, y_pred):
        from lamina import metrics as metrics_module

        ys, preds = _align(y_true, y_pred, self.output_names)
        multi = len(self.output_names) > 1
        for weighted, spec in ((False, self.specs[0]), (True, self.specs[1])):
            if spec is None:
                continue
            if multi and isinstance(spec, (list, tuple)) and all(
                    not isinstance(s, (list, tuple)) for s in spec) and not isinstance(spec, dict):
                per_output = [list(spec)] * len(self.output_names)
            else:
                per_output = [s if isinstance(s, (list, tuple)) else ([] if s is None else [s])
                              for s in _per_output(spec, self.output_names, "metrics")]
            for index, items in enumerate(per_output):
                for item in items:
                    metric = _resolve_metric(metrics_module, item, ys[index], preds[index])
                    if multi:
                        metric.name = f"{self.output_names[index]}_{metric.name}"
                    if weighted and not multi:
                        metric.name = f"weighted_{metric.name}" if any(
                            m.name == metric.name for _, m, _ in self.entries) else metric.name
                    self.entries.append((index, metric, weighted))
        self.built = True

    def update_state(self, y_true, y_pred, sample_weight=None):
        if not self.built:
            self.build(y_true, y_pred)
        if not self.entries:
            return
        ys, preds = _align(y_true, y_pred, self.output_names)
        for index, metric, weighted in self.entries:
            metric.update_state(ys[index], preds[index].data if isinstance(
                preds[index], Tensor) else preds[index],
                sample_weight=sample_weight if weighted else None)

    def result(self) -> dict:
        return {m.name: float(m.result()) for _, m, _ in self.entries}

    def reset_state(self):
        for _, metric, _ in self.entries:
            metric.reset_state()

    @property
    def metrics(self):
        return [m for _, m, _ in self.entries]


def _resolve_metric(metrics_module, item, y_true, y_pred):
    if isinstance(item, str) and item in ("accuracy", "acc"):
        return metrics_module.resolve_accuracy(np.shape(y_true), tuple(y_pred.shape), name=item)
    metric = metrics_module.get(item)
    if not hasattr(metric, "update_state"):
        metric = metrics_module.MeanMetricWrapper(metric, name=getattr(metric, "__name__", None))
    return metric


class LossTracker:
    """Batch-size-weighted mean of the batch losses (Keras's ``loss`` log).

    ``update_state(loss)`` from a custom ``train_step`` weighs the batch by 1, as
    Keras's ``Mean`` does.
    """

    def __init__(self, name="loss"):
        self.name = name
        self.total = 0.0
        self.count = 0.0

    def update_state(self, values, sample_weight=None) -> None:
        weight = 1.0 if sample_weight is None else float(sample_weight)
        if type(values) is not float:  # fit passes the batch loss as a float already
            values = float(np.mean(values.data if isinstance(values, Tensor) else values))
        self.total += values * weight
        self.count += weight

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def reset_state(self) -> None:
        self.total = self.count = 0.0


def pythonify(logs) -> dict:
    """Logs as ``fit`` reports them: :func:`~lamina.callbacks.callback_list.pythonify_logs`
    in the model's order (loss first)."""
    # Positional: a keyword (or functools.partial's) cost ~150 ns a batch more.
    return pythonify_logs(logs, False)
