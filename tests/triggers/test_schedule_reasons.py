"""A schedule that cannot fire says why in its API representation (issue 19, the first hour)."""

from __future__ import annotations

import pytest

from agents.services import agent_activate, agent_archive, agent_deactivate

pytestmark = pytest.mark.django_db

BODY = {"cron_expression": "0 9 * * 1-5", "timezone": "UTC", "input": {"task": "Digest"}}


def test_a_schedule_says_why_it_does_not_fire(
    alice, active_agent, owner_actor, client_for, django_capture_on_commit_callbacks
):
    agent = active_agent()
    api = client_for(alice)
    created = api.post("/api/v1/schedules/", {**BODY, "agent_id": str(agent.pk)}, format="json")
    assert created.status_code == 201, created.content
    url = f"/api/v1/schedules/{created.json()['id']}/"
    assert (created.json()["enabled"], created.json()["disabled_reasons"]) == (True, [])

    with django_capture_on_commit_callbacks(execute=True):
        agent_deactivate(actor=owner_actor, agent=agent)
    data = api.get(url).json()
    assert data["enabled"] is False and data["next_execution_at"] is None
    assert data["disabled_reasons"] == [
        f"Its agent is inactive: triggers do not start it; activate it (POST /api/v1/agents/{agent.pk}/activate/)."
    ]
    # The list says the same.
    [listed] = api.get("/api/v1/schedules/").json()["results"]
    assert listed["disabled_reasons"] == data["disabled_reasons"]

    paused = api.patch(url, {"is_active": False}, format="json").json()
    assert paused["disabled_reasons"][0].startswith("The schedule is paused")
    assert len(paused["disabled_reasons"]) == 2

    with django_capture_on_commit_callbacks(execute=True):
        agent_activate(actor=owner_actor, agent=agent)
    resumed = api.patch(url, {"is_active": True}, format="json").json()
    assert (resumed["enabled"], resumed["disabled_reasons"]) == (True, [])
    assert resumed["next_execution_at"] is not None

    with django_capture_on_commit_callbacks(execute=True):
        agent_archive(actor=owner_actor, agent=agent)
    archived = api.get(url).json()
    assert archived["enabled"] is False and "Its agent is archived." in archived["disabled_reasons"]


def test_an_unpublished_agents_schedule_says_to_publish_it(alice, org, owner_actor, client_for):
    from executions.models import ScheduledExecution
    from executions.triggers.schedules import schedule_blockers
    from tests.agents.conftest import body

    api = client_for(alice)
    draft = api.post("/api/v1/agents/", body(name="Drafty", trigger_schedule=None), format="json").json()
    schedule = ScheduledExecution(organization=org, agent_id=draft["id"], cron_expression="0 9 * * *", timezone="UTC")
    reasons = schedule_blockers(schedule)
    assert any("draft with no published version; publish it" in r for r in reasons)
    assert any("inactive" in r for r in reasons)
