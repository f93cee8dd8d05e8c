"""The admin for tools and approvals: scoped to the organizations one manages, secrets masked."""

from __future__ import annotations

import json

import pytest

from tests.factories import UserFactory
from tools.models import ModuleEndpoint, Tool

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_adam(adam):
    adam.is_staff = True
    adam.save(update_fields=["is_staff"])
    return adam


@pytest.fixture
def own_tool(org) -> Tool:
    return Tool.objects.create(
        organization=org, name="order_status", display_name="Order status", description="d", category="custom",
        handler_type="http", handler_config={"url": "https://shop.example.com/o"},
        secret_headers=json.dumps({"Authorization": "Bearer shop-secret-7777"}),
    )  # fmt: skip


def test_an_organization_admin_sees_its_own_tools_not_the_platforms(
    client, staff_adam, own_tool, other_org, synced_tools
):
    theirs = Tool.objects.create(
        organization=other_org, name="theirs", display_name="T", description="d", category="c", handler_type="http"
    )
    client.force_login(staff_adam)
    listing = client.get("/admin/tools/tool/").content.decode()
    assert "order_status" in listing and "theirs" not in listing and "email_send" not in listing
    assert client.get(f"/admin/tools/tool/{theirs.pk}/change/").status_code in (302, 404)
    page = client.get(f"/admin/tools/tool/{own_tool.pk}/change/").content.decode()
    assert "shop-secret" not in page and "…7777" in page


def test_superusers_see_system_tools_and_secrets_stay_masked(client, org, own_tool, synced_tools):
    root = UserFactory(username="root@platform.test", is_staff=True, is_superuser=True)
    client.force_login(root)
    assert "email_send" in client.get("/admin/tools/tool/", {"q": "email"}).content.decode()
    endpoint = ModuleEndpoint.objects.create(
        organization=org, module="crm", base_url="https://crm.example.com", secret="Bearer crm-token-1234"
    )
    page = client.get(f"/admin/tools/moduleendpoint/{endpoint.pk}/change/").content.decode()
    assert "crm-token" not in page and "…1234" in page
    # Saving the form without a new secret keeps the old one.
    response = client.post(
        f"/admin/tools/moduleendpoint/{endpoint.pk}/change/",
        {"organization": str(org.pk), "module": "crm", "base_url": "https://crm2.example.com", "auth_header": "Authorization",
         "config": "{}", "is_active": "on", "new_secret": ""},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint.refresh_from_db()
    assert endpoint.base_url == "https://crm2.example.com" and endpoint.secret == "Bearer crm-token-1234"


def test_approval_requests_are_read_only_in_the_admin(client, staff_adam, make_agent, org, synced_tools):
    from tests.approvals.helpers import pending_approvals

    approval = pending_approvals(make_agent(name="Mailer"), org)[0]
    client.force_login(staff_adam)
    assert str(approval.action_type) in client.get("/admin/approvals/approvalrequest/").content.decode()
    page = client.get(f"/admin/approvals/approvalrequest/{approval.pk}/change/").content.decode()
    assert 'name="_save"' not in page  # no way to resolve here without resuming or cancelling the run


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("parameters_schema", json.dumps({"type": "object", "properties": {"q": {"$ref": "http://127.0.0.1:9/s"}}}),
         "outside this schema"),
        ("returns_schema", json.dumps({"type": "object", "patternProperties": {"(?=x)": {}}}), "RE2"),
        ("parameters_schema", json.dumps({"type": "object", "description": "x\u0000"}), "NUL"),
        # An organization admin's HTTP tool form takes the API's url/method/headers (H4).
        ("headers", "[" * 1000 + "]" * 1000, "deeper than 64"),
    ],
)  # fmt: skip
def test_the_tool_form_refuses_what_the_api_refuses(client, staff_adam, own_tool, org, field, value, message):
    client.force_login(staff_adam)
    form = {
        "organization": str(org.pk), "name": "order_status", "display_name": "Order status", "description": "d",
        "category": "custom", "parameters_schema": json.dumps({"type": "object"}), "returns_schema": "null",
        "handler_type": "http", "handler_config": json.dumps({"url": "https://shop.example.com/o"}),
        "requires_permissions": "[]", "requires_modules": "[]", "timeout_seconds": "30", "is_active": "on",
        "url": "https://shop.example.com/o", "method": "POST", "headers": "{}", "new_secret_headers": "", field: value,
    }  # fmt: skip
    response = client.post(f"/admin/tools/tool/{own_tool.pk}/change/", form)
    assert response.status_code == 200 and message in response.content.decode(), response.content.decode()[:3000]
    own_tool.refresh_from_db()
    assert own_tool.parameters_schema == {} and own_tool.handler_config == {"url": "https://shop.example.com/o"}


def test_an_http_tool_added_in_the_admin_is_untrusted_unless_unticked(client, staff_adam, org):
    client.force_login(staff_adam)
    add = client.get("/admin/tools/tool/add/")
    assert add.context["adminform"].form.initial["untrusted_output"] is True
    form = {
        "organization": str(org.pk), "description": "d", "category": "custom", "display_name": "Lookup",
        "parameters_schema": json.dumps({"type": "object"}), "returns_schema": "null", "requires_permissions": "",
        "timeout_seconds": "30", "is_active": "on", "url": "https://shop.example.com/o", "method": "POST",
        "headers": "{}", "new_secret_headers": "",
    }  # fmt: skip
    for name, ticked in (("shop_lookup", True), ("own_lookup", False)):
        fields = {**form, "name": name, **({"untrusted_output": "on"} if ticked else {})}
        response = client.post("/admin/tools/tool/add/", fields)
        assert response.status_code == 302, response.context["adminform"].form.errors
        assert Tool.objects.get(organization=org, name=name).untrusted_output is ticked
