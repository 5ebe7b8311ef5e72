"""The dashboard tests reuse the service tests' fixtures: real Redis, settings, app, uvicorn;
and one headless Chromium a test (``browser``)."""

import pytest

from tests.service.conftest import app, client, live_server, settings  # noqa: F401
from tests.web.browser import start_chromium


@pytest.fixture
def browser(tmp_path):
    driver = start_chromium(tmp_path / "profile", tmp_path / "downloads")
    yield driver
    driver.quit()
