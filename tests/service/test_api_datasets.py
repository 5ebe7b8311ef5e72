"""Dataset uploads: content addressing, validation of .npz and HDF5, size caps."""

from __future__ import annotations

import io
import os
import pickle

import h5py
import numpy as np
import pytest

from tests.service.conftest import AUTH_A, npz_bytes


def h5_bytes(tmp_path, build) -> bytes:
    path = tmp_path / f"upload-{len(os.listdir(tmp_path))}.h5"
    with h5py.File(path, "w") as handle:
        build(handle, tmp_path)
    return path.read_bytes()


def upload(client, data: bytes, **params):
    return client.post("/v1/datasets", content=data, headers=AUTH_A, params=params)


def storage_files(settings) -> set[str]:
    out = set()
    for folder, _, files in os.walk(settings.storage_root):
        out.update(os.path.join(folder, f) for f in files)
    return out


def test_npz_upload_is_content_addressed(client):
    first = upload(client, npz_bytes())
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["id"].startswith("d_") and len(body["id"]) == 66 and body["format"] == "npz"
    assert body["samples"] == 16 and body["arrays"]["x"] == {"shape": [16, 3],
                                                             "dtype": "float32"}
    assert upload(client, npz_bytes()).json()["id"] == body["id"]
    assert upload(client, npz_bytes(n=8)).json()["id"] != body["id"]
    assert client.get(f"/v1/datasets/{body['id']}", headers=AUTH_A).json() == body


def test_hdf5_and_multi_io_upload_and_load(client, app, tmp_path):
    def build(handle, _):
        handle["x_image"] = np.zeros((5, 2, 2), np.float32)
        handle["x_meta"] = np.arange(10, dtype=np.int64).reshape(5, 2)
        handle.create_dataset("y", data=np.ones(5, np.uint8), compression="gzip")

    reply = upload(client, h5_bytes(tmp_path, build), format="h5")
    assert reply.status_code == 201, reply.text
    loaded = app.state.storage.load_dataset(reply.json()["id"])
    assert sorted(loaded) == ["x_image", "x_meta", "y"] and loaded["x_meta"][4, 1] == 9


def _external_link(handle, tmp):
    with h5py.File(tmp / "other.h5", "w") as other:
        other["data"] = np.zeros(3)
    handle["x"] = h5py.ExternalLink(str(tmp / "other.h5"), "/data")
    handle["y"] = np.zeros(3)


def _external_storage(handle, tmp):
    (tmp / "raw.bin").write_bytes(b"\0" * 24)
    handle.create_dataset("x", shape=(3,), dtype="f8", external=[(str(tmp / "raw.bin"), 0, 24)])
    handle["y"] = np.zeros(3)


def _virtual(handle, tmp):
    with h5py.File(tmp / "src.h5", "w") as src:
        src["d"] = np.zeros(3)
    layout = h5py.VirtualLayout(shape=(3,), dtype="f8")
    layout[:] = h5py.VirtualSource(str(tmp / "src.h5"), "d", shape=(3,))
    handle.create_virtual_dataset("x", layout)
    handle["y"] = np.zeros(3)


def _strings(handle, _):
    handle["x"] = np.array([b"a", b"b"])
    handle["y"] = np.zeros(2)


def _soft_link(handle, _):
    handle["y"] = np.zeros(2)
    handle["x"] = h5py.SoftLink("/y")


def _huge_declared(handle, _):
    handle.create_dataset("x", shape=(10**7, 10**4), dtype="f8", chunks=(1, 10))
    handle["y"] = np.zeros(3, np.int8)


@pytest.mark.parametrize("build, field, words", [
    (_external_link, "dataset.x", "external links"),
    (_external_storage, "dataset.x", "external storage"),
    (_virtual, "dataset.x", "virtual"),
    (_strings, "dataset.x", "numeric dtype"),
    (_soft_link, "dataset.x", "soft links"),
    (_huge_declared, "dataset.x", "max_array_bytes"),
])
def test_bad_hdf5_is_refused(client, settings, tmp_path, build, field, words):
    before = storage_files(settings)
    reply = upload(client, h5_bytes(tmp_path, build))
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["field"] == field and words in error["message"]
    assert storage_files(settings) == before


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("data, field, words", [
    (_npz(x=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2)), "dataset.x",
     "numeric dtype"),
    (_npz(x=np.zeros((2, 2)), z=np.zeros(2)), "dataset.z", "array names"),
    (_npz(x=np.zeros((2, 2))), "dataset", "x and y"),
    (_npz(x=np.zeros((2, 2)), y=np.zeros(3)), "dataset", "same number of samples"),
    (_npz(x=np.array(["a", "b"]), y=np.zeros(2)), "dataset.x", "numeric dtype"),
    (pickle.dumps({"x": [1, 2]}), "body", "npz or HDF5"),
    (b"\x93NUMPY" + pickle.dumps(object), "body", "npz or HDF5"),
    (b"PK\x03\x04garbage", "dataset", "not a valid .npz"),
])
def test_bad_npz_is_refused(client, settings, data, field, words):
    before = storage_files(settings)
    reply = upload(client, data)
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["field"] == field and words in error["message"], error
    assert storage_files(settings) == before


def test_pickled_npy_saved_by_numpy_is_refused(client, tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.array([object()], dtype=object), allow_pickle=True)
    reply = upload(client, buf.getvalue(), format="npz")
    assert reply.status_code == 422 and reply.json()["error"]["field"] == "format"


def test_format_must_match_the_bytes(client):
    reply = upload(client, npz_bytes(), format="h5")
    assert reply.status_code == 422 and reply.json()["error"]["field"] == "format"


def test_upload_over_the_cap_is_413_and_leaves_nothing(client, settings):
    before = storage_files(settings)
    big = b"PK\x03\x04" + b"\0" * (settings.limits.max_upload_bytes + 10)
    reply = upload(client, big)
    assert reply.status_code == 413 and reply.json()["error"]["code"] == "payload_too_large"
    assert storage_files(settings) == before
    assert client.get("/healthz").status_code == 200
