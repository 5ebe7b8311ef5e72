"""Storage: id checks before any path, atomic writes, dataset loading."""

from __future__ import annotations

import anyio
import numpy as np
import pytest

from lamina_service.errors import NotFound, PayloadTooLarge
from lamina_service.storage import Storage, atomic_path, atomic_write_bytes
from tests.service.conftest import npz_bytes


@pytest.fixture
def storage(tmp_path):
    return Storage(tmp_path / "root", max_upload_bytes=2**20, max_array_bytes=2**20)


def ingest(storage, data: bytes, chunk: int = 1000):
    async def chunks():
        for start in range(0, len(data), chunk):
            yield data[start:start + chunk]

    return anyio.run(storage.ingest_dataset, chunks())


def test_ingest_and_load_roundtrip(storage):
    info = ingest(storage, npz_bytes())
    arrays = storage.load_dataset(info.id)
    assert arrays["x"].shape == (16, 3) and arrays["x"].dtype == np.float32
    assert ingest(storage, npz_bytes()).id == info.id
    assert [p.name for p in storage.datasets.iterdir()] and not list(
        storage.datasets.glob("*.tmp"))


def test_ingest_over_cap_leaves_no_file(storage):
    with pytest.raises(PayloadTooLarge):
        ingest(storage, b"PK\x03\x04" + b"\0" * 2**20, chunk=65536)
    assert list(storage.datasets.iterdir()) == []


@pytest.mark.parametrize("bad", ["../x", "d_" + "0" * 63 + "/", "j_../..", "", "D_" + "0" * 64])
def test_malformed_ids_never_reach_the_filesystem(storage, bad):
    for call in (storage.dataset_path, storage.job_dir, storage.final_model,
                 storage.open_final_model, storage.list_checkpoints):
        with pytest.raises(NotFound):
            call(bad)
    with pytest.raises(NotFound):
        storage.open_checkpoint("j_" + "0" * 24, bad or "..")


def test_atomic_write_replaces_and_cleans_up(tmp_path):
    target = tmp_path / "a" / "file.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("writer crashed")
    assert target.read_bytes() == b"two" and sorted(p.name for p in target.parent.iterdir()) \
        == ["file.bin"]


def test_worker_paths(storage):
    job_id = "j_" + "ab" * 12
    assert storage.checkpoint_dir(job_id).is_dir()
    assert storage.model_path(job_id).parent.is_dir()
    assert storage.model_path(job_id).is_relative_to(storage.root)


def test_a_weights_upload_is_one_float32_row(storage):
    from lamina_service.errors import InvalidInput

    vector = np.arange(10, dtype=np.float32)[None, :]
    info = ingest(storage, npz_bytes(weights=vector))
    assert info.samples == 1
    np.testing.assert_array_equal(storage.load_dataset(info.id)["weights"], vector)
    for bad in ({"weights": vector.astype(np.float64)}, {"weights": vector[0]},
                {"weights": np.zeros((2, 3), np.float32)},
                {"weights": vector, "x": vector}):
        with pytest.raises(InvalidInput, match="weights"):
            ingest(storage, npz_bytes(**bad))


def test_a_checkpoint_pruned_while_listing_is_left_out(storage, monkeypatch):
    """The worker prunes old checkpoints while the API lists them (CI once failed on it):
    a file gone between the directory read and its stat is not an error."""
    import os

    job_id = "j_" + "cd" * 12
    folder = storage.checkpoint_dir(job_id)
    for name in ("ckpt-000000-00000000.h5", "ckpt-000000-00000000.h5.sha256",
                 "ckpt-000001-00000000.h5"):
        (folder / name).write_bytes(b"x" * 8)
    read_directory = os.scandir

    def scandir_then_prune(path):
        entries = list(read_directory(path))
        for name in ("ckpt-000000-00000000.h5", "ckpt-000000-00000000.h5.sha256"):
            (folder / name).unlink()
        return iter(entries)

    monkeypatch.setattr(os, "scandir", scandir_then_prune)
    assert [c["name"] for c in storage.list_checkpoints(job_id)] == ["ckpt-000001-00000000.h5"]
    monkeypatch.setattr(os, "scandir", read_directory)
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()
    assert storage.list_checkpoints(job_id) == []


def test_a_checkpoint_being_served_survives_its_pruning(storage):
    """The API streams from an open file: the worker pruning the checkpoint mid-download
    does not cut the download short."""
    job_id = "j_" + "ef" * 12
    folder = storage.checkpoint_dir(job_id)
    (folder / "ckpt-000001-00000000.h5").write_bytes(b"w" * 3000)
    with storage.open_checkpoint(job_id, "ckpt-000001-00000000.h5") as handle:
        first = handle.read(1000)
        (folder / "ckpt-000001-00000000.h5").unlink()
        assert first + handle.read() == b"w" * 3000
    with pytest.raises(NotFound, match="ckpt-000001-00000000.h5"):
        storage.open_checkpoint(job_id, "ckpt-000001-00000000.h5")


def test_artifacts_behind_symlinks_or_folders_are_not_served(storage, tmp_path):
    job_id = "j_" + "12" * 12
    secret = tmp_path / "secret"
    secret.write_bytes(b"not yours")
    folder = storage.checkpoint_dir(job_id)
    (folder / "link.h5").symlink_to(secret)
    (folder / "sub.h5").mkdir()
    storage.model_path(job_id).symlink_to(secret)
    for name in ("link.h5", "sub.h5"):
        with pytest.raises(NotFound, match=name):
            storage.open_checkpoint(job_id, name)
    with pytest.raises(NotFound, match="no final model"):
        storage.open_final_model(job_id)
    storage.model_path(job_id).unlink()
    storage.model_path(job_id).write_bytes(b"PK")
    with storage.open_final_model(job_id) as handle:
        assert handle.read() == b"PK"
