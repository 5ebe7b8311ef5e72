"""``TensorBoard``: epoch/batch scalars, learning rate and weight histograms as TF event files."""

from __future__ import annotations

import os

import numpy as np

from lamina.callbacks.callback import Callback
from lamina.callbacks.event_writer import EventFileWriter


class TensorBoard(Callback):
    """Write logs that ``tensorboard --logdir`` reads (``<log_dir>/train``, ``/validation``).

    Epoch logs go to ``epoch_<name>`` (``val_`` logs to the validation run without the
    prefix), the optimizer's learning rate to ``epoch_learning_rate``, batch logs to
    ``batch_<name>`` at the global batch index, weights to ``<path>/histogram``.

    Args:
        log_dir: the root directory, default ``"logs"``.
        histogram_freq: write weight histograms every this many epochs (0: never).
        write_graph: accepted for compatibility; Lamina writes no graph.
        write_images: accepted for compatibility; weight images are not written.
        write_steps_per_second: also log ``batch_steps_per_second``-style rates.
        update_freq: ``"epoch"``, ``"batch"`` or an int N (batch logs every N batches).
        profile_batch: must be 0 (Lamina has no profiler).
        embeddings_freq: must be 0 (embedding projector files are not written).
        embeddings_metadata: accepted for compatibility.

    Raises:
        ValueError: for an invalid ``update_freq``, or a profiler/embeddings request.
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0,
                 embeddings_freq=0, embeddings_metadata=None):
        super().__init__()
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (not isinstance(update_freq, int) or update_freq < 1):
            raise ValueError("`update_freq` must be 'epoch', 'batch' or a positive integer. "
                             f"Received: update_freq={update_freq!r}")
        if profile_batch:
            raise ValueError("Lamina's TensorBoard callback has no profiler. "
                             f"Received: profile_batch={profile_batch!r}")
        if embeddings_freq:
            raise ValueError("Lamina's TensorBoard callback does not write embeddings. "
                             f"Received: embeddings_freq={embeddings_freq!r}")
        self.log_dir = str(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.write_images = write_images
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = update_freq
        self.profile_batch = profile_batch
        self.embeddings_freq = embeddings_freq
        self.embeddings_metadata = embeddings_metadata
        self._writers: dict[str, EventFileWriter] = {}
        self._global_train_batch = 0

    def _writer(self, run: str) -> EventFileWriter:
        if run not in self._writers:
            self._writers[run] = EventFileWriter(os.path.join(self.log_dir, run))
        return self._writers[run]

    def on_train_begin(self, logs=None):
        self._global_train_batch = 0

    def on_train_batch_end(self, batch, logs=None):
        self._global_train_batch += 1
        if self.update_freq == "epoch" or self._global_train_batch % self.update_freq:
            return
        writer = self._writer("train")
        for name, value in (logs or {}).items():
            writer.scalar(f"batch_{name}", float(np.asarray(value)), self._global_train_batch)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and hasattr(optimizer, "learning_rate"):
            train["learning_rate"] = float(optimizer.learning_rate)
        for name, value in train.items():
            self._writer("train").scalar(f"epoch_{name}", float(np.asarray(value)), epoch)
        for name, value in logs.items():
            if name.startswith("val_"):
                self._writer("validation").scalar(f"epoch_{name[4:]}",
                                                  float(np.asarray(value)), epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            writer = self._writer("train")
            for layer in self.model.layers:
                for weight in layer.weights:
                    name = getattr(weight, "path", weight.name).replace(":", "_")
                    writer.histogram(f"{name}/histogram", weight.numpy(), epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
