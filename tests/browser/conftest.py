"""Browser fixtures: the server as a user runs it, and a real headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from tests.support import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

MISSING = None
if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    if os.environ.get("HEIRLINE_REQUIRE_BROWSER"):
        raise RuntimeError("Chromium and ChromeDriver are required: apt-get install chromium chromium-driver")
    MISSING = "Chromium is not installed (apt-get install chromium chromium-driver)"

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def pytest_collection_modifyitems(items):
    if MISSING:
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=MISSING))


@pytest.fixture
def server(cli_env, tmp_path):
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                               env=cli_env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError((tmp_path / "server.log").read_text())
        time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError("server did not start: " + (tmp_path / "server.log").read_text())
    yield base
    process.terminate()
    process.wait(timeout=20)
    log.close()


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,1000"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def fill(driver, element_id: str, text: str) -> None:
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def click(driver, element_id: str) -> None:
    driver.find_element(By.ID, element_id).click()


def wait_until(driver, condition, timeout: float = 15):
    """Wait for `condition(driver)` while the page may be replaced under us.

    A form post swaps the document: an element found on the old page goes stale (or, depending on
    the moment, Chrome answers that the node "does not belong to the document"), and the new one
    may not exist yet. Every such WebDriver error means "not yet"; a condition that never holds
    still fails the test when the wait times out.
    """
    return WebDriverWait(driver, timeout, ignored_exceptions=(WebDriverException,)).until(condition)


def wait_for_path(driver, path: str) -> None:
    wait_until(driver, lambda d: d.current_url.split("#")[0].split("?")[0].endswith(path))
