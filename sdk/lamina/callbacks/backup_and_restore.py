"""``BackupAndRestore``: resume an interrupted ``fit`` where it stopped.

The backup is one HDF5 file, ``backup_dir/latest.backup.h5``, written atomically (a
temporary file in the same folder, fsync, rename, fsync of the folder), so a process
killed at any instant leaves either the previous backup or the new one, never a torn
file. It holds:

* ``model/<i>``: every model weight (trainable and not), in ``model.weights`` order;
* ``optimizer/<i>``: every optimizer variable (iterations, learning rate, slots);
* attributes ``epoch`` (the epoch to resume at), ``batch``, ``rng_state`` (the global
  generator, JSON) and ``seed_generators`` (the states of layers' own seeded streams).

With ``save_freq="epoch"`` the random state saved is the one the next epoch starts
from, so a resumed run draws the same shuffles and dropout masks as an uninterrupted
one and ends with bit-identical weights.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np

from lamina.backend import random as lamina_random
from lamina.backend.random import SeedGenerator
from lamina.callbacks.callback import Callback
from lamina.callbacks.model_checkpoint import save_due_on_batch

_FILENAME = "latest.backup.h5"
_FORMAT = "lamina-backup"


def _seed_generators(model) -> list:
    """Every seeded ``SeedGenerator`` in the model's layers, in a stable order."""
    found, seen, stack = [], set(), [model]
    while stack:
        layer = stack.pop(0)
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        for name in sorted(vars(layer)):
            value = vars(layer)[name]
            if isinstance(value, SeedGenerator) and value._rng is not None:
                found.append(value)
        stack.extend(getattr(layer, "_layers", []) or [])
    return found


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open a folder
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BackupAndRestore(Callback):
    """Back up the training state regularly and resume from it after an interruption.

    At ``on_train_begin`` an existing backup is loaded (model weights, optimizer state,
    random state) and ``fit`` resumes at the start of the epoch it had reached. At
    ``on_train_end`` (which only runs when ``fit`` finishes normally) the backup
    folder is deleted if ``delete_checkpoint``.

    Put this callback **last** in the list, so that changes other callbacks make at
    epoch end (a reduced learning rate) are in the backup.

    Args:
        backup_dir: folder for the backup file (created when needed). Must not be
            shared by two concurrent ``fit`` runs.
        save_freq: ``"epoch"`` (resume is exact) or an int: back up every that many
            batches; as in Keras the resumed run then restarts the interrupted epoch
            (same shuffle order) from the weights of the last backup.
        double_checkpoint: keep the previous backup as ``*.bkp`` and fall back to it if
            the latest one cannot be read.
        delete_checkpoint: delete ``backup_dir`` when training ends normally.

    Raises:
        ValueError: for an empty ``backup_dir`` or an invalid ``save_freq``; at train
            begin if the model is not built or the backup does not match the model.
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False,
                 delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(
                save_freq, (int, np.integer)) or save_freq <= 0):
            raise ValueError("Invalid value for argument `save_freq`. Received: "
                             f"save_freq={save_freq}. Expected either 'epoch' or an integer "
                             "value.")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        self._weights_path = os.path.join(self.backup_dir, _FILENAME)
        self._prev_weights_path = self._weights_path + ".bkp"
        self._reset()

    def _reset(self):
        self._current_epoch = 0
        self._last_batch_seen = 0
        self._batches_seen_since_last_saving = 0
        self._epoch_start_state = None

    # -- hooks --------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._reset()
        model = self.model
        if not model.built:
            raise ValueError(
                "To use the BackupAndRestore callback, you model must be built before you "
                f"call `fit()`. Model {model.name} is unbuilt. You can build it beforehand by "
                "calling it on a batch of data.")
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            optimizer.build(model.trainable_weights)
        self._load()

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch
        if self.save_freq != "epoch":
            self._epoch_start_state = self._random_state()

    def on_train_batch_end(self, batch, logs=None):
        if save_due_on_batch(self, batch):
            self._save(epoch=self._current_epoch, batch=batch + 1,
                       random_state=self._epoch_start_state)

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if self.save_freq == "epoch":
            self._save(epoch=epoch + 1, batch=0, random_state=self._random_state())

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir)

    # -- state --------------------------------------------------------------------------
    def _random_state(self) -> dict:
        return {"global": lamina_random.get_state(),
                "layers": [g._rng.bit_generator.state for g in _seed_generators(self.model)]}

    def _save(self, epoch: int, batch: int, random_state: dict) -> None:
        import h5py

        os.makedirs(self.backup_dir, exist_ok=True)
        model = self.model
        optimizer = getattr(model, "optimizer", None)
        tmp = os.path.join(self.backup_dir, f".{_FILENAME}.tmp-{os.getpid()}")
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = _FORMAT
            f.attrs["epoch"] = int(epoch)
            f.attrs["batch"] = int(batch)
            f.attrs["rng_state"] = json.dumps(random_state["global"])
            f.attrs["seed_generators"] = json.dumps(random_state["layers"])
            weights = f.create_group("model")
            for i, variable in enumerate(model.weights):
                weights.create_dataset(str(i), data=variable.numpy())
            slots = f.create_group("optimizer")
            for i, variable in enumerate(optimizer.variables if optimizer else []):
                slots.create_dataset(str(i), data=variable.numpy())
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        if self.double_checkpoint and os.path.exists(self._weights_path):
            shutil.copyfile(self._weights_path, self._prev_weights_path)
        os.replace(tmp, self._weights_path)
        _fsync_dir(self.backup_dir)

    def _load(self) -> None:
        paths = [self._weights_path]
        if self.double_checkpoint:
            paths.append(self._prev_weights_path)
        error = None
        for path in paths:
            if not os.path.exists(path):
                continue
            try:
                state = self._read(path)
            except OSError as exc:  # unreadable: try the previous backup
                error = exc
                continue
            self._restore(state)
            return
        if error is not None:
            raise error

    def _read(self, path: str) -> dict:
        import h5py

        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != _FORMAT:
                raise ValueError(f"{path} is not a BackupAndRestore backup file "
                                 f"(format={f.attrs.get('format')!r}).")
            return {
                "epoch": int(f.attrs["epoch"]),
                "rng": json.loads(f.attrs["rng_state"]),
                "layers": json.loads(f.attrs["seed_generators"]),
                "model": [f["model"][str(i)][()] for i in range(len(f["model"]))],
                "optimizer": [f["optimizer"][str(i)][()] for i in range(len(f["optimizer"]))],
            }

    def _restore(self, state: dict) -> None:
        model = self.model
        optimizer = getattr(model, "optimizer", None)
        targets = (("model", model.weights),
                   ("optimizer", optimizer.variables if optimizer else []))
        for what, variables in targets:
            if len(variables) != len(state[what]):
                raise ValueError(
                    f"The backup in {self.backup_dir} does not match this model: it holds "
                    f"{len(state[what])} {what} variables, the {what} has {len(variables)}.")
            for variable, value in zip(variables, state[what]):
                if tuple(np.shape(value)) != tuple(variable.shape):
                    raise ValueError(
                        f"The backup in {self.backup_dir} does not match this model: variable "
                        f"'{variable.path}' has shape {tuple(variable.shape)}, the backup "
                        f"holds shape {np.shape(value)}.")
        for what, variables in targets:
            for variable, value in zip(variables, state[what]):
                variable.assign(value)
        lamina_random.set_state(state["rng"])
        generators = _seed_generators(model)
        if len(generators) == len(state["layers"]):
            for generator, rng_state in zip(generators, state["layers"]):
                generator._rng.bit_generator.state = rng_state
        model._initial_epoch = state["epoch"]
