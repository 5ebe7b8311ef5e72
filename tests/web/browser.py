"""Headless Debian Chromium through chromedriver for the dashboard tests.

Chromium and chromedriver come from Debian (``apt-get install chromium chromium-driver``,
done by ``.ci/run``). Without them the browser tests are skipped locally, never in CI.
"""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,900", "--hide-scrollbars"]

#: Requests the page made for the whole job list, from the browser's own log.
LIST_REQUESTS = """return performance.getEntriesByType('resource')
  .filter(e => e.name.includes('/v1/dashboard/jobs?')).length"""

needs_chromium = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("CI"),
    reason="chromium + chromedriver not installed (apt-get install chromium chromium-driver)",
)


def start_chromium(profile_dir, download_dir):
    """A headless Chromium that keeps console messages and saves downloads to a folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM and CHROMEDRIVER):  # only reachable with CI set
        pytest.fail("CI is set but chromium/chromedriver are missing: .ci/run installs them "
                    "with apt-get (chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.lamina_downloads = str(download_dir)
    _set_up_tab(driver)
    return driver


def _set_up_tab(driver) -> None:
    # The viewport itself is 1400x900 (--window-size counts the window, not the page).
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1400, "height": 900, "deviceScaleFactor": 1,
                            "mobile": False})
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": driver.lamina_downloads})


def leave_page(driver) -> bool:
    """Close the tab for a fresh one (:func:`new_tab`), closing the page's event
    streams: an API server stops at once then (uvicorn waits for open responses; the
    tests' server for up to 10 s). Navigating away is not enough: Chromium keeps the
    left page, streams open, for going back. False if the browser is broken."""
    try:
        new_tab(driver)
    except Exception:  # noqa: BLE001 - a crashed or wedged browser: the test failed already
        return False
    return True


def new_tab(driver) -> None:
    """Replace the driver's tab with a fresh one, as a new Chromium would have it: no
    document, no sessionStorage, no scripts added for new documents, an empty HTTP
    cache and no cookies; console messages of the old tab dropped."""
    from selenium.common.exceptions import NoAlertPresentException

    try:  # a test that failed may leave a confirm() open, which blocks every command
        driver.switch_to.alert.dismiss()
    except NoAlertPresentException:
        pass
    old = driver.current_window_handle
    driver.switch_to.new_window("tab")
    fresh = driver.current_window_handle
    driver.switch_to.window(old)
    driver.close()
    driver.switch_to.window(fresh)
    assert driver.window_handles == [fresh], driver.window_handles
    driver.execute_cdp_cmd("Network.clearBrowserCache", {})
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    _set_up_tab(driver)
    driver.get_log("browser")


def wait_for(driver, condition, what, timeout=30, poll=0.05):
    """The first truthy value of ``condition(driver)``; fails naming ``what``."""
    from selenium.webdriver.support.wait import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=poll).until(
        lambda d: condition(d), message=f"page never showed {what}")


# docs/operations.md: "a new epoch is drawn within a second" (batch progress with it),
# from the event's write (its stream id is Redis's clock in ms) to the page's change
LIVE_SECONDS = 1.0

_WATCH = """const node = document.getElementById(arguments[0]);
window.laminaSeen = [];
new MutationObserver(() => window.laminaSeen.push([Date.now(), node.textContent]))
  .observe(node, {childList: true, characterData: true, subtree: true});"""
_SEEN = """const hit = window.laminaSeen.find(([, text]) => text.startsWith(arguments[0]));
return hit ? hit[0] : null;"""


def watch_text(driver, element_id: str) -> None:
    """Record in the page the time (``Date.now()``) of every change of the element's
    text, so that a latency is read where it happens, not through WebDriver's polls
    (each a round trip of chromedriver, the renderer and this process)."""
    driver.execute_script(_WATCH, element_id)


def live_lag(driver, prefix: str) -> float:
    """Seconds from the write of the job view's newest event (its stream id) to the
    watched element's first text starting with ``prefix`` (:func:`watch_text`)."""
    shown = driver.execute_script(_SEEN, prefix)
    assert shown is not None, f"the watched text never started with {prefix!r}"
    event_id = driver.execute_script("return Lamina.jobView.state.lastEventId")
    return (shown - int(event_id.split("-")[0])) / 1000


def console_errors(driver) -> list[dict]:
    """Console messages of level SEVERE since the last call (the log is drained)."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def open_with_key(driver, base_url: str, key: str | None, fragment: str) -> None:
    """Load the page with ``key`` already in this tab's sessionStorage (no 401 first)."""
    driver.get(base_url + "/web/app.css")  # same origin, makes no API call
    if key is None:
        driver.execute_script("sessionStorage.clear()")
    else:
        driver.execute_script("sessionStorage.setItem('lamina_key', arguments[0])", key)
    driver.get(base_url + "/" + fragment)


def painted_fraction(png_path) -> float:
    """Share of the screenshot's pixels that are not the page background (white)."""
    from PIL import Image

    image = Image.open(png_path).convert("L")
    pixels = image.getdata()
    return sum(1 for p in pixels if p < 245) / len(pixels)
