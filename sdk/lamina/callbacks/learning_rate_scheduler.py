"""``LearningRateScheduler``: set the learning rate from a function of the epoch."""

from __future__ import annotations

import numpy as np

from lamina.callbacks.callback import Callback


class LearningRateScheduler(Callback):
    """At each epoch begin set ``optimizer.learning_rate = schedule(epoch, lr)``.

    ``epoch`` is 0-based. A ``schedule`` taking only the epoch is supported too
    (called again as ``schedule(epoch)`` when the two-argument call raises
    ``TypeError``). The rate is recorded in ``logs["learning_rate"]`` at epoch end.

    Args:
        schedule: ``f(epoch, lr) -> float`` (or ``f(epoch) -> float``).
        verbose: 1 prints the rate set at each epoch.

    Raises:
        ValueError: if the optimizer has no ``learning_rate`` or ``schedule`` returns
            something other than a float.

    Example:

    >>> import lamina
    >>> cb = lamina.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5)
    >>> cb.verbose
    0
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if not hasattr(optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute.')
        try:
            learning_rate = self.schedule(epoch, float(optimizer.learning_rate))
        except TypeError:  # the one-argument form of Keras 2
            learning_rate = self.schedule(epoch)
        if not isinstance(learning_rate, (float, np.float32, np.float64)):
            raise ValueError("The output of the `schedule` function should be a float. "
                             f"Got: {learning_rate}")
        optimizer.learning_rate = learning_rate
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{learning_rate}.", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)
