"""The web UI in Debian's chromium against a real server process and a simulator agent (one cloud
per module). Screenshots of the pages go to ``<basetemp>/artifacts`` (``$HVCLOUD_TEST_ARTIFACTS``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.browser import Browser
from tests.support.ui import Ui, UiCloud, ui_cloud


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[UiCloud]:
    with ui_cloud(tmp_path_factory.mktemp("ui")) as made:
        yield made


@pytest.fixture(scope="module")
def ui(browser: Browser, cloud: UiCloud) -> Ui:
    return Ui(browser, cloud.base_url)


@pytest.fixture
def admin_ui(ui: Ui, cloud: UiCloud) -> Ui:
    """The UI logged in as the root admin."""
    ui.login("admin", cloud.admin_password)
    return ui
