"""``ModelCheckpoint``: save the model or its weights during training."""

from __future__ import annotations

import os
import warnings

import numpy as np

from lamina.callbacks.monitor_callback import MonitorCallback


def save_due_on_batch(callback, batch) -> bool:
    """Whether a callback saving every ``callback.save_freq`` batches saves after ``batch``.

    Batches are counted across epochs (``batch`` restarts at 0 each epoch) in the
    callback's ``_batches_seen_since_last_saving`` and ``_last_batch_seen``, as Keras
    does (the worker's checkpoints store both). Always False for ``save_freq="epoch"``.
    """
    if callback.save_freq == "epoch":
        return False
    if batch <= callback._last_batch_seen:  # a new epoch started
        add_batches = batch + 1
    else:
        add_batches = batch - callback._last_batch_seen
    callback._batches_seen_since_last_saving += add_batches
    callback._last_batch_seen = batch
    if callback._batches_seen_since_last_saving >= callback.save_freq:
        callback._batches_seen_since_last_saving = 0
        return True
    return False


class ModelCheckpoint(MonitorCallback):
    """Save the model (``.keras``/``.h5``) or its weights (``.weights.h5``) while training.

    ``filepath`` may hold ``str.format`` placeholders: ``{epoch}`` (1-based, as in
    Keras), ``{batch}`` (1-based, batch-level saves only) and any log key, e.g.
    ``"ckpt/model-{epoch:02d}-{val_loss:.2f}.keras"``.

    Args:
        filepath: path or pattern of the file to write.
        monitor: log key compared when ``save_best_only``.
        verbose: 1 prints a message at every decision and save.
        save_best_only: save only when ``monitor`` improves (the latest best is kept;
            a pattern without placeholders is overwritten).
        save_weights_only: call ``model.save_weights`` instead of ``model.save``.
        mode: ``"auto"``, ``"min"`` or ``"max"`` for the comparison.
        save_freq: ``"epoch"`` or an int: save every that many batches (counted
            across epochs).
        initial_value_threshold: initial ``best``; only better values are saved.

    Raises:
        ValueError: for a ``save_freq`` that is neither ``"epoch"`` nor an int, or a
            file extension that does not match ``save_weights_only``.

    The best value is kept across ``fit`` calls, as in Keras, so a second ``fit`` only
    saves when it beats the first.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__(monitor, mode, initial_value_threshold)
        self.verbose = verbose
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._current_epoch = 0
        if save_freq != "epoch" and (isinstance(save_freq, bool)
                                     or not isinstance(save_freq, (int, np.integer))):
            raise ValueError(f"Unrecognized save_freq: {save_freq}. Expected save_freq are "
                             "'epoch' or integer values")
        if save_weights_only:
            if not self.filepath.endswith(".weights.h5"):
                raise ValueError(
                    "When using `save_weights_only=True` in `ModelCheckpoint`, the filepath "
                    "provided must end in `.weights.h5` (Keras weights format). Received: "
                    f"filepath={self.filepath}")
        elif not self.filepath.endswith((".keras", ".h5")):
            raise ValueError("The filepath provided must end in `.keras` (Keras model format). "
                             f"Received: filepath={self.filepath}")

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if save_due_on_batch(self, batch):
            self._save_model(epoch=self._current_epoch, batch=batch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save_model(epoch=epoch, batch=None, logs=logs)

    def _should_save_model(self, epoch, logs, filepath) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}", flush=True)
            return True
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.",
                          stacklevel=2)
            return True
        if np.ndim(current) > 0:
            warnings.warn("Can save best model only when `monitor` is a scalar value. "
                          f"Received: {current}. Falling back to `save_best_only=False`.",
                          stacklevel=2)
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to "
                      f"{current:.5f}, saving model to {filepath}", flush=True)
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}",
                  flush=True)
        return False

    def _save_model(self, epoch, batch, logs):
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, logs, filepath):
            return
        if os.path.isdir(filepath):
            raise OSError("Please specify a non-directory filepath for ModelCheckpoint. "
                          f"Filepath used is an existing directory: {filepath}")
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath, overwrite=True)
        else:
            self.model.save(filepath, overwrite=True)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}", flush=True)

    def _get_file_path(self, epoch, batch, logs) -> str:
        """``filepath`` formatted with the 1-based epoch (and batch) and the logs."""
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as exc:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". '
                           f"Reason: {exc}") from exc
