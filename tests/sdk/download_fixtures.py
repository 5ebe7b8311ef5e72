"""Fixtures of the download tests, shared by the packages' conftests: a local HTTP server
(the test machines have no internet) and a private Keras cache (``KERAS_HOME``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_HELPER = Path(__file__).resolve().parents[1] / "fixtures" / "datasets" / "local_http.py"


def load_local_http():
    """tests/fixtures/datasets/local_http.py, loaded once (it is not on the import path)."""
    name = "lamina_test_local_http"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _HELPER)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def http_server():
    with load_local_http().serve() as server:
        yield server


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home
