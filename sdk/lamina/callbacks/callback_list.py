"""``CallbackList``: calls every callback's hook in order, with Keras's log handling."""

from __future__ import annotations

import numpy as np

from lamina.backend.tensor import Tensor
from lamina.callbacks.callback import Callback


def pythonify_logs(logs, sort: bool = True) -> dict:
    """Logs with nested dicts flattened and scalar Tensors/arrays as Python floats.

    The one conversion of logs: ``CallbackList`` calls it with sorted keys (as Keras
    does); ``fit``/``evaluate`` through :data:`lamina.models.compile_utils.pythonify`,
    keeping the model's order (loss first: ``evaluate``'s list follows it).

    Args:
        logs: a dict (or None), possibly nested (``compile_metrics``).
        sort: sort the keys at each level; False keeps their order.

    Returns:
        A new flat dict; values that are not scalars are kept as they are.
    """
    out = {}
    items = (logs or {}).items()
    for key, value in sorted(items) if sort else items:
        if isinstance(value, dict):
            out.update(pythonify_logs(value, sort))
            continue
        if isinstance(value, Tensor):
            value = value.data
        if type(value) is float:  # most logs are floats already (get_metrics_result's)
            out[key] = value
            continue
        try:
            out[key] = float(value) if np.ndim(value) == 0 else value
        except (TypeError, ValueError):
            out[key] = value
    return out


class CallbackList(Callback):
    """A container that forwards each hook to its callbacks.

    ``History`` and ``ProgbarLogger`` are added when asked (as ``fit`` does) unless
    the user already passed one; they run after the user's callbacks, in that order.
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None,
                 **params):
        super().__init__()
        from lamina.callbacks.history import History
        from lamina.callbacks.progbar_logger import ProgbarLogger

        callbacks = list(callbacks or [])
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"`callbacks` must contain Callback instances. "
                                f"Received: {cb!r} (of type {type(cb).__name__})")
        self.callbacks = callbacks
        # Keras's order: user callbacks, then History, then ProgbarLogger, so that keys
        # added by callbacks at epoch end (learning_rate) reach History and the bar.
        if add_history:
            history = next((cb for cb in callbacks if isinstance(cb, History)), None)
            if history is None:
                history = History()
                self.callbacks.append(history)
            if model is not None:
                model.history = history
        if add_progbar and not any(isinstance(cb, ProgbarLogger) for cb in callbacks):
            self.callbacks.append(ProgbarLogger())
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)

    def append(self, callback):
        self.callbacks.append(callback)

    def set_params(self, params):
        self.params = params
        for cb in self.callbacks:
            cb.set_params(params)

    def set_model(self, model):
        super().set_model(model)
        for cb in self.callbacks:
            cb.set_model(model)

    def _call(self, hook, *args, logs=None):
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            getattr(cb, hook)(*args, logs)
        return logs

    def on_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs=logs)

    def on_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs=logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        # Callbacks may add keys (learning_rate); the caller's dict sees them too.
        merged = pythonify_logs(logs)
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, merged)
        if logs is not None:
            logs.update(merged)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs=logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs=logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs=logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs=logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs=logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs=logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs=logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs=logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs=logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs=logs)
