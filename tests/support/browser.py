"""A real browser for tests: Debian's chromium driven through Debian's chromedriver (Selenium).

``chrome(artifacts)`` gives a headless :class:`Browser`; tests skip cleanly when chromium or
chromedriver is missing (``browser_missing``). Screenshots go to the artifacts directory:
``$HVCLOUD_TEST_ARTIFACTS`` when set, else the one the caller names (a test's basetemp/artifacts).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.wait import wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS_ENV = "HVCLOUD_TEST_ARTIFACTS"


def browser_missing() -> str | None:
    """Why no browser test can run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) or shutil.which(os.path.basename(path))):
            return f"{path} is not installed"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    return None


def artifacts_dir(default: Path) -> Path:
    path = Path(os.environ.get(ARTIFACTS_ENV) or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


class Browser:
    def __init__(self, driver: Any, artifacts: Path) -> None:
        self.driver = driver
        self.artifacts = artifacts

    def open(self, url: str) -> None:
        self.driver.get(url)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def wait_js(self, what: str, expression: str, timeout: float = 60) -> Any:
        """Wait until the JavaScript ``expression`` is truthy; returns its value."""
        return wait_for(what, lambda: self.js(f"return ({expression});"), timeout=timeout, interval=0.2)

    def screenshot(self, name: str) -> Path:
        path = self.artifacts / (re.sub(r"[^A-Za-z0-9._-]+", "_", name) + ".png")
        self.driver.save_screenshot(str(path))
        return path

    def console_log(self) -> list[dict[str, Any]]:
        try:
            return list(self.driver.get_log("browser"))
        except Exception:  # not every driver keeps the log
            return []


@contextmanager
def chrome(artifacts: Path, width: int = 1280, height: int = 800, accept_insecure_certs: bool = False,
           extra_args: tuple[str, ...] = ()) -> Iterator[Browser]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", *extra_args):
        options.add_argument(arg)
    options.accept_insecure_certs = accept_insecure_certs
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield Browser(driver, artifacts_dir(artifacts))
    finally:
        driver.quit()
