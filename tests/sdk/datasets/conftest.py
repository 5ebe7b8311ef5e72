"""Fixtures for the Keras dataset loaders: the small files of tests/fixtures/datasets
served by a local HTTP server, with the loaders' origins and hashes pointed at them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.sdk.download_fixtures import keras_home, load_local_http  # noqa: F401 - fixture

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "datasets"


@pytest.fixture
def remote(keras_home, monkeypatch):  # noqa: F811 - the fixture imported above
    """Serve every fixture file under ``/keras/`` and ``/kriz/``; the hash table holds
    the small files' sha256 (or md5 where Keras checks md5)."""
    from lamina.datasets import _remote

    with load_local_http().serve() as server:
        for path in sorted((FIXTURES / "files").iterdir()):
            data = path.read_bytes()
            server.files[f"/keras/{path.name}"] = data
            server.files[f"/kriz/{path.name}"] = data
            if path.name in _remote.FILE_HASHES:
                algo = hashlib.md5 if len(_remote.FILE_HASHES[path.name]) == 32 else \
                    hashlib.sha256
                monkeypatch.setitem(_remote.FILE_HASHES, path.name,
                                    algo(data).hexdigest())
        monkeypatch.setattr(_remote, "ORIGIN_FOLDER", server.url("/keras/"))
        monkeypatch.setattr(_remote, "CIFAR_ORIGIN_FOLDER", server.url("/kriz/"))
        yield server
