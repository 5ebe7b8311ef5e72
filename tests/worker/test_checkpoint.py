"""Checkpoint files: atomic + checksummed, newest valid one wins, two kept, NaN refused."""

from __future__ import annotations

import numpy as np
import pytest

from lamina.callbacks import EarlyStopping, ReduceLROnPlateau
from lamina_worker import checkpoint


def state(epoch, step=0, value=1.0, callbacks=()):
    return checkpoint.State(
        epoch=epoch, step=step, weights=[np.full((2, 3), value, np.float32), np.zeros(3)],
        optimizer=[np.array(epoch, np.int64), np.array(0.01, np.float32)],
        rng_state=np.random.default_rng(epoch).bit_generator.state,
        callbacks=checkpoint.callback_states(list(callbacks)),
        metrics={"loss": {"total": 3.0, "count": 2.0}} if step else {})


def test_round_trip_keeps_two_and_verifies(tmp_path):
    early = EarlyStopping(restore_best_weights=True)
    early.best, early.wait, early.best_weights = 0.5, 1, [np.ones(2, np.float32)]
    plateau = ReduceLROnPlateau()
    plateau.best, plateau.cooldown_counter = np.float32(0.25), 2
    for epoch in range(1, 4):
        checkpoint.write(tmp_path, state(epoch, callbacks=(early, plateau)))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["ckpt-000002-00000000.h5", "ckpt-000002-00000000.h5.sha256",
                     "ckpt-000003-00000000.h5", "ckpt-000003-00000000.h5.sha256"]
    loaded, path = checkpoint.latest(tmp_path)
    assert path.name == "ckpt-000003-00000000.h5" and loaded.epoch == 3
    assert loaded.rng_state == np.random.default_rng(3).bit_generator.state
    fresh_early, fresh_plateau = EarlyStopping(), ReduceLROnPlateau()
    checkpoint.restore_callbacks([fresh_early, fresh_plateau], loaded.callbacks)
    assert fresh_early.best == 0.5 and fresh_early.wait == 1
    np.testing.assert_array_equal(fresh_early.best_weights[0], np.ones(2))
    assert fresh_plateau.best == pytest.approx(0.25) and fresh_plateau.cooldown_counter == 2


def test_corrupt_newest_falls_back_to_previous(tmp_path):
    checkpoint.write(tmp_path, state(1, value=1.0))
    newest = checkpoint.write(tmp_path, state(1, step=5, value=2.0))
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    loaded, path = checkpoint.latest(tmp_path)
    assert path.name == "ckpt-000001-00000000.h5"
    assert float(loaded.weights[0][0, 0]) == 1.0


def test_missing_checksum_is_not_a_checkpoint(tmp_path):
    path = checkpoint.write(tmp_path, state(1))
    path.with_name(path.name + ".sha256").unlink()
    assert checkpoint.latest(tmp_path) is None


def test_non_finite_weights_are_never_written(tmp_path):
    bad = state(1)
    bad.weights[0][0, 0] = np.nan
    with pytest.raises(checkpoint.NonFiniteState):
        checkpoint.write(tmp_path, bad)
    assert list(tmp_path.iterdir()) == []


