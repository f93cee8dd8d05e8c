"""Helpers for the console's browser tests: log in through the admin's form, screenshots at
desktop and phone width, and the page-level checks (no horizontal overflow, no form fields)."""

from __future__ import annotations

from pathlib import Path

from tests.processes import wait_for

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PASSWORD = "pw-123456789"  # tests.factories.UserFactory
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def admin_login(browser, base_url: str, user) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{base_url}/admin/login/?next=/admin/")
    browser.find_element(By.ID, "id_username").send_keys(user.username)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # The URL changes when the next page starts loading: wait until the login form is gone
    # and the index is complete, or its elements go stale under the test.
    wait_for(
        lambda: (
            browser.current_url.endswith("/admin/")
            and not browser.find_elements(By.ID, "id_password")
            and browser.execute_script("return document.readyState") == "complete"
        ),
        10,
        message="the console's index",
    )


def overflow(browser) -> int:
    """How many CSS pixels the page is wider than the window (0: no horizontal scrolling)."""
    return int(
        browser.execute_script(
            "return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - document.documentElement.clientWidth"
        )
    )


def editable_fields(browser) -> list[str]:
    """Form controls a person could type into or submit on the page (the search box and the
    log-out button of the header aside)."""
    return browser.execute_script(
        """return [...document.querySelectorAll('#content input, #content textarea, #content select, #content button')]
          .filter(e => !['hidden'].includes(e.type) && !e.closest('.inline-form'))
          .map(e => e.outerHTML.slice(0, 120));"""
    )


def screenshots(browser, name: str) -> dict[str, int]:
    """Save ``name``-desktop.png and ``name``-phone.png; return the overflow at each width."""
    ARTIFACTS.mkdir(exist_ok=True)
    found = {}
    for label, (width, height) in WIDTHS.items():
        browser.set_window_size(width, height)
        browser.execute_script("return document.readyState")
        found[label] = overflow(browser)
        browser.save_screenshot(str(ARTIFACTS / f"console-{name}-{label}.png"))
    browser.set_window_size(*WIDTHS["desktop"])
    return found
