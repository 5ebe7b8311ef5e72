"""The vendored charting library: pinned bytes, licence shipped, declared as package data."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import tomllib

WEB = Path(__file__).resolve().parents[2] / "services" / "lamina_service" / "web"
PINNED = {  # sha256 of the files as they are in npm's uplot-1.6.32.tgz
    "vendor/uplot/uPlot.iife.min.js":
        "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
    "vendor/uplot/uPlot.min.css":
        "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
    "vendor/uplot/LICENSE":
        "8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd",
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_vendored_file_is_the_pinned_release(name):
    assert hashlib.sha256((WEB / name).read_bytes()).hexdigest() == PINNED[name]


def test_licence_and_version_note():
    assert "MIT License" in (WEB / "vendor/uplot/LICENSE").read_text()
    note = (WEB / "vendor/uplot/VERSION.md").read_text()
    assert "uplot@1.6.32" in note
    banner = (WEB / "vendor/uplot/uPlot.iife.min.js").read_text().splitlines()[0]
    assert "(v1.6.32)" in banner


def test_every_web_file_is_package_data():
    """Each file under web/ matches a package-data pattern, so the wheel ships it."""
    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["lamina_service"]
    package = root / "services" / "lamina_service"
    files = [p for p in WEB.rglob("*") if p.is_file()]
    assert files
    for path in files:
        relative = path.relative_to(package)
        assert any(relative.match(pattern) for pattern in patterns), relative
