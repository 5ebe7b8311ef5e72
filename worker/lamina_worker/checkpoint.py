"""Training checkpoints: one HDF5 file each, atomic, checksummed, the last two kept.

A checkpoint ``ckpt-<epoch>-<step>.h5`` says "``step`` batches of epoch ``epoch``
are done" (``step == 0``: the epoch has not started). It holds:

* ``weights/<i>``: every model weight, in ``model.weights`` order;
* ``optimizer/<i>``: every optimizer variable (iteration, learning rate, slots);
* ``callbacks/<i>/...``: the state of the i-th callback (``best``, ``wait``, ...,
  ``best_weights``), see :data:`CALLBACK_STATE`;
* ``metrics/accumulators/values``: the epoch's summed metric accumulators so far
  (mid-epoch), in :func:`lamina.distribute.metric_state.additive_fields` order;
* attributes: ``epoch``, ``step``, ``stopped`` (a callback stopped training),
  ``rng_state`` (the global generator at the start of ``epoch``: it draws the
  shuffle, so the resumed epoch sees the same order) and ``replica_rng`` (empty since
  replicas draw no noise from their own generators; kept so older files load).

The file is written to a temp name, fsynced, published under its final name and the
folder fsynced (:func:`lamina_service.diskio.atomic_path`); then the sha256 of the
bytes this writer wrote goes to ``<name>.sha256`` the same way. That sidecar is the
commit marker: a checkpoint without one, or whose bytes do not match it, is skipped
on resume and the previous one is used.

A write that fails (ENOSPC, EIO) leaves no temp file and no uncommitted checkpoint
(a file whose sidecar could not be written is removed with it), prunes nothing, and
raises the ``OSError``: the attempt fails and its retry resumes from the newest
intact checkpoint.

Fencing. The writer's ``fence`` (the lease check) runs right before each of the two
publishes and once after the second, not only before the write: a worker paused
(SIGSTOP, a long GC, a VM freeze) after an early check would otherwise publish into a
folder that a newer attempt owns by the time it wakes up. A check and a publish
cannot be one step, so a publish never replaces: it is ``os.link(tmp, name)``, which
fails with EEXIST when the name is taken. Only then is ``fence`` asked once more and,
if it passes, the file replaced (this attempt re-writing its own checkpoint, or a
file a dead attempt left without its sidecar). On a refusal the writer takes back
what it published, recognised by inode, and leaves every other file alone. Z is the
paused attempt (its lease lapsed), O the new owner; a deterministic job writes the
same names, so both may write ``N`` and ``N.sha256``. Three facts carry the argument:
O publishes only after its claim, and every check of Z after that claim refuses;
each writer publishes ``N`` before ``N.sha256``; a replace by Z follows a check that
passed after Z found the name taken, when O had not claimed yet, so the file Z
replaces is its own or a dead attempt's.

* Z paused after a passing check, O wrote ``N`` (and maybe ``N.sha256``) meanwhile:
  Z's link fails, its next check refuses, Z has published nothing there and removes
  nothing (O's inodes are not its own). Before, its rename replaced O's file and its
  take-back then removed it: a lost checkpoint.
* Z published ``N`` and is refused later: it takes ``N`` back while ``N`` still holds
  its inode, and the sidecar of that name with it (its own, or the one of the file it
  replaced: O's sidecar can only follow O's ``N``, which would have replaced Z's
  first). If O replaced ``N`` already, Z removes at most its own sidecar, by inode.
* O finds ``N`` taken by Z's file: O's check passes, O replaces it; Z's take-back
  then finds another inode and keeps it.
* Readers (O's :func:`latest` at resume or after a replica restart) see a name with
  a sidecar that describes the bytes its own writer wrote: Z's committed pair is a
  valid checkpoint of the same job; a file without a matching sidecar is skipped; a
  pair taken back between the two reads of :func:`verify` is skipped.
* :func:`prune` keeps the newest :data:`KEEP` names; neither prune removes O's newest
  committed checkpoint. O prunes right after committing it, and at most one newer
  name can exist: Z's one uncommitted file not yet taken back (each writer commits a
  name before it starts the next). Z prunes only after its last check passed, before
  O's claim: O resumes from Z's newest committed name or a newer one, and every name
  newer than that is O's, written in order.

Left open: (1) Z paused between the check that follows EEXIST and its replace while
O writes that same name: the name must have existed before either wrote it (a dead
attempt's uncommitted file: O only re-writes names newer than the newest committed
one); Z's replace then removes O's file and its take-back loses it (O's sidecar,
left without its file, is skipped: a lost checkpoint, never a wrong one). The same
pause while Z re-writes its own committed checkpoint, which O may have resumed from,
makes Z's take-back remove that checkpoint (O's newer ones stay).
(2) A take-back is a stat then an unlink: O replacing the name between the two loses
O's file the same way. (3) File systems without hard links (some FUSE and overlay
setups: link raises EPERM/ENOTSUP/EXDEV/ENOSYS) publish by rename after the same
checks, where a writer paused between a check and its rename still replaces a file of
that name (:data:`lamina_service.diskio.NO_LINK_ERRNOS`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lamina_service.diskio import atomic_path

NAME = re.compile(r"^ckpt-(\d{6})-(\d{8})\.h5$")
FORMAT = "lamina-worker-checkpoint-1"
KEEP = 2
#: Attributes saved per callback class (by class name): the state that survives a resume.
CALLBACK_STATE = {
    "EarlyStopping": ("wait", "stopped_epoch", "best", "best_epoch", "best_weights"),
    "ReduceLROnPlateau": ("wait", "cooldown_counter", "best"),
    "ModelCheckpoint": ("best", "_batches_seen_since_last_saving", "_last_batch_seen"),
}


class NonFiniteState(ValueError):
    """The state to checkpoint holds NaN or infinite weights."""


@dataclass
class State:
    """What a checkpoint holds (see the module docstring)."""

    epoch: int
    step: int
    weights: list[np.ndarray]
    optimizer: list[np.ndarray]
    rng_state: dict
    replica_rng: list = field(default_factory=list)
    callbacks: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    stopped: bool = False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def callback_states(callbacks: list) -> list[dict]:
    """The saved attributes of each callback, in list order (``{}`` for others)."""
    out = []
    for callback in callbacks:
        names = CALLBACK_STATE.get(type(callback).__name__, ())
        out.append({"class_name": type(callback).__name__,
                    **{n: getattr(callback, n) for n in names if hasattr(callback, n)}})
    return out


def restore_callbacks(callbacks: list, states: list[dict]) -> None:
    """Set the attributes saved by :func:`callback_states` back (matched by position)."""
    for callback, state in zip(callbacks, states):
        if state.get("class_name") != type(callback).__name__:
            continue
        for name, value in state.items():
            if name != "class_name":
                setattr(callback, name, value)


def _put(group, name: str, value: Any) -> None:
    if isinstance(value, list) and value and all(isinstance(v, np.ndarray) for v in value):
        sub = group.create_group(name)
        sub.attrs["list_len"] = len(value)
        for i, item in enumerate(value):
            sub.create_dataset(str(i), data=item)
    elif isinstance(value, np.ndarray):
        group.create_dataset(name, data=value)
    else:
        if isinstance(value, np.generic):
            value = value.item()
        group.attrs[name] = json.dumps(value)


def _get(group) -> dict:
    out = {k: json.loads(v) for k, v in group.attrs.items()}
    for name, item in group.items():
        if "list_len" in item.attrs:
            out[name] = [item[str(i)][()] for i in range(int(item.attrs["list_len"]))]
        else:
            out[name] = item[()]
    return out


def _list(f, name: str) -> list[np.ndarray]:
    group = f[name]
    return [group[str(i)][()] for i in range(len(group))]


def check_finite(state: State) -> None:
    """Raise :class:`NonFiniteState` when a weight or optimizer slot is not finite."""
    for what, arrays in (("weight", state.weights), ("optimizer variable", state.optimizer)):
        for i, array in enumerate(arrays):
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise NonFiniteState(f"{what} {i} holds NaN or infinite values")


def write(folder: Path, state: State, fence: Callable[[], None] | None = None) -> Path:
    """Write ``state`` atomically with its checksum; keep the newest :data:`KEEP`.

    Args:
        folder: the job's checkpoint folder.
        state: what to write.
        fence: called right before each publish, again before replacing a name that
            is taken, and after the last publish; raises when this writer no longer
            owns the job (nothing more is published, see the module docstring).

    Raises:
        NonFiniteState: a weight is NaN/inf (nothing is written).
        OSError: the disk is full or failing (nothing is written, nothing pruned).
    """
    check_finite(state)
    folder = Path(folder)
    path = folder / f"ckpt-{state.epoch:06d}-{state.step:08d}.h5"
    sidecar = path.with_name(path.name + ".sha256")
    check = fence if fence is not None else _unfenced
    ours = committed = None
    try:
        with atomic_path(path, before_replace=check) as tmp:
            _write_h5(tmp, state)
            digest = _sha256(tmp)  # of this writer's bytes, whatever the name holds later
            ours = _identity(tmp)  # link() keeps the inode
            check()
        with atomic_path(sidecar, before_replace=check) as tmp:
            tmp.write_text(digest + "\n")
            committed = _identity(tmp)
            check()
        check()  # a pause between the last check and its publish published both
    except BaseException:
        # Fenced, interrupted or a disk fault: take back what this writer published,
        # where the names still hold its files (they may be the new owner's by now).
        if _holds(path, ours):
            # The sidecar is this writer's or the one of the file it replaced: a new
            # owner's data would have replaced this writer's file before its sidecar.
            sidecar.unlink(missing_ok=True)
            _unlink_if(path, ours)
        elif committed is not None:
            _unlink_if(sidecar, committed)
        raise
    prune(folder)
    return path


def _unfenced() -> None:
    """The check of a writer without a lease (tests, local use): it owns the folder."""


def _write_h5(tmp: Path, state: State) -> None:
    import h5py

    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["epoch"] = int(state.epoch)
        f.attrs["step"] = int(state.step)
        f.attrs["stopped"] = bool(state.stopped)
        f.attrs["rng_state"] = json.dumps(state.rng_state)
        f.attrs["replica_rng"] = json.dumps(state.replica_rng)
        for name in ("weights", "optimizer"):
            group = f.create_group(name)
            for i, array in enumerate(getattr(state, name)):
                group.create_dataset(str(i), data=array)
        callbacks = f.create_group("callbacks")
        callbacks.attrs["count"] = len(state.callbacks)
        for i, cb_state in enumerate(state.callbacks):
            group = callbacks.create_group(str(i))
            for name, value in cb_state.items():
                _put(group, name, value)
        metrics = f.create_group("metrics")
        for name, fields in state.metrics.items():
            group = metrics.create_group(name)
            for key, value in fields.items():
                _put(group, key, value)


def _identity(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def _holds(path: Path, identity: tuple[int, int] | None) -> bool:
    """True when ``path`` is the file ``identity`` names."""
    try:
        return identity is not None and _identity(path) == identity
    except FileNotFoundError:
        return False


def _unlink_if(path: Path, identity: tuple[int, int]) -> None:
    """Remove ``path`` when it is still the file ``identity`` names."""
    try:
        if _identity(path) == identity:
            path.unlink()
    except FileNotFoundError:
        pass


def _listed(folder: Path) -> list[tuple[int, int, Path]]:
    found = []
    for path in Path(folder).glob("ckpt-*.h5"):
        match = NAME.fullmatch(path.name)
        if match and not path.is_symlink():
            found.append((int(match.group(1)), int(match.group(2)), path))
    return sorted(found, reverse=True)


def prune(folder: Path, keep: int = KEEP) -> None:
    """Delete all but the newest ``keep`` checkpoints (stray temp files: see
    :func:`lamina_service.diskio.sweep_temps`)."""
    for _, _, path in _listed(folder)[keep:]:
        path.with_name(path.name + ".sha256").unlink(missing_ok=True)
        path.unlink(missing_ok=True)


def verify(path: Path) -> bool:
    """True when ``path`` has a checksum sidecar that matches its bytes."""
    sidecar = path.with_name(path.name + ".sha256")
    try:
        expected = sidecar.read_text().strip()
        # a fenced writer or a prune may remove the pair between the two reads
        return expected == _sha256(path)
    except OSError:
        return False


def read(path: Path) -> State:
    """Load one checkpoint (no checksum check; see :func:`latest`)."""
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"{path.name} is not a worker checkpoint")
        weights = _list(f, "weights")
        optimizer = _list(f, "optimizer")
        callbacks = [_get(f["callbacks"][str(i)])
                     for i in range(int(f["callbacks"].attrs["count"]))]
        metrics = {name: _get(group) for name, group in f["metrics"].items()}
        return State(
            epoch=int(f.attrs["epoch"]), step=int(f.attrs["step"]),
            weights=weights, optimizer=optimizer,
            rng_state=json.loads(f.attrs["rng_state"]),
            replica_rng=json.loads(f.attrs["replica_rng"]),
            callbacks=callbacks, metrics=metrics, stopped=bool(f.attrs["stopped"]),
        )


def latest(folder: Path) -> tuple[State, Path] | None:
    """The newest checkpoint whose checksum verifies and that loads; None if none."""
    for _, _, path in _listed(folder):
        if not verify(path):
            continue
        try:
            return read(path), path
        except (OSError, ValueError, KeyError):
            continue
    return None
