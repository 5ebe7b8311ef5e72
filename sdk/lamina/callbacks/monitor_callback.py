"""``MonitorCallback``: the min/max/auto logic shared by callbacks that watch a metric."""

from __future__ import annotations

import operator
import warnings

from lamina.callbacks.callback import Callback


class MonitorCallback(Callback):
    """Base for callbacks that track the best value of a monitored log key.

    The direction is chosen lazily, at the first ``on_epoch_end``, because the compiled
    metrics only exist once the first batch has been seen. In ``"auto"`` mode a name
    equal to ``loss`` once the ``val_`` prefix is removed is minimised; otherwise the
    compiled metric of that name decides through its ``_direction`` (``"up"`` means
    maximise).

    Args:
        monitor: the log key to watch (``"val_loss"``, ``"accuracy"``...).
        mode: ``"auto"``, ``"min"`` or ``"max"``. An unknown mode warns and falls back to
            ``"auto"``.
        baseline: initial value of ``best`` (``None`` means the first value improves).
        min_delta: minimum change that counts as an improvement (its sign is ignored).

    Raises:
        ValueError: at the first epoch end, in ``"auto"`` mode, when the direction of
            ``monitor`` cannot be determined.
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__} mode '{mode}' is unknown, fallback to "
                          "auto mode.", stacklevel=2)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None

    def _set_monitor_op(self):
        if self.mode == "min":
            self.monitor_op = operator.lt
        elif self.mode == "max":
            self.monitor_op = operator.gt
        else:
            metric_name = self.monitor.removeprefix("val_")
            if metric_name == "loss":
                self.monitor_op = operator.lt
            metrics = []
            for metric in getattr(self.model, "metrics", None) or []:
                # The compiled metrics' container lists its metrics (Keras does the same).
                inner = getattr(metric, "metrics", None)
                metrics.extend(inner if isinstance(inner, list) else [metric])
            for metric in metrics:
                if getattr(metric, "name", None) == metric_name and hasattr(
                        metric, "_direction"):
                    self.monitor_op = operator.gt if metric._direction == "up" else operator.lt
        if self.monitor_op is None:
            raise ValueError(
                f"{type(self).__name__} callback received monitor={self.monitor}, but Lamina "
                "isn't able to automatically determine whether that metric should be "
                "maximized or minimized. Pass `mode='max'` in order to monitor based on the "
                "highest metric value, or pass `mode='min'` in order to use the lowest value.")
        # Keras stores the signed delta once; the op is set once per instance, so reusing
        # the callback across fits never flips it back.
        if self.monitor_op is operator.lt:
            self.min_delta *= -1

    def _is_improvement(self, monitor_value, reference_value) -> bool:
        if reference_value is None:
            return True
        return bool(self.monitor_op(monitor_value - self.min_delta, reference_value))
