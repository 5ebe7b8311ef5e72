"""Disk faults: a full (ENOSPC) or failing (EIO) disk under the storage root.

The full disk is real: the storage root is a small tmpfs mounted for the test
(the container runs as root; CI too) and filled to the last page by a filler file,
so checkpoints, the final model and uploads fail inside the kernel exactly as on a
full volume. Where mounting is refused (a container without CAP_SYS_ADMIN), the
tests that need it are skipped with that reason (they fail instead with
``LAMINA_REQUIRE_MOUNT=1``); the atomic writer's ENOSPC path is still exercised for
real through ``/dev/full``.

EIO cannot be produced by a real device without FUSE or a faulty block device, so
:func:`test_upload_on_failing_disk_is_503_and_keeps_nothing` and
:func:`test_checkpoint_whose_checksum_fails_is_removed_with_it` inject it at the OS
boundary only: ``os.fsync`` fails with EIO for descriptors of the targeted files (under
the test's storage root; a checkpoint's sidecar temp) and behaves normally for every
other file. Everything above that call (the API, the storage and checkpoint code, the
error mapping) is the real code path; ENOSPC and EIO take the same one.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis

from lamina.callbacks import Callback

ROOT = Path(__file__).resolve().parents[2]
PYTHONPATH = os.pathsep.join(str(ROOT / p) for p in ("sdk", "services", "worker"))
TENANT = "local"


# -- a real full disk ------------------------------------------------------------------

class Disk:
    """A tmpfs of ``size`` at ``path``; :meth:`fill` takes its last free page."""

    def __init__(self, path: Path, size: str) -> None:
        self.path, self.size = path, size
        self.filler = path / "filler.bin"

    def mount(self) -> Disk:
        self.path.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs",
                                 str(self.path)], capture_output=True, text=True)
        if result.returncode != 0:
            reason = f"cannot mount a tmpfs (uid {os.getuid()}): {result.stderr.strip()}"
            if os.environ.get("LAMINA_REQUIRE_MOUNT") == "1":
                pytest.fail(reason)
            pytest.skip(reason)
        return self

    def unmount(self) -> None:
        if subprocess.run(["umount", str(self.path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)

    def fill(self) -> None:
        """Write the filler until the kernel answers ENOSPC (a 1-byte write included)."""
        with open(self.filler, "ab", buffering=0) as out:
            for chunk in (1 << 16, 4096, 1):
                try:
                    while True:
                        out.write(b"\0" * chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
        with pytest.raises(OSError) as info:
            (self.path / "probe").write_bytes(b"x")
        assert info.value.errno == errno.ENOSPC
        (self.path / "probe").unlink(missing_ok=True)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def disk(tmp_path):
    disk = Disk(tmp_path / "disk", "16m").mount()
    try:
        yield disk
    finally:
        disk.unmount()


def temps(folder: Path) -> list[str]:
    """Temp files (any naming) anywhere under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*") if p.is_file())


# -- jobs on the full disk -------------------------------------------------------------

