"""Driving hvcloud's web UI in a real browser (``tests.support.browser``): log in, go to a page,
click a button or link by its text, fill a dialog's fields by their labels, wait for toasts and
rows. Every helper waits for the UI (lists load, jobs run) with ``wait_for``, never a fixed sleep.

A cloud for UI tests: ``ui_cloud(base)`` is ``vm_stack.simulator_cloud`` (a server process and a
simulator agent, a zone with a template) plus the admin's password for the login page.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cs import CloudStack
from selenium.common.exceptions import StaleElementReferenceException

from tests.support.browser import Browser
from tests.support.image_server import ImageServer
from tests.support.vm_stack import Cloud, simulator_cloud
from tests.support.wait import wait_for


#: XPath literal for any text (handles quotes)
def _xpath_literal(text: str) -> str:
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    return "concat(" + ", \"'\", ".join(f"'{part}'" for part in text.split("'")) + ")"


#: the password of every tenant ``UiCloud.tenant`` makes
TENANT_PASSWORD = "pw-Tenant-1"


@dataclass
class Tenant:
    """A user account: its name (also the user's), and a signed API client as that user."""

    name: str
    cs: CloudStack


@dataclass
class UiCloud:
    cloud: Cloud
    images: ImageServer
    admin_password: str

    @property
    def base_url(self) -> str:
        return self.cloud.server.endpoint.rsplit("/client/api", 1)[0]

    def tenant(self, prefix: str = "t") -> Tenant:
        """A new user account (made by the admin through the API) whose user logs in as
        ``name`` with :data:`TENANT_PASSWORD`."""
        name = f"{prefix}{uuid.uuid4().hex[:8]}"
        account = self.cloud.cs.createAccount(username=name, password=TENANT_PASSWORD, firstname="T",
                                              lastname="Enant", email=f"{name}@example.org",
                                              accounttype=0)["account"]
        keys = self.cloud.cs.registerUserKeys(id=account["user"][0]["id"])["userkeys"]
        return Tenant(name, CloudStack(endpoint=self.cloud.server.endpoint, key=keys["apikey"],
                                       secret=keys["secretkey"], fetch_result=True, timeout=120,
                                       poll_interval=0.2))


@contextmanager
def ui_cloud(base: Path, hosts: int = 2, **build_args: Any) -> Iterator[UiCloud]:
    with simulator_cloud(base, hosts, **build_args) as (cloud, images):
        password = (cloud.server.data_dir / "admin-password").read_text().strip()
        yield UiCloud(cloud, images, password)


class Ui:
    """One browser on one server's UI."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url.rstrip("/")

    @property
    def driver(self) -> Any:
        return self.browser.driver

    # ------------------------------------------------------------ navigation

    def open(self) -> None:
        self.browser.open(self.base_url + "/")
        self.browser.wait_js("the UI to start", "document.querySelector('#login-username, #view') !== null")

    def login(self, username: str, password: str, domain: str = "", expect_ok: bool = True) -> None:
        self.open()
        if self.driver.find_elements("css selector", "#logout"):
            # the dashboard the stored session opened must have its answers first: a call of it that
            # reaches the server after the logout is refused (401) and would count as a refused call
            # of the test that logs in (seen once in a full run)
            # (or the login page, when the stored session turned out to be over)
            self.browser.wait_js("the old session's dashboard", "document.getElementById('login-username') !== null"
                                 " || (document.querySelector('.tiles') !== null && ![...document.querySelectorAll("
                                 "'.tiles strong')].some((e) => e.textContent === '…'))")
            if self.driver.find_elements("css selector", "#logout"):
                self.logout()
        self.browser.wait_js("the login page", "document.getElementById('login-username') !== null")
        for field, value in (("login-username", username), ("login-password", password), ("login-domain", domain)):
            element = self.driver.find_element("id", field)
            element.clear()
            element.send_keys(value)
        self.driver.find_element("css selector", "form.login button[type=submit]").click()
        if expect_ok:
            self.browser.wait_js("the dashboard after login", "document.getElementById('logout') !== null")
            self.settled()

    def logout(self) -> None:
        self.driver.find_element("id", "logout").click()
        self.browser.wait_js("the login page", "document.getElementById('login-username') !== null")

    def go(self, page: str, arg: str | None = None, *, logged_in: bool = True) -> None:
        """Show ``page`` (rendered afresh even when the browser is on it already); with
        ``logged_in=False`` expect the login page instead."""
        self.browser.js("const h = arguments[0]; if (location.hash === h) {"
                        " window.dispatchEvent(new HashChangeEvent('hashchange')); } else { location.hash = h; }",
                        f"#/{page}" + (f"/{arg}" if arg else ""))
        if not logged_in:
            self.browser.wait_js("the login page", "document.getElementById('login-username') !== null")
            return
        self.browser.wait_js(f"page {page}", "document.getElementById('view') !== null")
        self.settled()

    def settled(self, timeout: float = 30) -> None:
        """Wait until the page has no list or page still loading."""
        self.browser.wait_js("the page to load", "!document.querySelector('.view .loading, .list-status.loading')",
                             timeout=timeout)

    # ------------------------------------------------------------ reading

    def text(self) -> str:
        return str(self.browser.js("return document.body.innerText;"))

    def wait_text(self, text: str, timeout: float = 60) -> None:
        wait_for(f"{text!r} on the page", lambda: text in self.text(), timeout=timeout, interval=0.2)

    def rows(self) -> list[str]:
        """The visible list's rows, as text."""
        return [str(r) for r in self.browser.js(
            "return [...document.querySelectorAll('.view table.list tbody tr')].map(r => r.innerText);")]

    def row(self, contains: str, timeout: float = 60) -> Any:
        """The list row holding ``contains`` (waits for it)."""
        xpath = f"//main[@id='view']//table[contains(@class,'list')]//tr[contains(., {_xpath_literal(contains)})]"
        return wait_for(f"a row with {contains!r}", lambda: (self.driver.find_elements("xpath", xpath) or [None])[0],
                        timeout=timeout, interval=0.2)

    def toast(self, kind: str = "ok", timeout: float = 120) -> str:
        """The text of the newest toast of ``kind`` (ok, error), waiting for one."""
        found = wait_for(f"a {kind} toast", lambda: self.browser.js(
            "const t = [...document.querySelectorAll('#toasts .toast.' + arguments[0])];"
            "return t.length ? t[t.length - 1].innerText : null;", kind), timeout=timeout, interval=0.2)
        return str(found)

    def clear_toasts(self) -> None:
        self.browser.js("document.querySelectorAll('#toasts .toast').forEach(t => t.remove());")

    # ------------------------------------------------------------ acting

    def click(self, text: str, within: Any = None) -> None:
        """Click the button or link whose text is ``text`` (in ``within``, or the page/dialog on top)."""
        lit = _xpath_literal(text)
        xpath = f".//button[normalize-space(.)={lit}] | .//a[normalize-space(.)={lit}]"
        scope = within
        if scope is None:
            dialogs = self.driver.find_elements("css selector", "dialog[open]")
            scope = dialogs[-1] if dialogs else self.driver.find_element("tag name", "body")
        element = wait_for(f"a button {text!r}", lambda: next(
            (e for e in scope.find_elements("xpath", xpath) if e.is_displayed() and e.is_enabled()), None),
            timeout=30, interval=0.2)
        element.click()

    def dialog(self) -> Any:
        return wait_for("a dialog", lambda: (self.driver.find_elements("css selector", "dialog[open]") or [None])[-1],
                        timeout=30, interval=0.2)

    def fill(self, label: str, value: str | bool) -> None:
        """Set the field labelled ``label`` in the open dialog (or form): text, select (by option
        text or value), checkbox (bool) or file (a path)."""
        scope = self.dialog() if self.driver.find_elements("css selector", "dialog[open]") else self.driver
        lit = _xpath_literal(label)
        labels = wait_for(f"the field {label!r}", lambda: scope.find_elements(
            "xpath", f".//label[normalize-space(text())={lit} or starts-with(normalize-space(.), {lit})]"),
            timeout=30, interval=0.2)
        control = self.driver.find_element("id", labels[0].get_attribute("for"))
        tag, kind = control.tag_name, control.get_attribute("type")
        if tag == "select":
            wait_for(f"the choices of {label!r}", lambda: self.browser.js(
                "return [...arguments[0].options].some(o => o.text === arguments[1] || o.value === arguments[1]);",
                control, value), timeout=30, interval=0.2)
            self.browser.js("const s = arguments[0]; const o = [...s.options].find(o => o.text === arguments[1] ||"
                            " o.value === arguments[1]); s.value = o.value; s.dispatchEvent(new Event('change',"
                            " {bubbles: true}));", control, value)
        elif kind == "checkbox":
            if control.is_selected() != bool(value):
                control.click()
        elif kind == "file":
            control.send_keys(str(value))
        else:
            control.clear()
            control.send_keys(str(value))

    def submit(self, label: str) -> None:
        """Press the dialog's ``label`` button and wait for the dialog to close (errors stay in it)."""
        dialog = self.dialog()
        self.click(label, within=dialog)

        def closed() -> bool:
            try:
                return not dialog.is_displayed()
            except StaleElementReferenceException:  # the UI removes a dialog once it closes
                return True
        wait_for("the dialog to close", lambda: closed() or self.dialog_error(dialog), timeout=180, interval=0.2)

    def dialog_error(self, dialog: Any = None) -> str | None:
        """The error shown in ``dialog`` (or the open one); None when there is none or no dialog."""
        try:
            if dialog is None:
                shown = self.driver.find_elements("css selector", "dialog[open]")
                if not shown:
                    return None
                dialog = shown[-1]
            errors = [e.text for e in dialog.find_elements("css selector", ".form-error") if e.is_displayed()]
        except StaleElementReferenceException:  # the dialog closed meanwhile
            return None
        return errors[0] if errors else None

    def api_calls(self) -> list[dict[str, Any]]:
        """The UI's API calls since the page loaded: {command, ok, errorcode} (``api.js`` journal)."""
        return list(self.browser.js("return window.hvApiJournal || [];"))

    def refused_calls(self, allowed: tuple[int, ...] = ()) -> list[dict[str, Any]]:
        """Calls the API refused (errorcode other than ``allowed``): a UI that offers a user only what
        the API lets them do has none."""
        return [c for c in self.api_calls() if not c["ok"] and c["errorcode"] not in allowed]

    def screenshot(self, name: str) -> Path:
        return self.browser.screenshot(f"ui-{name}")
