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


def test_the_keyboard_alone_logs_in_opens_a_page_and_a_dialog(ui: Ui, cloud: UiCloud) -> None:
    from selenium.webdriver.common.keys import Keys

    ui.open()
    if ui.driver.find_elements("id", "logout"):
        ui.logout()
    ui.browser.wait_js("the login page", "document.activeElement && document.activeElement.id === 'login-username'")
    active = ui.driver.switch_to.active_element
    active.send_keys("admin", Keys.TAB)
    ui.driver.switch_to.active_element.send_keys(cloud.admin_password, Keys.ENTER)
    ui.browser.wait_js("the dashboard", "document.getElementById('logout') !== null")
    # Tab from the page's start reaches the menu's links; Enter follows one
    ui.browser.js("document.activeElement && document.activeElement.blur(); document.body.focus();")
    for _ in range(40):
        ui.driver.switch_to.active_element.send_keys(Keys.TAB)
        if ui.browser.js("return document.activeElement.textContent.trim();") == "Zones":
            break
    else:
        raise AssertionError("Tab never reached the menu's Zones link")
    ui.driver.switch_to.active_element.send_keys(Keys.ENTER)
    ui.browser.wait_js("the zones page", "location.hash === '#/zones'")
    ui.settled()
    # a dialog opened from the keyboard takes the focus and Escape closes it
    button = ui.driver.find_element("xpath", "//main//button[normalize-space(.)='Add zone']")
    button.send_keys(Keys.ENTER)
    ui.browser.wait_js("the dialog", "document.querySelector('dialog[open]') !== null")
    assert ui.browser.js("return document.querySelector('dialog[open]').contains(document.activeElement);")
    ui.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    ui.browser.wait_js("the dialog to close", "document.querySelector('dialog[open]') === null")


def test_a_tablet_width_folds_the_menu_and_nothing_overflows(ui: Ui, cloud: UiCloud) -> None:
    ui.login("admin", cloud.admin_password)
    size = ui.driver.get_window_size()
    try:
        ui.driver.set_window_size(800, 1100)
        for page in ("instances", "hosts", "capacity", "publicips"):
            ui.go(page)
            # below 900 px the menu is a bar above the page, and no page is wider than the window
            assert ui.browser.js("return getComputedStyle(document.querySelector('.menu')).display;") == "flex"
            assert ui.browser.js("return document.documentElement.scrollWidth <= window.innerWidth + 1;"), page
        ui.screenshot("tablet")
    finally:
        ui.driver.set_window_size(size["width"], size["height"])
