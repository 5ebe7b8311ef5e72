"""``TerminateOnNaN``: stop training as soon as the loss becomes NaN or infinite."""

from __future__ import annotations

import math

from lamina.callbacks.callback import Callback


class TerminateOnNaN(Callback):
    """Stop training when a batch's ``loss`` log is NaN or infinite.

    Args:
        raise_error: raise ``RuntimeError`` instead of setting ``stop_training`` (the
            other callbacks' ``on_train_end`` is then skipped).

    Raises:
        RuntimeError: on an invalid loss when ``raise_error`` is True.
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. "
                               "Training terminated.")
        print(f"Batch {batch}: Invalid loss, terminating training", flush=True)
        self.model.stop_training = True
