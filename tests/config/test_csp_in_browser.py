"""The Content-Security-Policy in a real browser: the console, the approver pages and the
API docs (Swagger UI, Redoc) render under it with no violation, and an injected inline
script is refused. Debian's headless Chromium (tests/browser.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.approvals.helpers import pending_approvals
from tests.factories import MembershipFactory
from tests.processes import wait_for
from tests.tools.fixtures import *  # noqa: F403

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
PASSWORD = "pw-123456789"
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
# Recorded before any script of the page runs (DevTools injects it; the policy does not apply).
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + e.sourceFile));
"""


def _violations(browser, allow: tuple[str, ...] = (REDOC_LOGO,)) -> list[str]:
    """Violations the page reported to itself and those in the console, since the last call
    for the console (Chromium hands each entry out once), the page's own since it loaded."""
    recorded = browser.execute_script("return window.__csp || []")
    console = [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Content-Security-Policy" in entry["message"]
    ]
    return [v for v in [*recorded, *console] if not any(allowed in v for allowed in allow)]


def _text(browser, selector: str) -> str:
    from selenium.webdriver.common.by import By

    found = browser.find_elements(By.CSS_SELECTOR, selector)
    return " ".join(element.text for element in found)


def test_console_approvals_and_docs_render_under_the_policy(live_server, browser, org, make_agent, synced_tools):
    from selenium.webdriver.common.by import By

    root = MembershipFactory(organization=org, role="admin").user
    root.is_staff = root.is_superuser = True
    root.save()
    approval = pending_approvals(make_agent(name="Mailer", allowed_tools=["email_send"]), org)[0]
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})

    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.ID, "id_username").send_keys(root.username)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_for(lambda: browser.current_url.endswith("/admin/"), 10, message="the admin index")
    assert _violations(browser) == []

    # (path, a selector that only matches once the page has rendered, text it shows)
    pages = [
        ("/", "main h1", "Agentry"),
        ("/admin/", "#content h1", "Console"),
        ("/admin/dashboard/", "#content h1", "Operations dashboard"),
        ("/admin/agents/agent/", "#result_list", "Mailer"),
        ("/approvals/", "main h1", "Approvals"),
        (f"/approvals/{approval.pk}/", "#status", "pending"),
        ("/api/docs/", ".swagger-ui .info .title", "Agentry API"),
        ("/api/redoc/", "h1", "Agentry API"),
    ]
    ARTIFACTS.mkdir(exist_ok=True)
    for path, selector, text in pages:
        browser.get(f"{live_server.url}{path}")
        wait_for(lambda selector=selector, text=text: text in _text(browser, selector), 30, message=f"{path} rendered")
        browser.save_screenshot(str(ARTIFACTS / f"csp{path.replace('/', '-').rstrip('-') or '-home'}.png"))
        if path.startswith("/api/redoc/"):
            # Redoc searches in a web worker made from a blob: URL: results mean it ran.
            browser.set_window_size(1280, 900)  # the search box is in the side menu
            browser.find_element(By.CSS_SELECTOR, "input.search-input").send_keys("health")
            wait_for(
                lambda: "Health of the platform" in _text(browser, '[data-role="search:results"]'),
                30,
                message="Redoc search results",
            )
            # Redoc's side-menu logo comes from our static files (config/api/redoc_bundle.py):
            # nothing is refused and nothing is fetched from another site.
            assert _violations(browser, allow=()) == []
            logos = browser.execute_script("return [...document.images].map(i => i.src)")
            assert logos and all(src.startswith(live_server.url) for src in logos), logos
            assert not any(REDOC_LOGO in src for src in logos)
            browser.set_window_size(390, 844)
        assert _violations(browser) == [], path

    # The policy is in force: an inline script injected into a page does not run.
    browser.get(f"{live_server.url}/approvals/{approval.pk}/")
    ran = browser.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.__injected = 1';"
        " document.body.appendChild(s); return window.__injected === 1;"
    )
    assert ran is False
    assert any(v.startswith("script-src") for v in _violations(browser))
