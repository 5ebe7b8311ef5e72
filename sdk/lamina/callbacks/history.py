"""``History``: records every epoch's logs; ``fit`` returns it."""

from __future__ import annotations

from lamina.callbacks.callback import Callback


class History(Callback):
    """Records the logs of each epoch in ``history`` (key -> list of floats).

    Attributes:
        history: dict mapping each log key to its per-epoch values.
        epoch: list of the 0-based epoch indices that ran.
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self
