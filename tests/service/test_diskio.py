"""diskio's publish of fenced writers: link() for a new name, a check before a replace."""

from __future__ import annotations

import errno
import os

import pytest

from lamina_service.diskio import atomic_path


class Refused(Exception):
    """Stands for a fencing check's refusal."""


def refuse() -> None:
    raise Refused


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_new_name_is_linked_without_asking(tmp_path):
    checks = []
    with atomic_path(tmp_path / "a.bin", before_replace=lambda: checks.append(1)) as tmp:
        tmp.write_bytes(b"new")
        inode = os.stat(tmp).st_ino
    assert checks == [] and names(tmp_path) == ["a.bin"]
    assert (tmp_path / "a.bin").read_bytes() == b"new"
    stat = os.stat(tmp_path / "a.bin")
    assert stat.st_ino == inode and stat.st_nlink == 1  # the temp name is gone


def test_a_taken_name_is_replaced_only_when_the_check_returns(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"owner")
    with pytest.raises(Refused), atomic_path(target, before_replace=refuse) as tmp:
        tmp.write_bytes(b"zombie")
    assert names(tmp_path) == ["a.bin"] and target.read_bytes() == b"owner"
    checks = []
    with atomic_path(target, before_replace=lambda: checks.append(1)) as tmp:
        tmp.write_bytes(b"mine")
    assert checks == [1] and names(tmp_path) == ["a.bin"] and target.read_bytes() == b"mine"


def test_a_name_taken_while_the_writer_paused_is_not_replaced(tmp_path):
    """The name is free when the writer checks, taken (by a new owner) when it publishes:
    the check made after link() found it taken refuses, and the owner's bytes stay."""
    target = tmp_path / "a.bin"
    calls = []

    def fence():
        calls.append(1)
        if len(calls) == 1:
            target.write_bytes(b"owner")  # written while the writer slept after its check
        else:
            raise Refused

    with pytest.raises(Refused), atomic_path(target, before_replace=fence) as tmp:
        tmp.write_bytes(b"zombie")
        fence()
    assert names(tmp_path) == ["a.bin"] and target.read_bytes() == b"owner"


@pytest.mark.parametrize("name", ["EPERM", "EOPNOTSUPP", "EXDEV", "ENOSYS", "EMLINK"])
def test_without_hard_links_the_file_is_renamed_after_the_same_check(tmp_path, monkeypatch,
                                                                     name):
    code = getattr(errno, name)

    def no_links(src, dst, *args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "a.bin"
    checks = []
    with atomic_path(target, before_replace=lambda: checks.append(1)) as tmp:
        tmp.write_bytes(b"first")
    assert checks == [] and target.read_bytes() == b"first"  # a free name: no check
    with pytest.raises(Refused), atomic_path(target, before_replace=refuse) as tmp:
        tmp.write_bytes(b"zombie")
    assert names(tmp_path) == ["a.bin"] and target.read_bytes() == b"first"
    with atomic_path(target, before_replace=lambda: checks.append(1)) as tmp:
        tmp.write_bytes(b"second")
    assert checks == [1] and names(tmp_path) == ["a.bin"] and target.read_bytes() == b"second"


def test_other_link_errors_are_disk_faults_that_name_the_target(tmp_path, monkeypatch):
    def failing(src, dst, *args, **kwargs):
        raise OSError(errno.EIO, "link failed in the device")

    monkeypatch.setattr(os, "link", failing)
    with pytest.raises(OSError) as info, atomic_path(tmp_path / "a.bin",
                                                     before_replace=lambda: None) as tmp:
        tmp.write_bytes(b"x")
    assert str(info.value) == "[Errno 5] Input/output error: 'a.bin'"
    assert names(tmp_path) == []


def test_a_writer_killed_between_link_and_unlink_leaves_a_name_the_sweep_removes(tmp_path):
    from lamina_service.diskio import HOST_TAG, sweep_temps

    target = tmp_path / "jobs" / "a.bin"
    target.parent.mkdir()
    target.write_bytes(b"published")
    dead = target.parent / f".a.bin-999999999-{HOST_TAG}.0123456789ab.tmp"
    os.link(target, dead)  # the dead writer's temp name of the published file
    assert sweep_temps(tmp_path) == 1
    assert names(target.parent) == ["a.bin"] and target.read_bytes() == b"published"
