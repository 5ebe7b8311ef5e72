"""The dashboard tests reuse the service tests' fixtures: real Redis, settings, app, uvicorn;
and one headless Chromium a module, with a fresh tab for each test (``browser``)."""

import pytest

from tests.service.conftest import app, client, live_server, settings  # noqa: F401
from tests.web.browser import leave_page, new_tab, start_chromium


class _Chromium:
    """The module's Chromium: a fresh tab for each test (:func:`new_tab`), the state a
    new Chromium would have, without paying ~2 s (more on a loaded machine) for one;
    started again if a test left it broken."""

    def __init__(self, folder) -> None:
        self.folder = folder
        self.driver = None
        self.fresh = False

    def tab(self):
        if self.driver is not None and not self.fresh:
            try:
                new_tab(self.driver)
            except Exception:  # noqa: BLE001 - a crashed or wedged browser: start anew
                self.quit()
        if self.driver is None:
            self.driver = start_chromium(self.folder / "profile", self.folder / "downloads")
        self.fresh = False
        return self.driver

    def leave(self) -> None:
        self.fresh = leave_page(self.driver)

    def quit(self) -> None:
        driver, self.driver = self.driver, None
        if driver is not None:
            driver.quit()


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    browser = _Chromium(tmp_path_factory.mktemp("chromium"))
    yield browser
    browser.quit()


@pytest.fixture
def browser(chromium, request):
    """Headless Chromium on a fresh tab, set up after the test's API server
    (``live_server``), so that it closes its tab, and the page's event streams, before
    the server stops (uvicorn waits for open responses)."""
    if "live_server" in request.fixturenames:
        request.getfixturevalue("live_server")
    driver = chromium.tab()
    yield driver
    chromium.leave()