def test_write_is_atomic_file_then_dir_fsync(tmp_path, monkeypatch):
    import os

    calls = []
    real_fsync, real_replace, real_link = os.fsync, os.replace, os.link
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"),
                                                     real_replace(a, b))[1])
    monkeypatch.setattr(os, "link", lambda a, b: (calls.append("link"), real_link(a, b))[1])
    checkpoint.write(tmp_path, state(1))
    # data file: fsync, link (a new name: never a replace), dir fsync; then the checksum
    assert calls == ["fsync", "link", "fsync", "fsync", "link", "fsync"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt-000001-00000000.h5", "ckpt-000001-00000000.h5.sha256"]  # no temp name
    calls.clear()
    checkpoint.write(tmp_path, state(1))  # the names are taken: replaced
    assert calls == ["fsync", "link", "replace", "fsync", "fsync", "link", "replace", "fsync"]


class Refused(Exception):
    """Stands for the lease check's refusal (lamina_worker.errors.Fenced)."""


@pytest.mark.parametrize("refuse_at", [1, 2, 3])
def test_a_fenced_writer_leaves_the_folder_as_it_found_it(tmp_path, monkeypatch, refuse_at):
    """A writer paused after an early lease check must not publish once it is fenced:
    the check runs after the file is written, right before each publish and after the
    last, and a refusal takes back whatever this writer had published."""
    import os

    owner = checkpoint.write(tmp_path, state(1, value=7.0))  # the new owner's file
    events = []
    real_link = os.link

    def fence():
        events.append("fence")
        if events.count("fence") == refuse_at:
            raise Refused

    monkeypatch.setattr(os, "link", lambda a, b: (events.append("link"), real_link(a, b))[1])
    with pytest.raises(Refused):
        checkpoint.write(tmp_path, state(2, value=9.0), fence=fence)
    monkeypatch.setattr(os, "link", real_link)
    # each publish is preceded by its own check; nothing is published after a refusal
    assert events == ["fence", "link", "fence", "link", "fence"][:2 * refuse_at - 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == [owner.name, owner.name + ".sha256"]
    loaded, path = checkpoint.latest(tmp_path)  # the owner's checkpoint is untouched
    assert path == owner and float(loaded.weights[0][0, 0]) == 7.0


@pytest.mark.parametrize("refuse_at", [2, 3])
def test_a_fenced_writer_leaves_the_new_owners_files_of_the_same_name(tmp_path, refuse_at):
    """The new owner of a deterministic job writes the same names: when its files
    replaced the fenced writer's before the refusal, they stay."""
    calls = []

    def fence():
        calls.append(1)
        if len(calls) == refuse_at:
            checkpoint.write(tmp_path, state(2, value=5.0))  # the owner, same names
            raise Refused

    with pytest.raises(Refused):
        checkpoint.write(tmp_path, state(2, value=9.0), fence=fence)
    loaded, path = checkpoint.latest(tmp_path)
    assert path.name == "ckpt-000002-00000000.h5" and float(loaded.weights[0][0, 0]) == 5.0


def test_stale_collectives_of_dead_drivers_are_removed(tmp_path):
    import os

    from lamina.distribute import shm
    from lamina_worker.trainer import DataParallelTrainer

    dead = shm.create(tmp_path / "lamina-j_1-t1-g0-999999999", 2, 4)
    (tmp_path / "lamina-j_1-t1-g0-999999999.r0").touch()
    alive = shm.create(tmp_path / f"lamina-j_2-t1-g0-{os.getpid()}", 2, 4)
    DataParallelTrainer.remove_stale_collectives(tmp_path)
    assert sorted(tmp_path.iterdir()) == [alive]
    assert dead.name not in os.listdir(tmp_path)


def test_a_checkpoint_removed_while_resuming_is_skipped(tmp_path, monkeypatch):
    """A fenced writer takes back the file it renamed while the job's new owner resumes
    (module docstring of lamina_worker.checkpoint), sidecar first, then the file: the
    newest checkpoint is listed and its sidecar read, then the file is gone before its
    bytes are hashed. The resume falls back to the previous checkpoint instead of
    failing the attempt on FileNotFoundError."""
    from pathlib import Path

    checkpoint.write(tmp_path, state(1, value=1.0))
    newest = checkpoint.write(tmp_path, state(1, step=5, value=2.0))
    list_folder = Path.glob

    def glob_then_take_back(self, pattern, *args, **kwargs):
        found = list(list_folder(self, pattern, *args, **kwargs))
        newest.unlink()  # as if after its sidecar was read: verify() sees the sidecar
        return iter(found)

    monkeypatch.setattr(Path, "glob", glob_then_take_back)
    loaded, path = checkpoint.latest(tmp_path)
    assert path.name == "ckpt-000001-00000000.h5"
    assert float(loaded.weights[0][0, 0]) == 1.0
    assert checkpoint.verify(newest) is False


@pytest.mark.parametrize("pause_at", [1, 2])
def test_a_zombie_woken_after_the_new_owner_wrote_the_same_names_replaces_nothing(
        tmp_path, pause_at):
    """The zombie's ``pause_at``-th fencing check passes, then it sleeps right there
    (SIGSTOP, a GC pause) while its lease lapses and the new owner writes the same
    checkpoint (a deterministic job writes the same names); every later check refuses.
    Its publish after the pause must not replace the owner's file or sidecar: both
    survive byte for byte and verify, and the zombie leaves nothing of its own."""
    owner = {}
    calls = []

    def fence():
        calls.append("fence")
        if len(calls) == pause_at:
            checkpoint.write(tmp_path, state(2, value=5.0))  # the new owner, same names
            owner.update({p.name: p.read_bytes() for p in tmp_path.iterdir()
                          if not p.name.startswith(".")})  # not the zombie's temp
        elif len(calls) > pause_at:
            raise Refused

    with pytest.raises(Refused):
        checkpoint.write(tmp_path, state(2, value=9.0), fence=fence)
    assert sorted(owner) == ["ckpt-000002-00000000.h5", "ckpt-000002-00000000.h5.sha256"]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == owner
    loaded, path = checkpoint.latest(tmp_path)
    assert checkpoint.verify(path) and float(loaded.weights[0][0, 0]) == 5.0


def test_an_existing_name_is_replaced_only_after_a_passing_check(tmp_path):
    """A name that exists already (this attempt's own earlier write, or a file a dead
    attempt left without its sidecar) is replaced, but only after a fencing check made
    once the name was found taken; a refusal there leaves the old file as it was."""
    leftover = checkpoint.write(tmp_path, state(2, value=3.0))
    leftover.with_name(leftover.name + ".sha256").unlink()  # died before its commit
    before = leftover.read_bytes()
    calls = []

    def refuse_second(_calls=calls):
        _calls.append("fence")
        if len(_calls) == 2:
            raise Refused

    with pytest.raises(Refused):
        checkpoint.write(tmp_path, state(2, value=9.0), fence=refuse_second)
    assert [p.name for p in tmp_path.iterdir()] == [leftover.name]
    assert leftover.read_bytes() == before
    calls.clear()
    checkpoint.write(tmp_path, state(2, value=9.0), fence=lambda: calls.append("fence"))
    # data: check, taken, check, replace; sidecar (gone): check, link; the last check
    assert calls == ["fence"] * 4
    loaded, path = checkpoint.latest(tmp_path)
    assert path == leftover and float(loaded.weights[0][0, 0]) == 9.0
    checkpoint.write(tmp_path, state(2, value=4.0), fence=lambda: calls.append("fence"))
    assert len(calls) == 4 + 5  # both names taken now: one more check before each
    assert float(checkpoint.latest(tmp_path)[0].weights[0][0, 0]) == 4.0


@pytest.mark.parametrize("code", ["EPERM", "EOPNOTSUPP", "EXDEV", "ENOSYS"])
def test_without_hard_links_checkpoints_are_renamed_into_place(tmp_path, monkeypatch, code):
    """Some FUSE and overlay file systems refuse ``link()``: the write falls back to the
    rename it used before (the zombie window stays open there, see the module docstring)."""
    import errno
    import os

    def no_links(src, dst, *args, **kwargs):
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)))

    monkeypatch.setattr(os, "link", no_links)
    checkpoint.write(tmp_path, state(1, value=1.0))
    checkpoint.write(tmp_path, state(1, value=2.0))  # the same names, replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt-000001-00000000.h5", "ckpt-000001-00000000.h5.sha256"]
    assert float(checkpoint.latest(tmp_path)[0].weights[0][0, 0]) == 2.0
