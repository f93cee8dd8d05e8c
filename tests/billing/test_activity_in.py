"""The activity log keeps request and response data bounded and without secrets, and
integrators add their own agents' activity with ``POST activity/``."""

from __future__ import annotations

import pytest

from accounts.models import ActivityLog
from accounts.services import activity_record
from agents.services import agent_create
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_an_integrator_logs_its_agents_activity(org, other_org, alice, mia, vic, owner_actor, client_for):
    agent = agent_create(actor=owner_actor, data={"name": "Lead qualifier", "system_prompt": "x"})
    body = {
        "action": "crm.lead_qualified",
        "agent_id": str(agent.pk),
        "status": "success",
        "request_data": {"lead": "l-1", "api_key": "sk-live-123456789", "headers": {"Authorization": "Bearer x"}},
        "response_data": {"score": 87, "notes": "n" * 5000},
        "duration_ms": 1200,
        "tokens": 350,
        "cost": "0.004200",
    }
    created = client_for(mia).post("/api/v1/activity/", body, format="json")
    assert created.status_code == 201, created.content
    row = ActivityLog.objects.get(pk=created.json()["id"])
    assert row.action == "external.crm.lead_qualified" and row.user == mia and row.agent_id == agent.pk
    assert row.request_summary == {"lead": "l-1", "api_key": "[redacted]", "headers": {"Authorization": "[redacted]"}}
    assert "sk-live" not in created.content.decode()
    assert row.response_summary["score"] == 87 and len(row.response_summary["notes"]) < 1100
    assert (row.duration_ms, row.tokens, str(row.cost)) == (1200, 350, "0.004200")

    # Mia sees her row in the log.
    listed = client_for(mia).get("/api/v1/activity/?action=external.crm.lead_qualified").json()
    assert [r["id"] for r in listed["results"]] == [str(row.pk)]

    # Another organization's agent is not found; bad bodies are refused; a viewer may not log.
    foreign = agent_create(actor=None, organization=other_org, data={"name": "Theirs", "system_prompt": "x"})
    api = client_for(alice)
    assert_error(
        api.post("/api/v1/activity/", {**body, "agent_id": str(foreign.pk)}, format="json"), 404, "AgentNotFound"
    )
    for bad in ({"action": "Not An Action"}, {}, {"action": "x", "colour": "red"}, {"action": "x", "tokens": -1}):
        assert_error(api.post("/api/v1/activity/", bad, format="json"), 400, "InvalidInput")
    assert_error(client_for(vic).post("/api/v1/activity/", body, format="json"), 403, "InsufficientPermissions")
    assert ActivityLog.objects.filter(action__startswith="external.").count() == 1


def test_the_platforms_own_rows_are_bounded_and_redacted(org):
    row = activity_record(
        organization=org,
        action="agent.created",
        request_summary={
            "password": "hunter22",
            "deep": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}},
            "big": "x" * 9000,
        },
    )
    assert row.request_summary["password"] == "[redacted]"
    assert row.request_summary["deep"]["a"]["b"]["c"]["d"] == "[nested too deep]"
    assert row.request_summary["big"].endswith("[8000 more characters]")


def test_activity_is_logged_only_for_an_agent_the_caller_may_see(org, alice, mia, owner_actor, client_for):
    from accounts.access import Actor
    from accounts.models import Membership
    from agents.services import agent_delete

    mias_actor = Actor(organization=org, user=mia, membership=Membership.objects.get(user=mia, organization=org))
    private = agent_create(
        actor=owner_actor, data={"name": "Owner's own", "system_prompt": "x", "visibility": "private"}
    )
    mias = agent_create(actor=mias_actor, data={"name": "Mia's own", "system_prompt": "x", "visibility": "private"})
    gone = agent_create(actor=owner_actor, data={"name": "Gone", "system_prompt": "x"})
    agent_delete(actor=owner_actor, agent=gone)
    body = {"action": "crm.lead_qualified", "status": "success"}
    for agent in (private, gone):
        response = client_for(mia).post("/api/v1/activity/", {**body, "agent_id": str(agent.pk)}, format="json")
        assert_error(response, 404, "AgentNotFound")
    assert not ActivityLog.objects.filter(action__startswith="external.").exists()
    # Her own private agent, and an owner (who may see every agent) for hers: logged.
    assert (
        client_for(mia).post("/api/v1/activity/", {**body, "agent_id": str(mias.pk)}, format="json").status_code == 201
    )
    assert (
        client_for(alice).post("/api/v1/activity/", {**body, "agent_id": str(mias.pk)}, format="json").status_code
        == 201
    )
    assert ActivityLog.objects.filter(action="external.crm.lead_qualified", agent_id=mias.pk).count() == 2
