"""Every ModelAdmin, as an organization admin with staff status and as staff members without
an admin role: what the admin lets them change is what the API lets the same role change,
through the same services (security issue #14, H4)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.forms import ModelChoiceField
from django.test import Client

from accounts.admin_scoping import OrganizationScopedAdmin, ReadOnlyAdminMixin
from accounts.models import ActivityLog, Organization
from accounts.services import activity_record
from agents.models import ProviderConnection
from approvals.models import RiskRule
from memory.models import KnowledgeBase
from tests.admin_forms import page_data
from tools.models import AgentCapabilityGrant, ModuleEndpoint, Tool

pytestmark = pytest.mark.django_db


def _staff(user) -> Client:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


def _url(model, page: str, pk=None) -> str:
    base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    return {"changelist": base, "add": f"{base}add/", "change": f"{base}{pk}/change/", "delete": f"{base}{pk}/delete/"}[
        page
    ]


def _organization_of(row) -> object:
    if isinstance(row, Organization):
        return row.pk
    if isinstance(row, get_user_model()):
        return set(row.memberships.values_list("organization_id", flat=True))
    registered = admin.site._registry.get(type(row))
    if isinstance(registered, OrganizationScopedAdmin):
        *hops, last = registered.organization_path.split("__")
        for hop in hops:
            row = getattr(row, hop)
        return row.pk if last == "id" else getattr(row, f"{last}_id")
    return getattr(row, "organization_id", "unscoped")


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_staff_without_an_admin_role_reach_no_admin_page(tenants, org, mia, vic, role):
    client = _staff(mia if role == "member" else vic)
    assert client.get("/admin/").context["app_list"] == []
    mine = tenants[0]
    for model in admin.site._registry:
        for page in ("changelist", "add"):
            assert client.get(_url(model, page)).status_code == 403, (model, page)
    assert client.get(_url(type(mine.agent), "change", mine.agent.pk)).status_code == 403


def test_records_are_never_deleted_in_the_admin(tenants, org, alice, adam):
    activity_record(organization=org, action="something.happened", user=alice)
    client = _staff(adam)
    checked = []
    for model, model_admin in admin.site._registry.items():
        if not isinstance(model_admin, ReadOnlyAdminMixin) or not isinstance(model_admin, OrganizationScopedAdmin):
            continue
        if model.__name__ in ("Conversation", "Document"):
            continue  # deleted as through the API, by its service
        row = model_admin.get_queryset(_request(adam)).first()
        if row is None:
            continue
        assert client.post(_url(model, "delete", row.pk), {"post": "yes"}).status_code == 403, model
        bulk = client.post(_url(model, "changelist"), {"action": "delete_selected", "_selected_action": [row.pk]})
        assert bulk.status_code in (200, 302, 403), (model, bulk.status_code)
        assert model._default_manager.filter(pk=row.pk).exists(), model
        checked.append(model.__name__)
    assert {"ActivityLog", "DailyUsage", "ApprovalRequest", "Execution", "UsageRecord"} <= set(checked), checked


def _request(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_choices_never_list_another_organizations_rows(tenants, org, other_org, adam, oscar):
    client = _staff(adam)
    theirs = other_org.pk
    checked = 0
    for model, model_admin in admin.site._registry.items():
        if not isinstance(model_admin, OrganizationScopedAdmin):
            continue
        pages = [_url(model, "add")]
        row = model_admin.get_queryset(_request(adam)).first()
        if row is not None:
            pages.append(_url(model, "change", row.pk))
        for url in pages:
            response = client.get(url)
            if response.status_code != 200 or "adminform" not in response.context:
                continue  # refused, or a page with no form at all (an execution's trace)
            for name, field in response.context["adminform"].form.fields.items():
                if not isinstance(field, ModelChoiceField):
                    continue
                for choice in field.queryset:
                    owner = _organization_of(choice)
                    assert owner != theirs and not (isinstance(owner, set) and owner == {theirs}), (url, name, choice)
                checked += 1
    assert checked >= 10


def test_the_role_permissions_an_owner_sets_bind_the_admin_as_the_api(org, alice, adam, client_for):
    from accounts.roles import DEFAULT_ROLE_PERMISSIONS

    narrowed = [p for p in DEFAULT_ROLE_PERMISSIONS["admin"] if p not in ("tools.add_tool", "billing.manage_members")]
    org.role_permissions = {"admin": narrowed}
    org.save(update_fields=["role_permissions"])
    api = client_for(adam)
    assert api.post("/api/v1/tools/", {"name": "x"}, format="json").status_code == 403
    client = _staff(adam)
    assert client.get(_url(Tool, "add")).status_code == 403
    member = org.memberships.get(user=alice)
    assert client.post(_url(type(member), "change", member.pk), {"role": "admin"}).status_code == 403
    assert client.get(_url(RiskRule, "add")).status_code == 200  # still allowed to admins


def test_an_organization_admin_makes_http_tools_only_and_through_the_ssrf_guard(org, adam):
    client = _staff(adam)
    add = _url(Tool, "add")
    base = {
        "organization": org.pk,
        "name": "lookup_order",
        "display_name": "Lookup order",
        "description": "Finds an order.",
        "category": "custom",
        "parameters_schema": '{"type": "object", "properties": {"id": {"type": "string"}}}',
        "returns_schema": "null",
        "requires_permissions": "access_external_apis",
        "timeout_seconds": "10",
        "is_active": "on",
        "method": "GET",
        "headers": "{}",
        "new_secret_headers": "",
        # What the API never lets an organization choose, sent anyway.
        "handler_type": "module",
        "handler_config": '{"module": "os", "action": "system"}',
        "is_system": "on",
        "requires_modules": "crm",
    }
    loopback = client.post(add, {**base, "url": "http://127.0.0.1:8000/orders/{id}"})
    assert loopback.status_code == 200 and "url" in loopback.context["adminform"].form.errors
    assert not Tool.objects.filter(name="lookup_order").exists()

    response = client.post(add, {**base, "url": "https://93.184.215.14/orders/{id}"})
    assert response.status_code == 302, response.content.decode()[:3000]
    tool = Tool.objects.get(organization=org, name="lookup_order")
    assert (tool.handler_type, tool.is_system, tool.requires_modules) == ("http", False, [])
    assert tool.handler_config == {"url": "https://93.184.215.14/orders/{id}", "method": "GET", "headers": {}}
    assert ActivityLog.objects.filter(action="tool.create", user=adam, target_id=str(tool.pk)).exists()


def test_module_endpoints_pass_the_ssrf_guard_in_the_admin(org, adam):
    client = _staff(adam)
    add = _url(ModuleEndpoint, "add")
    data = page_data(client, add, organization=str(org.pk), module="crm", base_url="http://127.0.0.1:6379/")
    response = client.post(add, data)
    assert response.status_code == 200 and "base_url" in response.context["adminform"].form.errors
    assert not ModuleEndpoint.objects.exists()


def _agent(org, alice):
    from accounts.access import Actor
    from agents.services.agents import agent_create

    actor = Actor(organization=org, user=alice, membership=org.memberships.get(user=alice))
    return agent_create(actor=actor, data={"name": "Helper", "system_prompt": "Help."})


ADDS = {
    "provider connection": (
        ProviderConnection,
        lambda org, agent: {"organization": org.pk, "provider": "openai", "name": "Ours", "api_key": "sk-test-9876"},
        "provider_connection.created",
    ),
    "risk rule": (
        RiskRule,
        lambda org, agent: {"organization": org.pk, "pattern": "crm_delete_*", "risk_level": "critical"},
        "risk_rule.save",
    ),
    "knowledge base": (
        KnowledgeBase,
        lambda org, agent: {"organization": org.pk, "name": "Handbook", "agents": [agent.pk]},
        "knowledge_base.created",
    ),
    "capability grant": (
        AgentCapabilityGrant,
        lambda org, agent: {"organization": org.pk, "agent": agent.pk, "capabilities": "access_external_apis"},
        "agent.capabilities",
    ),
    "module endpoint": (
        ModuleEndpoint,
        lambda org, agent: {"organization": org.pk, "module": "crm", "base_url": "https://93.184.215.14/crm"},
        "module_endpoint.save",
    ),
}


@pytest.mark.parametrize("what", sorted(ADDS))
def test_additions_go_through_the_services_and_are_logged_as_the_person(what, org, alice, adam):
    model, fields, action = ADDS[what]
    agent = _agent(org, alice)
    client = _staff(adam)
    add = _url(model, "add")
    response = client.post(add, page_data(client, add, **{k: _plain(v) for k, v in fields(org, agent).items()}))
    assert response.status_code == 302, response.content.decode()[:3000]
    row = model.objects.get(organization=org)
    assert ActivityLog.objects.filter(action=action, user=adam, organization=org).exists(), action
    # and deleting it (where the API deletes) is the service's too
    if admin.site._registry[model].has_delete_permission(_request(adam), row):
        assert client.post(_url(model, "delete", row.pk), {"post": "yes"}).status_code == 302
        assert not model.objects.filter(pk=row.pk).exists()
        assert ActivityLog.objects.filter(user=adam, organization=org, target_id=str(row.pk)).count() >= 2


def _plain(value):
    if isinstance(value, list):
        return [str(item) for item in value]
    return str(value)


def test_every_admin_that_lets_organization_admins_write_does_it_through_a_service():
    for model, model_admin in admin.site._registry.items():
        if not isinstance(model_admin, OrganizationScopedAdmin):
            continue
        cls = type(model_admin)
        writes = {"add", "change"} & set(model_admin.api_permissions)
        if writes and not isinstance(model_admin, ReadOnlyAdminMixin):
            assert cls.service_save is not OrganizationScopedAdmin.service_save, model
        if "delete" in model_admin.api_permissions:
            assert cls.service_delete is not OrganizationScopedAdmin.service_delete, model


def test_cancelling_runs_in_the_admin_is_the_services_with_the_persons_name(tenants, org, adam):
    waiting = tenants[0].approval.execution
    client = _staff(adam)
    response = client.post(
        "/admin/executions/execution/", {"action": "cancel_selected", "_selected_action": [str(waiting.pk)]}
    )
    assert response.status_code == 302
    waiting.refresh_from_db()
    assert waiting.status == "cancelled"
    assert ActivityLog.objects.filter(action="execution.cancel", user=adam, target_id=str(waiting.pk)).exists()


def test_the_platforms_own_admins_are_closed_to_organization_admins(org, adam):
    """Users, groups, beat's tasks, plans, prices, templates: no organization's business."""
    client = _staff(adam)
    closed = [
        model
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, OrganizationScopedAdmin)
    ]
    assert {m.__name__ for m in closed} >= {"User", "Group", "PeriodicTask", "Plan", "ModelPrice", "AgentTemplate"}
    for model in closed:
        for page in ("changelist", "add"):
            assert client.get(_url(model, page)).status_code == 403, (model, page)


def test_deleting_an_agent_with_runs_is_the_apis_soft_delete(tenants, org, adam):
    from agents.models import Agent

    agent = tenants[0].agent  # it has runs, which outlive it
    runs = agent.executions.count()
    client = _staff(adam)
    response = client.post(_url(Agent, "delete", agent.pk), {"post": "yes"})
    assert response.status_code == 302, response.content.decode()[:2000]
    agent.refresh_from_db()
    assert agent.deleted_at is not None and runs > 0 and agent.executions.count() == runs
    assert ActivityLog.objects.filter(action="agent.deleted", user=adam, agent_id=agent.pk).exists()
