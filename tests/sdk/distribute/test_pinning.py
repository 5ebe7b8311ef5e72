"""Replicas pinned to one CPU each (lamina.distribute.pinning): when, and that fit's
epochs run on the rank's CPU and leave the thread's CPUs as they were."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.callbacks import Callback
from lamina.distribute import DataParallel, pinning, set_strategy, shm

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"),
                                reason="no CPU affinity on this OS")


@pytest.fixture
def collective(tmp_path):
    path = shm.create(tmp_path / "c", 2, 64)
    handle = shm.SharedMemoryCollective(path, 1)
    yield handle
    handle.close()
    shm.remove(path)


@pytest.mark.parametrize("cpus,setting,niced,expected", [
    ([0, 1], "auto", True, 1),       # two niced ranks fill two CPUs: rank 1, the second
    ([4, 9], "auto", True, 9),       # the CPUs this process may use, in order
    ([0, 1], "auto", False, None),   # at nice 0 the scheduler keeps them apart
    ([0, 1, 2, 3], "auto", True, None),  # fewer ranks than CPUs: another job may run
    ([0, 1, 2, 3], "1", False, 1),
    ([0, 1], "0", True, None),
    ([0], "1", True, None),          # more ranks than CPUs: never
    ([], "auto", True, None),
])
def test_which_cpu(monkeypatch, collective, cpus, setting, niced, expected):
    monkeypatch.setattr(pinning, "allowed_cpus", lambda: cpus)
    monkeypatch.setattr(pinning, "niced", lambda: niced)
    assert pinning.replica_cpu(1, 2, collective, setting) == expected


def test_only_the_shared_memory_collective_and_two_ranks_or_more(monkeypatch, collective):
    monkeypatch.setattr(pinning, "allowed_cpus", lambda: [0, 1])
    assert pinning.replica_cpu(1, 2, object(), "1") is None
    assert pinning.replica_cpu(0, 1, collective, "1") is None


def test_a_bad_setting_is_named(collective, monkeypatch):
    with pytest.raises(ValueError, match="setting='yes'"):
        pinning.replica_cpu(1, 2, collective, "yes")
    monkeypatch.setenv("LAMINA_PIN_REPLICAS", "on")
    with pytest.raises(ValueError, match="LAMINA_PIN_REPLICAS='on'"):
        pinning.replica_cpu(1, 2, collective)


def test_pinned_restores_the_thread_cpus():
    before = os.sched_getaffinity(0)
    cpu = min(before)
    with pinning.pinned(cpu):
        assert os.sched_getaffinity(0) == {cpu}
    assert os.sched_getaffinity(0) == before
    with pinning.pinned(None):
        assert os.sched_getaffinity(0) == before


def test_pinned_restores_the_cpus_when_the_block_raises():
    before = os.sched_getaffinity(0)
    with pytest.raises(KeyError), pinning.pinned(min(before)):
        raise KeyError("boom")
    assert os.sched_getaffinity(0) == before


def test_threads_started_while_pinned_get_the_cpus_back():
    """A thread started in the block inherits the pinned CPU (Linux); after the block
    it runs on the CPUs its creator had before, as if started unpinned."""
    before = os.sched_getaffinity(0)
    if len(before) < 2:
        pytest.skip("needs two CPUs to tell pinned from unpinned")
    go, seen = threading.Event(), {}

    def run():
        seen["inside"] = os.sched_getaffinity(0)
        go.wait(5)
        seen["after"] = os.sched_getaffinity(0)

    thread = threading.Thread(target=run)
    try:
        with pinning.pinned(min(before)):
            thread.start()
            while "inside" not in seen and thread.is_alive():
                thread.join(0.01)
    finally:
        go.set()
        thread.join(5)
    assert seen["inside"] == {min(before)}
    assert seen["after"] == before


def test_fit_epochs_run_on_the_rank_cpu(tmp_path, monkeypatch):
    """One rank of a world-1 collective, told its CPUs are just one: its epochs run
    pinned there (seen from a callback), and fit leaves the thread's CPUs as found."""
    before = os.sched_getaffinity(0)
    cpu = max(before)
    monkeypatch.setattr(pinning, "allowed_cpus", lambda: [cpu])
    monkeypatch.setenv("LAMINA_PIN_REPLICAS", "1")
    path = shm.create(tmp_path / "c", 1, 64, m=64)
    handle = shm.SharedMemoryCollective(path, 0)
    seen = []

    class Where(Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(os.sched_getaffinity(0))

    monkeypatch.setattr(pinning, "replica_cpu", lambda *a, **k: cpu)  # world 1 pins too
    strategy = DataParallel(handle)
    set_strategy(strategy)
    try:
        lamina.utils.set_random_seed(0)
        model = lamina.Sequential([layers.Input((3,)), layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse")
        model.fit(np.ones((8, 3), np.float32), np.zeros((8, 2), np.float32), batch_size=4,
                  epochs=2, verbose=0, callbacks=[Where()])
    finally:
        set_strategy(None)
        handle.close()
        shm.remove(path)
    assert seen and all(cpus == {cpu} for cpus in seen)
    assert os.sched_getaffinity(0) == before
