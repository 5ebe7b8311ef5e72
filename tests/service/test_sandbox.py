"""Uploads parsed in a limited child process: hostile files get 422 with the reason within
the limits, and the API keeps serving."""

from __future__ import annotations

import struct
import time

import pytest

from lamina_service.config import Limits
from lamina_service.errors import InvalidInput
from lamina_service.sandbox import inspect_sandboxed
from tests.service.conftest import AUTH_A, npz_bytes


def many_members_zip(n: int) -> bytes:
    """An '.npz' whose central directory lists ``n`` members and holds no data: zipfile's
    parser loops over every entry and keeps an object per entry (CPU and memory grow
    with a file of ~57 bytes per entry)."""
    entries = []
    for i in range(n):
        name = b"x_%d.npy" % i
        entries.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0,
                                   len(name), 0, 0, 0, 0, 0, 0) + name)
    directory = b"".join(entries)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, len(directory), 4, 0)
    return b"PK\x03\x04" + directory + end


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return many_members_zip(400_000)


def test_valid_dataset_parses_the_same_in_the_sandbox(tmp_path):
    from lamina_service.storage import inspect_npz

    path = tmp_path / "d.npz"
    path.write_bytes(npz_bytes(n=8))
    assert inspect_sandboxed(path, "npz", Limits()) == inspect_npz(path, Limits().max_array_bytes)


def test_refusals_inside_the_sandbox_keep_their_message_and_field(tmp_path):
    import numpy as np

    path = tmp_path / "d.npz"
    path.write_bytes(npz_bytes(x=np.zeros((4, 2), np.float32), z=np.zeros(4, np.float32)))
    with pytest.raises(InvalidInput, match="array names must be") as info:
        inspect_sandboxed(path, "npz", Limits())
    assert info.value.field == "dataset.z"


@pytest.mark.slow
def test_parser_loop_is_stopped_by_the_cpu_limit(tmp_path, bomb):
    path = tmp_path / "bomb.npz"
    path.write_bytes(bomb)
    start = time.monotonic()
    with pytest.raises(InvalidInput, match="parse_cpu_seconds=1 of CPU time"):
        inspect_sandboxed(path, "npz", Limits(parse_cpu_seconds=1))
    assert time.monotonic() - start < 20


@pytest.mark.slow
def test_parser_allocation_is_stopped_by_the_memory_limit(tmp_path, bomb):
    path = tmp_path / "bomb.npz"
    path.write_bytes(bomb)
    with pytest.raises(InvalidInput, match="parse_memory_bytes=262144000 of memory"):
        inspect_sandboxed(path, "npz", Limits(parse_memory_bytes=250 * 2**20))


@pytest.mark.slow
def test_wall_clock_timeout(tmp_path, bomb):
    path = tmp_path / "bomb.npz"
    path.write_bytes(bomb)
    with pytest.raises(InvalidInput, match="longer than parse_timeout_seconds=0.2"):
        inspect_sandboxed(path, "npz", Limits(parse_timeout_seconds=0.2))


def test_hostile_upload_gets_422_and_the_api_keeps_serving(settings, bomb):
    import warnings

    from starlette.exceptions import StarletteDeprecationWarning

    from lamina_service.api import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from fastapi.testclient import TestClient
    limits = settings.limits.model_copy(update={"max_upload_bytes": 64 * 2**20,
                                                "parse_cpu_seconds": 1})
    app = create_app(settings.model_copy(update={"limits": limits}))
    with TestClient(app) as client:
        reply = client.post("/v1/datasets", content=bomb, headers=AUTH_A)
        assert reply.status_code == 422, reply.text
        error = reply.json()["error"]
        assert error["field"] == "dataset" and "parse_cpu_seconds=1" in error["message"]
        assert client.get("/healthz").status_code == 200
        assert client.post("/v1/datasets", content=npz_bytes(), headers=AUTH_A).status_code \
            == 201
    assert len(list(app.state.storage.datasets.glob("*.npz"))) == 1  # only the valid one
