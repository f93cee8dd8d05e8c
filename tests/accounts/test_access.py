"""Tenant scoping, roles as data, scopes, and the activity log."""

from __future__ import annotations

import pytest

from accounts.access import AccessRules, Actor
from accounts.models import ActivityLog, Membership
from accounts.roles import DEFAULT_ROLE_PERMISSIONS, permissions_for
from accounts.services import activity_record, api_token_create
from tests.conftest import assert_error


def test_default_roles_are_ordered_by_power():
    viewer = set(DEFAULT_ROLE_PERMISSIONS["viewer"])
    member = set(DEFAULT_ROLE_PERMISSIONS["member"])
    admin = set(DEFAULT_ROLE_PERMISSIONS["admin"])
    assert viewer < member < admin
    assert not any(p.split(".")[1].startswith(("add_", "change_", "delete_", "resolve_")) for p in viewer)
    assert "approvals.resolve_approvalrequest" not in member


def test_owner_can_change_a_roles_permissions(org, vic):
    membership = Membership.objects.get(user=vic)
    assert not membership.has_perm("agents.execute_agent")
    org.role_permissions = {"viewer": ["agents.view_agent", "agents.execute_agent", "not.a_permission"]}
    org.save()
    membership = Membership.objects.select_related("organization").get(user=vic)
    assert membership.has_perm("agents.execute_agent")
    assert not membership.has_perm("not.a_permission")  # unknown names are ignored
    # Owners cannot be locked out by an override.
    assert permissions_for("owner", {"owner": []}) == permissions_for("owner")


def test_activity_log_members_see_their_own_rows_admins_all(org, alice, adam, mia, vic, client_for):
    activity_record(organization=org, action="agent.created", user=mia)
    activity_record(organization=org, action="agent.updated", user=adam)
    mine = client_for(mia).get("/api/v1/activity/").json()["results"]
    assert {row["user"] for row in mine} == {mia.username}
    everything = client_for(adam).get("/api/v1/activity/").json()["results"]
    assert {row["user"] for row in everything} >= {mia.username, adam.username}


def test_activity_log_never_crosses_organizations(org, other_org, alice, oscar, client_for):
    activity_record(organization=org, action="agent.created", user=alice)
    foreign = ActivityLog.objects.filter(organization=org).first()
    api = client_for(oscar)
    rows = api.get("/api/v1/activity/").json()["results"]
    assert all(row["id"] != str(foreign.id) for row in rows)
    assert_error(api.get(f"/api/v1/activity/{foreign.id}/"), 404, "NotFound")


def test_token_creation_is_logged_with_the_request_id(alice, client_for):
    api = client_for(alice)
    response = api.post("/api/v1/tokens/", {"name": "x"}, format="json", HTTP_X_REQUEST_ID="abc-1")
    row = ActivityLog.objects.get(action="token.created", target_id=response.json()["id"])
    assert row.request_id == "abc-1"
    assert row.token is not None and row.user == alice


def test_a_missing_scope_answers_agent_access_denied(alice, org, client_for, rf):
    class View:
        action = "list"
        action_map = {"get": "list"}
        access_rules = {"list": ("usage:read", None)}

    token, _ = api_token_create(user=alice, organization=org, scopes=["agents:read"])
    from rest_framework.request import Request

    drf_request = Request(rf.get("/"))
    drf_request._user = alice
    drf_request._auth = token
    from config.api.errors import ApiError

    with pytest.raises(ApiError) as excinfo:
        AccessRules().has_permission(drf_request, View())
    assert excinfo.value.code == "AgentAccessDenied"


def test_a_missing_role_permission_and_a_missing_rule(org, vic, rf):
    from rest_framework.request import Request

    from config.api.errors import ApiError

    class View:
        action = "create"
        action_map = {"get": "create"}
        access_rules = {"create": (None, "agents.add_agent")}

    drf_request = Request(rf.get("/"))
    drf_request._user = vic
    drf_request._auth = None
    with pytest.raises(ApiError) as excinfo:
        AccessRules().has_permission(drf_request, View())
    assert excinfo.value.code == "InsufficientPermissions"

    class Unruled:
        action = "destroy"
        action_map = {"get": "destroy"}
        access_rules: dict = {}

    with pytest.raises(ApiError):
        AccessRules().has_permission(drf_request, Unruled())


def test_session_user_picks_organization_by_header(org, other_org, alice, client):
    # alice also joins the other organization as a viewer.
    Membership.objects.create(user=alice, organization=other_org, role="viewer")
    client.force_login(alice)
    activity_record(organization=org, action="in.acme", user=alice)
    activity_record(organization=other_org, action="in.globex", user=alice)
    acme = client.get("/api/v1/activity/", HTTP_X_ORGANIZATION="acme").json()["results"]
    globex = client.get("/api/v1/activity/", HTTP_X_ORGANIZATION=str(other_org.id)).json()["results"]
    assert {r["action"] for r in acme} == {"in.acme"}
    assert {r["action"] for r in globex} == {"in.globex"}
    # A header naming an organization she is not in gives no access at all.
    response = client.get("/api/v1/activity/", HTTP_X_ORGANIZATION="initech")
    assert_error(response, 403, "InsufficientPermissions")


def test_actor_scopes_for_sessions_and_tokens(org, alice):
    membership = Membership.objects.get(user=alice)
    assert Actor(organization=org, user=alice, membership=membership).has_scope("admin")
    token, _ = api_token_create(user=alice, organization=org, scopes=["agents:read"])
    actor = Actor(organization=org, user=alice, membership=membership, token=token)
    assert actor.has_scope("agents:read") and not actor.has_scope("agents:write")


def test_a_method_the_view_does_not_offer_is_405_not_403(alice, client_for):
    from tests.conftest import assert_error as check

    api = client_for(alice)
    check(api.put("/api/v1/activity/", {}, format="json"), 405, "MethodNotAllowed")
    check(api.patch("/api/v1/usage/quota/", {}, format="json"), 405, "MethodNotAllowed")
