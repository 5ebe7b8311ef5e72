"""``LambdaCallback``: a callback built from plain functions."""

from __future__ import annotations

from lamina.callbacks.callback import Callback


class LambdaCallback(Callback):
    """Callback whose hooks are the functions given.

    Args:
        on_epoch_begin, on_epoch_end: ``f(epoch, logs)``.
        on_train_begin, on_train_end: ``f(logs)``.
        on_train_batch_begin, on_train_batch_end: ``f(batch, logs)``.
        **kwargs: any other ``on_*`` hook (``on_batch_end``, ``on_test_begin``,
            ``on_predict_batch_end``, ...), set as an attribute as Keras does.

    Raises:
        ValueError: for a keyword that is not a callback hook.
    """

    _HOOKS = ("on_epoch_begin", "on_epoch_end", "on_train_begin", "on_train_end",
              "on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end",
              "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
              "on_predict_begin", "on_predict_end", "on_predict_batch_begin",
              "on_predict_batch_end")

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs):
        super().__init__()
        unknown = set(kwargs) - set(self._HOOKS)
        if unknown:
            raise ValueError(f"Unrecognized hook(s) for LambdaCallback: {sorted(unknown)}")
        hooks = {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end,
                 "on_train_begin": on_train_begin, "on_train_end": on_train_end,
                 "on_train_batch_begin": on_train_batch_begin,
                 "on_train_batch_end": on_train_batch_end, **kwargs}
        for name, fn in hooks.items():
            if fn is not None:
                setattr(self, name, fn)
