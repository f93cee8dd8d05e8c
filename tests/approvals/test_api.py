"""Approvals REST API: list and read, approve and deny, who may, and risk rules."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.models import ApprovalRequest, RiskRule
from executions.models import Execution
from tests.approvals.helpers import EMAIL, pending_approvals
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(make_agent, synced_tools):
    return make_agent(name="Mailer", allowed_tools=["email_send"])


@pytest.fixture
def approval(agent, org) -> ApprovalRequest:
    return pending_approvals(agent, org)[0]


def test_list_defaults_to_pending_with_filters(agent, org, vic, client_for):
    _, second, third = pending_approvals(agent, org, 3)
    ApprovalRequest.objects.filter(pk=third.pk).update(status="denied")
    ApprovalRequest.objects.filter(pk=second.pk).update(risk_level="critical")
    client = client_for(vic)
    body = client.get("/api/v1/approvals/").json()
    assert body["total"] == 2 and {a["status"] for a in body["results"]} == {"pending"}
    assert client.get("/api/v1/approvals/", {"status": "all"}).json()["total"] == 3
    assert client.get("/api/v1/approvals/", {"status": "denied"}).json()["results"][0]["id"] == str(third.pk)
    critical = client.get("/api/v1/approvals/", {"risk_level": "critical"}).json()["results"]
    assert [a["id"] for a in critical] == [str(second.pk)]
    assert client.get("/api/v1/approvals/", {"agent": str(agent.pk)}).json()["total"] == 2
    assert_error(client.get("/api/v1/approvals/", {"status": "bogus"}), 400, "InvalidInput")


def test_detail_has_the_fields_of_the_reference(approval, vic, client_for):
    body = client_for(vic).get(f"/api/v1/approvals/{approval.pk}/").json()
    for field in (
        "action_type", "action_description", "action_params", "risk_level", "risk_explanation", "status",
        "execution", "agent", "expires_at", "resolved_by", "resolved_at", "resolution_note",
    ):  # fmt: skip
        assert field in body, field
    assert body["action_params"] == EMAIL and body["execution"] == str(approval.execution_id)


def test_approve_and_deny_over_the_api(agent, org, adam, client_for):
    to_approve, to_deny = pending_approvals(agent, org, 2)
    client = client_for(adam)
    approved = client.post(
        f"/api/v1/approvals/{to_approve.pk}/approve/",
        {"note": "fine", "params": {**EMAIL, "subject": "Your refund (edited)"}},
        format="json",
    )
    assert approved.status_code == 200, approved.content
    body = approved.json()
    assert body["status"] == "approved" and body["params_edited"] is True
    assert body["resolved_by"]["username"] == adam.username
    assert Execution.objects.get(pk=to_approve.execution_id).status == "running"
    denied = client.post(f"/api/v1/approvals/{to_deny.pk}/deny/", {"note": "no"}, format="json")
    assert denied.json()["status"] == "denied"
    assert Execution.objects.get(pk=to_deny.execution_id).status == "cancelled"
    # One-shot: a second decision is a conflict, whatever it is.
    for url in (f"/api/v1/approvals/{to_approve.pk}/deny/", f"/api/v1/approvals/{to_deny.pk}/approve/"):
        error = assert_error(client.post(url, {}, format="json"), 409, "Conflict")
        assert error["details"]["status"] in ("approved", "denied")


def test_bad_bodies_are_refused_and_change_nothing(approval, adam, client_for):
    client = client_for(adam)
    url = f"/api/v1/approvals/{approval.pk}/approve/"
    bad = client.post(url, {"params": {"to": "x"}}, format="json")
    error = assert_error(bad, 400, "InvalidInput")
    assert error["details"]["validation_errors"]["params"] and error["details"]["parameters_schema"]
    assert_error(client.post(url, {"surprise": True}, format="json"), 400, "InvalidInput")
    assert_error(client.post(url, ["a", "list"], format="json"), 400, "InvalidInput")
    assert_error(
        client.post(f"/api/v1/approvals/{approval.pk}/deny/", {"params": {}}, format="json"), 400, "InvalidInput"
    )
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_only_resolvers_resolve(approval, mia, vic, client_for):
    for user in (mia, vic):
        client = client_for(user)
        assert client.get(f"/api/v1/approvals/{approval.pk}/").status_code == 200  # they may look
        error = assert_error(
            client.post(f"/api/v1/approvals/{approval.pk}/approve/", {}, format="json"), 403, "InsufficientPermissions"
        )
        assert error["details"]["required_permission"] == "approvals.resolve_approvalrequest"
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_token_scopes(approval, adam, client_for):
    reader = client_for(adam, scopes=["agents:read"])
    assert reader.get("/api/v1/approvals/").status_code == 200
    assert_error(reader.post(f"/api/v1/approvals/{approval.pk}/approve/", {}, format="json"), 403, "AgentAccessDenied")
    bot = client_for(adam, scopes=["approvals:resolve"])
    assert bot.get("/api/v1/approvals/").status_code == 200
    assert bot.post(f"/api/v1/approvals/{approval.pk}/approve/", {}, format="json").status_code == 200
    usage_only = client_for(adam, scopes=["usage:read"])
    assert_error(usage_only.get("/api/v1/approvals/"), 403, "AgentAccessDenied")


def test_another_organization_gets_404_and_no_data(approval, oscar, client_for):
    client = client_for(oscar)
    assert client.get("/api/v1/approvals/", {"status": "all"}).json()["total"] == 0
    for method, url in (
        ("get", f"/api/v1/approvals/{approval.pk}/"),
        ("post", f"/api/v1/approvals/{approval.pk}/approve/"),
        ("post", f"/api/v1/approvals/{approval.pk}/deny/"),
        ("get", "/api/v1/approvals/not-a-uuid/"),
    ):
        assert_error(getattr(client, method)(url, {}, format="json"), 404, "NotFound")
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_list_queries_do_not_grow_with_the_page(agent, org, vic, client_for):
    pending_approvals(agent, org, 12)
    client = client_for(vic)
    client.get("/api/v1/approvals/", {"limit": 1})
    with CaptureQueriesContext(connection) as small:
        client.get("/api/v1/approvals/", {"limit": 2})
    with CaptureQueriesContext(connection) as large:
        client.get("/api/v1/approvals/", {"limit": 12})
    assert len(small.captured_queries) == len(large.captured_queries)


def test_risk_rules_are_edited_by_admins(org, adam, mia, oscar, client_for):
    client = client_for(adam)
    created = client.post(
        "/api/v1/approval-rules/",
        {
            "pattern": "email_send",
            "risk_level": "critical",
            "count_field": "to",
            "count_threshold": 3,
            "threshold_risk_level": "critical",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    rule_id = created.json()["id"]
    assert (
        client.patch(f"/api/v1/approval-rules/{rule_id}/", {"risk_level": "low"}, format="json").json()["risk_level"]
        == "low"
    )
    assert_error(
        client.post("/api/v1/approval-rules/", {"pattern": "DROP TABLE", "risk_level": "low"}, format="json"),
        400,
        "InvalidInput",
    )
    assert_error(
        client.post(
            "/api/v1/approval-rules/", {"pattern": "x", "risk_level": "low", "count_field": "to"}, format="json"
        ),
        400,
        "InvalidInput",
    )
    assert client_for(mia).get("/api/v1/approval-rules/").json()["total"] == 1
    assert_error(
        client_for(mia).post("/api/v1/approval-rules/", {"pattern": "x", "risk_level": "low"}, format="json"),
        403,
        "InsufficientPermissions",
    )
    assert_error(client_for(oscar).get(f"/api/v1/approval-rules/{rule_id}/"), 404, "NotFound")
    assert client.delete(f"/api/v1/approval-rules/{rule_id}/").status_code == 204
    assert not RiskRule.objects.exists()


def test_a_private_agents_requests_stay_private(make_agent, org, alice, vic, client_for):
    private = make_agent(name="Private mailer", visibility="private")  # alice's own
    approval = pending_approvals(private, org)[0]
    assert client_for(alice).get(f"/api/v1/approvals/{approval.pk}/").status_code == 200
    assert client_for(vic).get("/api/v1/approvals/").json()["total"] == 0
    assert_error(client_for(vic).get(f"/api/v1/approvals/{approval.pk}/"), 404, "NotFound")
