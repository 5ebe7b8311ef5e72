"""Fixtures for the application tests: a local HTTP server (the test machines have no
internet) and a private Keras cache (``KERAS_HOME``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
_HELPER = FIXTURES / "datasets" / "local_http.py"


def _load_helper():
    name = "lamina_test_local_http"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _HELPER)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def http_server():
    with _load_helper().serve() as server:
        yield server


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home
