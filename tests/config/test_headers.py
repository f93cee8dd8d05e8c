"""Security headers and the landing page (security issue #14, low): a Content-Security-Policy
on every HTML page, nothing shown to a signed-in person kept in a cache, a landing page at
``/`` and no URL list on a 404 with DEBUG on."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from tests.approvals.helpers import pending_approvals
from tests.tools.fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: sources for name, *sources in (part.split() for part in header.split(";"))}


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root@example.test", "root@example.test", "pw")


@pytest.fixture
def approval(make_agent, org, synced_tools):
    return pending_approvals(make_agent(name="Mailer", allowed_tools=["email_send"]), org)[0]


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_every_html_page_has_a_policy_without_inline_scripts(client, root, adam, approval):
    pages = {
        client: ["/", "/accounts/login/", "/api/docs/", "/api/redoc/", "/no/such/page/"],
        _logged_in(root): ["/admin/", "/admin/dashboard/", "/admin/executions/execution/"],
        _logged_in(adam): ["/approvals/", f"/approvals/{approval.pk}/"],
    }
    for browser, paths in pages.items():
        for path in paths:
            response = browser.get(path)
            assert response["Content-Type"].startswith("text/html"), path
            policy = _policy(response)
            assert policy["script-src"] == ["'self'"], (path, policy)
            assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"], path
            assert policy["frame-ancestors"] == ["'none'"] and policy["form-action"] == ["'self'"], path
    # Redoc's search runs in a worker made from a blob: URL; nothing else gets that.
    assert _policy(client.get("/api/redoc/"))["worker-src"] == ["'self'", "blob:"]
    assert "worker-src" not in _policy(client.get("/api/docs/"))


def test_swagger_ui_starts_from_a_script_of_this_origin(client):
    page = client.get("/api/docs/").content.decode()
    assert "<script>" not in page  # nothing inline for the policy to refuse
    assert 'src="/api/docs/?script="' in page
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode()


def test_api_responses_are_not_html_policies(alice, client_for):
    response = client_for(alice).get("/api/v1/agents/")
    assert response.status_code == 200
    assert "Content-Security-Policy" not in response


def test_what_a_signed_in_person_sees_is_never_stored(client, root, adam, alice, approval, client_for):
    for path in ("/approvals/", f"/approvals/{approval.pk}/"):
        cache = _logged_in(adam).get(path)["Cache-Control"]
        assert "no-store" in cache and "private" in cache, (path, cache)
    assert "no-store" in _logged_in(root).get("/admin/dashboard/")["Cache-Control"]
    api = client_for(alice)
    for path in ("/api/v1/executions/", "/api/v1/agents/", f"/api/v1/approvals/{approval.pk}/"):
        response = api.get(path)
        assert response.status_code == 200 and "no-store" in response["Cache-Control"], path
    # Public pages may be cached.
    assert "Cache-Control" not in client.get("/")
    assert "Cache-Control" not in client.get("/api/v1/health/")


def test_the_landing_page_links_the_console_approvals_docs_and_health(client, settings):
    settings.DEBUG = True  # as DEBUG=true make run serves it
    response = client.get("/")
    page = response.content.decode()
    assert response.status_code == 200
    for link in ('href="/admin/"', 'href="/approvals/"', 'href="/api/docs/"', 'href="/api/v1/health/"'):
        assert link in page, link
    assert "Using the URLconf" not in page and "Page not found" not in page


@pytest.mark.parametrize("debug", [True, False])
def test_a_404_never_lists_url_patterns(client, adam, settings, debug):
    settings.DEBUG = debug
    unresolved = client.get("/no/such/page/")
    raised = _logged_in(adam).get(f"/approvals/{uuid.uuid4()}/")  # a view's own Http404
    for response in (unresolved, raised):
        page = response.content.decode()
        assert response.status_code == 404
        assert "Not found" in page and 'href="/"' in page
        for leak in ("URLconf", "admin/", "api/v1/", "Raised by", "approvals.pages"):
            assert leak not in page, (leak, page[:2000])
    assert "/no/such/page/" in unresolved.content.decode()
    # The API keeps its error shape.
    api = client.get("/api/v1/no-such-thing/")
    assert api.status_code == 404 and api.json()["error"]["code"] == "NotFound"
