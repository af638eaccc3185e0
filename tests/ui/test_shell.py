"""The UI's shell in a real browser: login errors, login and logout, an ended session."""

from __future__ import annotations

from tests.support.ui import Ui, UiCloud


def test_a_wrong_password_is_shown_plainly(ui: Ui) -> None:
    ui.login("admin", "not-the-password", expect_ok=False)
    ui.browser.wait_js("the login error", "!document.querySelector('.login .form-error').hidden")
    assert "Wrong username, password or domain." in ui.text()
    assert not ui.driver.find_elements("id", "logout")
    ui.screenshot("login-error")


def test_admin_logs_in_and_out(ui: Ui, cloud: UiCloud) -> None:
    ui.login("admin", cloud.admin_password)
    assert "admin · admin (admin)" in ui.text()
    ui.wait_text("Instances")
    ui.screenshot("dashboard")
    ui.logout()
    assert ui.driver.find_elements("id", "login-username")
    # logged out, any page shows the login page
    ui.go("dashboard", logged_in=False)


def test_an_ended_session_returns_to_the_login_page(ui: Ui, cloud: UiCloud) -> None:
    ui.login("admin", cloud.admin_password)
    # the server forgets the session (as at its timeout): the next call is refused and says why
    key = ui.browser.js("return JSON.parse(sessionStorage.getItem('hvcloud.session')).sessionkey;")
    ui.browser.js("return fetch('/client/api', {method: 'POST', body: new URLSearchParams({command: 'logout',"
                  " response: 'json', sessionkey: arguments[0]})}).then(r => r.status);", key)
    ui.go("dashboard", logged_in=False)
    ui.wait_text("Your session has ended; please log in again.")
    assert ui.driver.find_elements("id", "login-username")
