"""Tools REST API: the registry, organizations' HTTP tools, the call log, capability grants,
module endpoints and notifications — each role, and another organization's ids."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import assert_error
from tools.models import Notification, Tool, ToolCall

pytestmark = pytest.mark.django_db

HOOK = {
    "name": "order_status",
    "description": "Look up an order",
    "parameters_schema": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
    "url": "https://shop.example.com/orders/{order_id}",
    "method": "GET",
    "headers": {"X-Client": "agentry"},
    "secret_headers": {"Authorization": "Bearer shop-secret-7777"},
}


@pytest.fixture
def hook(adam, client_for, synced_tools, settings) -> dict:
    # shop.example.com cannot be resolved here: allow it by name, as an operator would.
    settings.AGENTRY_SSRF_ALLOW = ["shop.example.com"]
    response = client_for(adam).post("/api/v1/tools/", HOOK, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_everyone_sees_the_system_tools(vic, client_for, synced_tools):
    client = client_for(vic)
    body = client.get("/api/v1/tools/", {"limit": 100}).json()
    names = {t["name"] for t in body["results"]}
    assert {"email_send", "web_scrape", "wait", "data_query"} <= names and body["total"] == len(names)
    dangerous = client.get("/api/v1/tools/", {"is_dangerous": "true"}).json()["results"]
    assert [t["name"] for t in dangerous] == ["crm_delete_contact"]
    crm = client.get("/api/v1/tools/", {"category": "crm", "handler_type": "module"}).json()["results"]
    assert {t["name"] for t in crm} >= {"crm_get_contact", "crm_search_contacts"}
    detail = client.get("/api/v1/tools/email_send/").json()
    assert detail["parameters_schema"]["required"] == ["to", "subject", "body"]
    assert {"subject", "body", "template_id", "variables"} <= set(detail["parameters_schema"]["properties"])
    assert detail["requires_permissions"] == ["send_emails"] and detail["is_system"] is True
    assert_error(client.get("/api/v1/tools/nope/"), 404, "NotFound")


def test_admins_register_http_tools_with_secrets_kept(hook, adam, client_for):
    assert hook["handler_type"] == "http" and hook["is_system"] is False
    assert hook["secret_headers"] == {"Authorization": "…7777"}
    assert hook["requires_permissions"] == ["access_external_apis"]
    assert "shop-secret" not in json.dumps(hook)
    tool = Tool.objects.get(name="order_status")
    assert json.loads(tool.secret_headers) == {"Authorization": "Bearer shop-secret-7777"}
    client = client_for(adam)
    changed = client.patch(
        "/api/v1/tools/order_status/", {"description": "Order lookup", "is_dangerous": True}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["description"] == "Order lookup"
    assert changed.json()["secret_headers"] == {"Authorization": "…7777"}  # kept when not sent
    assert client.delete("/api/v1/tools/order_status/").status_code == 204
    assert not Tool.objects.filter(name="order_status").exists()


def test_members_and_viewers_cannot_change_tools(hook, mia, vic, client_for):
    for user in (mia, vic):
        client = client_for(user)
        assert_error(
            client.post("/api/v1/tools/", {**HOOK, "name": "other"}, format="json"), 403, "InsufficientPermissions"
        )
        assert_error(
            client.patch("/api/v1/tools/order_status/", {"description": "x"}, format="json"),
            403,
            "InsufficientPermissions",
        )
        assert_error(client.delete("/api/v1/tools/order_status/"), 403, "InsufficientPermissions")
        assert client.get("/api/v1/tools/order_status/").status_code == 200


def test_another_organization_never_sees_an_organizations_tool(hook, oscar, client_for):
    client = client_for(oscar)
    assert "order_status" not in {t["name"] for t in client.get("/api/v1/tools/", {"limit": 100}).json()["results"]}
    assert_error(client.get("/api/v1/tools/order_status/"), 404, "NotFound")
    assert_error(client.patch("/api/v1/tools/order_status/", {"description": "x"}, format="json"), 404, "NotFound")
    assert_error(client.delete("/api/v1/tools/order_status/"), 404, "NotFound")
    # The same name is theirs to use.
    created = client.post("/api/v1/tools/", {**HOOK, "secret_headers": {}}, format="json")
    assert created.status_code == 201


def test_built_in_tools_cannot_be_changed_or_shadowed(adam, client_for, synced_tools):
    client = client_for(adam)
    assert_error(
        client.patch("/api/v1/tools/email_send/", {"description": "x"}, format="json"), 403, "InsufficientPermissions"
    )
    assert_error(client.delete("/api/v1/tools/wait/"), 403, "InsufficientPermissions")
    assert_error(client.post("/api/v1/tools/", {**HOOK, "name": "email_send"}, format="json"), 409, "Conflict")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"parameters_schema": {"type": "string"}}, "parameters_schema"),
        ({"parameters_schema": {"type": "object", "properties": {"a": {"type": "nonsense"}}}}, "parameters_schema"),
        # Never fetched, never backtracking, never looping: refused at save.
        (
            {"parameters_schema": {"type": "object", "properties": {"a": {"$ref": "http://127.0.0.1:9/s"}}}},
            "parameters_schema",
        ),
        ({"returns_schema": {"$ref": "https://example.test/returns.json"}}, "returns_schema"),
        ({"parameters_schema": {"type": "object", "properties": {"a": {"pattern": "(a)\\1"}}}}, "parameters_schema"),
        ({"parameters_schema": {"type": "object", "allOf": [{"$ref": "#"}]}}, "parameters_schema"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "http://169.254.169.254/latest"}, "url"),
        ({"url": "http://10.0.0.8/internal"}, "url"),
        ({"headers": {"Host": "evil"}}, "headers"),
        ({"requires_permissions": ["launch_missiles"]}, "requires_permissions"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_http_tools_are_refused_clearly(adam, client_for, synced_tools, settings, change, field):
    settings.AGENTRY_SSRF_ALLOW = ["shop.example.com"]
    response = client_for(adam).post("/api/v1/tools/", {**HOOK, **change}, format="json")
    error = assert_error(response, 400, "InvalidInput")
    assert field in error["details"]["validation_errors"], error
    assert not Tool.objects.filter(organization__isnull=False).exists()


def test_a_duplicate_name_in_the_organization_is_a_conflict(hook, adam, client_for):
    assert_error(client_for(adam).post("/api/v1/tools/", HOOK, format="json"), 409, "Conflict")


def test_tool_list_queries_do_not_grow_with_the_page(vic, client_for, synced_tools):
    client = client_for(vic)
    client.get("/api/v1/tools/", {"limit": 1})
    with CaptureQueriesContext(connection) as small:
        client.get("/api/v1/tools/", {"limit": 2})
    with CaptureQueriesContext(connection) as large:
        client.get("/api/v1/tools/", {"limit": 20})
    assert len(small.captured_queries) == len(large.captured_queries)


# --- The call log ---------------------------------------------------------------------


def test_tool_calls_are_listed_and_scoped(tool_env, vic, oscar, client_for):
    tool_env.call("wait", {"seconds": 1})
    tool_env.call("email_send", {"to": ["a@example.test"], "subject": "s", "body": "b"})
    client = client_for(vic)
    body = client.get("/api/v1/tool-calls/").json()
    assert body["total"] == 2
    assert {(c["tool_name"], c["status"]) for c in body["results"]} == {("wait", "completed"), ("email_send", "denied")}
    denied = client.get("/api/v1/tool-calls/", {"status": "denied", "tool": "email_send"}).json()["results"]
    assert len(denied) == 1 and "send_emails" in denied[0]["error_message"]
    by_run = client.get("/api/v1/tool-calls/", {"execution": str(tool_env.execution.pk)}).json()
    assert by_run["total"] == 2
    call_id = body["results"][0]["id"]
    assert client.get(f"/api/v1/tool-calls/{call_id}/").status_code == 200
    other = client_for(oscar)
    assert other.get("/api/v1/tool-calls/").json()["total"] == 0
    assert_error(other.get(f"/api/v1/tool-calls/{call_id}/"), 404, "NotFound")
    assert_error(client.get("/api/v1/tool-calls/not-a-uuid/"), 404, "NotFound")


# --- Capability grants ----------------------------------------------------------------


def test_capabilities_are_granted_by_admins(tool_env, adam, mia, oscar, client_for):
    url = f"/api/v1/agents/{tool_env.agent.pk}/capabilities/"
    body = client_for(mia).get(url).json()
    assert body["capabilities"] == [] and {c["name"] for c in body["available"]} >= {"send_emails", "send_sms"}
    assert_error(
        client_for(mia).put(url, {"capabilities": ["send_emails"]}, format="json"), 403, "InsufficientPermissions"
    )
    granted = client_for(adam).put(url, {"capabilities": ["send_sms", "send_emails"]}, format="json")
    assert granted.status_code == 200 and granted.json()["capabilities"] == ["send_emails", "send_sms"]
    bad = client_for(adam).put(url, {"capabilities": ["fly"]}, format="json")
    assert_error(bad, 400, "InvalidInput")
    assert_error(client_for(oscar).get(url), 404, "AgentNotFound")
    assert_error(client_for(oscar).put(url, {"capabilities": []}, format="json"), 404, "AgentNotFound")
    from accounts.models import ActivityLog

    assert ActivityLog.objects.filter(action="agent.capabilities", organization=tool_env.org).exists()


# --- Module endpoints and notifications ---------------------------------------------------


def test_module_endpoints_are_admin_only_and_secrets_masked(adam, mia, oscar, client_for, settings):
    settings.AGENTRY_SSRF_ALLOW = ["crm.example.com"]
    client = client_for(adam)
    created = client.post(
        "/api/v1/module-endpoints/",
        {"module": "crm", "base_url": "https://crm.example.com/api", "secret": "Bearer crm-token-1234"},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["secret"] == "…1234" and "crm-token" not in json.dumps(body)
    endpoint_id = body["id"]
    assert_error(
        client.post(
            "/api/v1/module-endpoints/", {"module": "crm", "base_url": "https://crm.example.com/x"}, format="json"
        ),
        409,
        "Conflict",
    )
    assert_error(
        client.post("/api/v1/module-endpoints/", {"module": "sms", "base_url": "http://127.0.0.1:9/"}, format="json"),
        400,
        "InvalidInput",
    )
    patched = client.patch(f"/api/v1/module-endpoints/{endpoint_id}/", {"is_active": False}, format="json")
    assert patched.json()["is_active"] is False and patched.json()["secret"] == "…1234"
    assert_error(client_for(mia).get("/api/v1/module-endpoints/"), 403, "InsufficientPermissions")
    assert_error(client_for(oscar).get(f"/api/v1/module-endpoints/{endpoint_id}/"), 404, "NotFound")
    assert client.delete(f"/api/v1/module-endpoints/{endpoint_id}/").status_code == 204


def test_notifications_are_the_callers_own(org, alice, mia, client_for):
    mine = Notification.objects.create(organization=org, user=mia, message="for mia")
    Notification.objects.create(organization=org, user=alice, message="for alice")
    client = client_for(mia)
    body = client.get("/api/v1/notifications/").json()
    assert [n["message"] for n in body["results"]] == ["for mia"]
    read = client.post(f"/api/v1/notifications/{mine.pk}/read/")
    assert read.status_code == 200 and read.json()["read_at"]
    assert client.get("/api/v1/notifications/", {"unread": "true"}).json()["total"] == 0
    other = Notification.objects.get(user=alice)
    assert_error(client.post(f"/api/v1/notifications/{other.pk}/read/"), 404, "NotFound")


def test_tool_call_rows_never_hold_secrets_after_a_real_call(tool_env, http_fake, adam, client_for):
    from accounts.access import Actor
    from accounts.models import Membership
    from tools.services import http_tool_create

    http_fake.route("POST", "/echo", json={"ok": 1})
    actor = Actor(organization=tool_env.org, user=adam, membership=Membership.objects.get(user=adam))
    http_tool_create(
        actor=actor,
        data={**HOOK, "url": http_fake.url("/echo"), "method": "POST", "requires_permissions": []},
    )
    tool_env.refresh()
    tool_env.call("order_status", {"order_id": "1"})
    assert ToolCall.objects.get(tool_name="order_status").status == "completed"
    listing = client_for(adam).get("/api/v1/tool-calls/").content.decode()
    assert "shop-secret" not in listing
