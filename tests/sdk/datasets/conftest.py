"""Fixtures for the Keras dataset loaders: the small files of tests/fixtures/datasets
served by a local HTTP server, with the loaders' origins and hashes pointed at them."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "datasets"


def _load_helper():
    name = "lamina_test_local_http"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, FIXTURES / "local_http.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


@pytest.fixture
def remote(keras_home, monkeypatch):
    """Serve every fixture file under ``/keras/`` and ``/kriz/``; the hash table holds
    the small files' sha256 (or md5 where Keras checks md5)."""
    from lamina.datasets import _remote

    with _load_helper().serve() as server:
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