def blobs(n=256, features=12, classes=3, seed=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(size=(classes, features))[y] * 1.5 + rng.normal(size=(n, features))
    return x.astype(np.float32), y.astype(np.int64)


def mlp_config(features=12, classes=3) -> dict:
    import lamina
    from lamina import layers

    model = lamina.Sequential([layers.Input((features,)), layers.Dense(16, activation="relu"),
                               layers.Dense(classes, activation="softmax")])
    return json.loads(model.to_json())


class Stack:
    """Producer, storage and in-process workers on the test Redis and the tmpfs root."""

    def __init__(self, redis_url: str, root: Path, max_attempts: int) -> None:
        from lamina_service.config import Settings
        from lamina_service.queue import Producer
        from lamina_service.storage import Storage

        self.settings = Settings(redis_url=redis_url, storage_root=str(root),
                                 lease_seconds=5.0, max_attempts=max_attempts)
        self.client = redis.Redis.from_url(redis_url, decode_responses=True)
        self.producer = Producer(self.client, self.settings)
        limits = self.settings.limits
        self.storage = Storage(root, limits.max_upload_bytes, limits.max_array_bytes)

    def submit(self, x, y, epochs: int) -> tuple[str, dict]:
        from lamina_service.api.schemas import JobCreate
        from lamina_service.service import submit_job

        buffer = io.BytesIO()
        np.savez(buffer, x=x, y=y)

        async def chunks():
            yield buffer.getvalue()

        info = asyncio.run(self.storage.ingest_dataset(chunks(), "npz"))
        self.producer.add_dataset(TENANT, info.id, info.to_dict())
        spec = {"model": mlp_config(), "dataset_id": info.id, "replicas": 1,
                "compile": {"optimizer": {"class_name": "Adam",
                                          "config": {"learning_rate": 0.01}},
                            "loss": "sparse_categorical_crossentropy"},
                "fit": {"epochs": epochs, "batch_size": 32, "seed": 11}}
        return submit_job(self.producer, self.settings, TENANT, JobCreate(**spec)).id, spec

    def attempt(self, worker) -> str:
        """Claim the job and run one attempt; its outcome."""
        job = worker.consumer.claim(block_ms=10_000)
        assert job is not None, "the job was not back in the queue"
        return worker.run_job(job)

    def worker(self, callbacks):
        from lamina_worker.loop import Worker

        return Worker(self.settings, replica_cpus=0.5, burst=True, block_ms=200,
                      extra_callbacks=callbacks)

    def events(self, job_id: str) -> list:
        from lamina_service.queue import keys

        return [(f["type"], json.loads(f["data"]))
                for _, f in self.client.xrange(keys.job_events_key(job_id))]

    def final_weights(self, job_id: str) -> list:
        from lamina.models import load_model

        model = load_model(str(self.storage.final_model(job_id)), compile=False)
        return [np.array(w.data) for w in model.weights]


def reference_weights(spec: dict, x, y) -> list:
    """The same job trained locally without faults."""
    import lamina
    from lamina.models import model_from_config
    from lamina_worker.spec import compile_config

    lamina.utils.set_random_seed(spec["fit"]["seed"])
    model = model_from_config(spec["model"], safe_mode=True)
    model.compile(**compile_config(spec))
    model.fit(x, y, batch_size=spec["fit"]["batch_size"], epochs=spec["fit"]["epochs"],
              verbose=0)
    return [np.array(w.data) for w in model.weights]


@pytest.fixture
def stack(redis_url, ray_local, disk):
    made = []

    def make(max_attempts: int) -> Stack:
        made.append(Stack(redis_url, disk.path / "storage", max_attempts))
        return made[-1]

    yield make
    for item in made:
        item.client.close()


class FillDisk(Callback):
    """Fills the disk at the end of epoch ``epoch`` (before the checkpoint of that
    epoch end is written: the worker's CheckpointCallback runs last), or at train end.
    Notes where the attempt's trainer resumed from (``resumed``)."""

    trainer = None  # set by the worker's trainer

    def __init__(self, disk: Disk, epoch: int | None) -> None:
        super().__init__()
        self.disk, self.epoch = disk, epoch
        self.resumed = "not reached"

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.disk.fill()

    def on_train_end(self, logs=None):
        self.resumed = self.trainer.resumed_from
        if self.epoch is None:
            self.disk.fill()


def test_checkpoint_enospc_keeps_the_previous_one_and_the_retry_resumes_from_it(stack, disk):
    """The disk fills at the end of epoch 1: that epoch's checkpoint fails, its temp file
    is gone, epoch 0's checkpoint is intact; the attempt fails with the reason and is
    requeued. Once space is freed the retry resumes from epoch 1's start and ends with
    the weights of a fault-free run."""
    from lamina_worker import checkpoint

    kit = stack(max_attempts=3)
    x, y = blobs()
    job_id, spec = kit.submit(x, y, epochs=4)
    worker = kit.worker(lambda job: [FillDisk(disk, 1)] if job.attempt == 1 else [])
    folder = kit.storage.checkpoint_dir(job_id)

    assert kit.attempt(worker) == "retry"
    record = kit.producer.get(TENANT, job_id)
    assert record.status.value == "queued" and record.attempts == 1
    assert "No space left on device" in record.error, record.error
    assert "ckpt-000002-00000000.h5" in record.error  # the target, not a temp name
    assert temps(kit.storage.root) == []
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["ckpt-000000-00000000.h5", "ckpt-000000-00000000.h5.sha256",
                     "ckpt-000001-00000000.h5", "ckpt-000001-00000000.h5.sha256"], names
    state, path = checkpoint.latest(folder)
    assert (state.epoch, state.step, path.name) == (1, 0, "ckpt-000001-00000000.h5")

    disk.free()
    assert kit.attempt(worker) == "succeeded"
    record = kit.producer.get(TENANT, job_id)
    assert record.status.value == "succeeded" and record.attempts == 2
    resumed = [d["resumed_from"] for kind, d in kit.events(job_id)
               if kind == "state" and "resumed_from" in d]
    assert resumed and resumed[-1]["epoch"] == 1, resumed
    assert temps(kit.storage.root) == []
    for got, want in zip(kit.final_weights(job_id), reference_weights(spec, x, y), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_final_model_enospc_fails_the_job_with_the_reason(stack, disk):
    """The disk is full when the final model is written, on every attempt: no
    model.keras and no temp file appear, the checkpoints stay intact, the retry
    resumes from the last one, and after max_attempts the job fails with the reason."""
    from lamina_worker import checkpoint

    kit = stack(max_attempts=2)
    x, y = blobs()
    job_id, _ = kit.submit(x, y, epochs=2)
    fills = {}

    def callbacks(job):
        fills[job.attempt] = FillDisk(disk, None)
        return [fills[job.attempt]]

    worker = kit.worker(callbacks)
    folder = kit.storage.checkpoint_dir(job_id)
    for attempt, outcome, status in ((1, "retry", "queued"), (2, "failed", "failed")):
        assert kit.attempt(worker) == outcome
        record = kit.producer.get(TENANT, job_id)
        assert (record.status.value, record.attempts) == (status, attempt)
        assert record.error.startswith("OSError: [Errno 28] No space left on device"), \
            record.error
        assert "model.keras" in record.error
        assert not (kit.storage.job_dir(job_id) / "model.keras").exists()
        assert temps(kit.storage.root) == []
        state, path = checkpoint.latest(folder)
        assert (state.epoch, state.step) == (2, 0), path
        disk.free()  # the next attempt fills it again at its train end
    # The retry trained nothing: it resumed from the final epoch's checkpoint.
    assert {a: f.resumed for a, f in fills.items()} == {1: None, 2: (2, 0)}


def test_checkpoint_whose_checksum_fails_is_removed_with_it(tmp_path, monkeypatch):
    """EIO while committing a checkpoint's sha256 sidecar (injected at ``os.fsync`` for
    that sidecar's temp file only, see the module docstring): the new checkpoint file,
    already renamed into place, is removed with it, nothing is pruned, and the newest
    intact checkpoint is still the one a resume uses."""
    from lamina_worker import checkpoint

    def state(epoch):
        return checkpoint.State(epoch=epoch, step=0, weights=[np.full(3, epoch, np.float32)],
                                optimizer=[np.zeros(2)], rng_state={"seed": 1})

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for epoch in (0, 1):
        checkpoint.write(folder, state(epoch))
    real_fsync = os.fsync

    def fsync(fd):
        if ".sha256-" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError) as info:
        checkpoint.write(folder, state(2))
    monkeypatch.undo()
    assert str(info.value) == "[Errno 5] Input/output error: 'ckpt-000002-00000000.h5.sha256'"
    assert sorted(p.name for p in folder.iterdir()) == [
        "ckpt-000000-00000000.h5", "ckpt-000000-00000000.h5.sha256",
        "ckpt-000001-00000000.h5", "ckpt-000001-00000000.h5.sha256"]
    restored, path = checkpoint.latest(folder)
    assert path.name == "ckpt-000001-00000000.h5" and restored.weights[0][0] == 1


# -- uploads over real HTTP --------------------------------------------------------------

def live_api(settings):
    """The real app (its ``create_app`` sweeps temps) for ``LiveServer`` to serve."""
    from lamina_service.api import create_app
    from tests.service.conftest import LiveServer

    return LiveServer(create_app(settings))


AUTH = {"Authorization": "Bearer key-a"}


def api_settings(redis_url: str, root: Path):
    from lamina_service.config import Settings

    return Settings(redis_url=redis_url, storage_root=str(root), api_keys={"key-a": "alice"})


def npz_payload(n=2000, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    np.savez(buffer, x=rng.normal(size=(n, 16)).astype(np.float32),
             y=rng.integers(0, 2, (n, 1)).astype(np.float32))
    return buffer.getvalue()


def test_upload_to_a_full_disk_is_507_and_succeeds_once_space_is_freed(redis_url, disk):
    """A 136 kB upload into a full storage: 507 with a JSON error naming the reason,
    no dataset registered, no temp file; the same bytes upload fine after freeing."""
    root = disk.path / "storage"
    payload = npz_payload()
    dataset_id = "d_" + hashlib.sha256(payload).hexdigest()
    with live_api(api_settings(redis_url, root)) as api, httpx.Client(
            base_url=api.url, headers=AUTH, timeout=60) as http:
        disk.fill()
        reply = http.post("/v1/datasets", content=payload)
        assert reply.status_code == 507, reply.text
        error = reply.json()["error"]
        assert error["code"] == "insufficient_storage"
        assert "No space left on device" in error["message"] and error["field"] == "storage"
        assert str(root) not in error["message"]  # no server paths in answers
        assert http.get(f"/v1/datasets/{dataset_id}").status_code == 404
        assert temps(root) == [] and list((root / "datasets").iterdir()) == []

        disk.free()
        reply = http.post("/v1/datasets", content=payload)
        assert reply.status_code == 201, reply.text
        assert reply.json()["id"] == dataset_id
        assert http.get(f"/v1/datasets/{dataset_id}").json()["samples"] == 2000
        assert temps(root) == []


def test_upload_on_failing_disk_is_503_and_keeps_nothing(redis_url, tmp_path, monkeypatch):
    """EIO from fsync (injected at the OS boundary for files under this storage root
    only, see the module docstring): 503 JSON, nothing registered or left behind."""
    root = (tmp_path / "storage").resolve()
    real_fsync = os.fsync
    failed = []

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(root) + os.sep):
            failed.append(fd)
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_fsync(fd)

    payload = npz_payload(n=50)
    dataset_id = "d_" + hashlib.sha256(payload).hexdigest()
    with live_api(api_settings(redis_url, root)) as api, httpx.Client(
            base_url=api.url, headers=AUTH, timeout=60) as http:
        monkeypatch.setattr(os, "fsync", fsync)
        reply = http.post("/v1/datasets", content=payload)
        monkeypatch.undo()
        assert failed, "the injected fsync was not reached"
        assert reply.status_code == 503, reply.text
        error = reply.json()["error"]
        assert error["code"] == "unavailable" and "Input/output error" in error["message"]
        assert http.get(f"/v1/datasets/{dataset_id}").status_code == 404
        assert temps(root) == [] and list((root / "datasets").iterdir()) == []
        assert http.post("/v1/datasets", content=payload).status_code == 201


def test_atomic_write_on_dev_full_leaves_the_old_file_and_no_temp(tmp_path):
    """A real ENOSPC without any mount: the writer's file is /dev/full (a symlink at the
    temp name). The target keeps its old bytes, the temp name is gone, and the error
    names the target with the plain reason."""
    from lamina_service.diskio import atomic_path, atomic_write_bytes

    target = tmp_path / "model.keras"
    atomic_write_bytes(target, b"old")
    with pytest.raises(OSError) as info, atomic_path(target, suffix=".keras") as tmp:
        tmp.symlink_to("/dev/full")
        with open(tmp, "wb") as out:
            out.write(b"new" * 1000)
    assert info.value.errno == errno.ENOSPC
    assert str(info.value) == "[Errno 28] No space left on device: 'model.keras'"
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


# -- the start-up sweep ------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys, time
    from contextlib import ExitStack
    from pathlib import Path
    from lamina_service.diskio import atomic_path
    with ExitStack() as stack:
        for name, suffix in (("datasets/upload", ""), ("jobs/{job}/checkpoints/ckpt.h5", ""),
                             ("jobs/{job}/model.keras", ".keras")):
            tmp = stack.enter_context(atomic_path(Path(sys.argv[1]) / name, suffix))
            tmp.write_bytes(b"partial")
        print("writing", flush=True)
        time.sleep(300)
""")


def start_writer(root: Path, job: str) -> subprocess.Popen:
    """A process inside three atomic writes (an upload, a checkpoint, a model)."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER.replace("{job}", job), str(root)],
                            env=dict(os.environ, PYTHONPATH=PYTHONPATH),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    return proc


def test_startup_sweep_removes_dead_writers_temps_and_keeps_live_ones(redis_url, ray_local,
                                                                     tmp_path, caplog):
    """SIGKILLed writers' temp files are removed at API and at worker start-up (and the
    count is logged); a live writer's, and finished files, are kept."""
    from lamina_service.diskio import HOST_TAG, sweep_temps

    root = tmp_path / "storage"
    job = "j_" + "ab" * 12
    live = start_writer(root, job)
    try:
        live_temps = temps(root)
        assert len(live_temps) == 3, live_temps
        dead = start_writer(root, job)
        dead.send_signal(signal.SIGKILL)
        dead.wait(30)
        dead_temps = sorted(set(temps(root)) - set(live_temps))
        assert len(dead_temps) == 3, dead_temps
        # A pid that is alive (ours) but started after the file was written: reused.
        reused = root / "datasets" / f".upload-{os.getpid()}-{HOST_TAG}.0123456789ab.tmp"
        reused.write_bytes(b"old")
        os.utime(reused, (time.time() - 86400, time.time() - 86400))
        other_host = root / "datasets" / f".upload-1-{'f' * 8}.0123456789ab.tmp"
        other_host.write_bytes(b"young, writer unknown")
        finished = root / "datasets" / "d_done.npz"
        finished.write_bytes(b"kept")

        with caplog.at_level(logging.INFO, logger="lamina_service.storage"):
            api = live_api(api_settings(redis_url, root))  # create_app sweeps
        assert "swept 4 leftover temp file(s)" in caplog.text, caplog.text
        assert sorted(temps(root)) == sorted([*live_temps, str(other_host.relative_to(root))])
        assert finished.read_bytes() == b"kept"
        del api

        dead = start_writer(root, job)
        dead.send_signal(signal.SIGKILL)
        dead.wait(30)
        assert len(temps(root)) == 7
        worker = subprocess.run(
            [sys.executable, "-m", "lamina_worker", "--burst", "--block-ms", "100",
             "--ray-address", ray_local.get_runtime_context().gcs_address],
            env=dict(os.environ, PYTHONPATH=PYTHONPATH, LAMINA_REDIS_URL=redis_url,
                     LAMINA_STORAGE=str(root)),
            capture_output=True, text=True, timeout=120, cwd=str(ROOT))
        assert worker.returncode == 0, worker.stderr[-3000:]
        assert "swept 3 leftover temp file(s)" in worker.stderr, worker.stderr[-3000:]
        assert sorted(temps(root)) == sorted([*live_temps, str(other_host.relative_to(root))])
        # Old enough, an unknown writer's file goes too.
        os.utime(other_host, (time.time() - 7200, time.time() - 7200))
        assert sweep_temps(root, max_age=3600) == 1
        assert sorted(temps(root)) == sorted(live_temps)
    finally:
        live.kill()
        live.wait(30)
