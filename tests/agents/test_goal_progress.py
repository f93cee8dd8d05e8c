"""Goals can be measured: platform metrics (by their names or the reference's), custom
metrics whose values are reported with their history, and an event when a goal is reached."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent, AgentGoal
from agents.services import agent_goals_evaluate
from executions.models import PlatformEvent
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

GOALS = [
    {"name": "Leads per day", "metric": "leads_qualified", "target": 10, "comparison": "gte"},
    {"name": "Fast answers", "metric": "response_time", "target": 5000, "comparison": "lte"},
    {"name": "Conversion", "metric": "conversion_rate", "target": 0.25},
]


@pytest.fixture
def agent(alice, client_for) -> Agent:
    created = client_for(alice).post(
        "/api/v1/agents/", {"name": "Sales", "system_prompt": "Sell.", "goals": GOALS}, format="json"
    )
    assert created.status_code == 201, created.content
    return Agent.objects.get(pk=created.json()["id"])


def goal_id(agent, name) -> str:
    return str(AgentGoal.objects.get(agent=agent, name=name).pk)


def test_a_custom_metric_is_reported_with_its_history(agent, alice, mia, client_for):
    api = client_for(alice)
    url = f"/api/v1/agents/{agent.pk}/goals/{goal_id(agent, 'Leads per day')}/progress/"
    first = api.post(url, {"value": 4}, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["goal"] == {
        "id": goal_id(agent, "Leads per day"),
        "name": "Leads per day",
        "metric": "leads_qualified",
        "current_value": "4.0000",
        "is_achieved": False,
        "achieved_at": None,
    }
    # An older report joins the history but is not the current value.
    earlier = (timezone.now() - timedelta(hours=2)).isoformat()
    assert (
        api.post(url, {"value": 50, "recorded_at": earlier}, format="json").json()["goal"]["current_value"] == "4.0000"
    )
    assert not PlatformEvent.objects.filter(event_type="ai.goal.achieved").exists()
    reached = api.post(url, {"value": "12.5"}, format="json").json()["goal"]
    assert reached["is_achieved"] is True and reached["current_value"] == "12.5000"
    (event,) = PlatformEvent.objects.filter(event_type="ai.goal.achieved")
    assert event.payload["name"] == "Leads per day" and event.payload["value"] == "12.5000"
    # A run's evaluation does not touch a reported value.
    agent_goals_evaluate(agent=agent)
    assert AgentGoal.objects.get(pk=goal_id(agent, "Leads per day")).current_value == 12.5

    history = api.get(url).json()
    assert [row["value"] for row in history["results"]] == ["12.5000", "4.0000", "50.0000"]
    assert history["results"][0]["recorded_by"] == alice.username
    metrics = api.get(f"/api/v1/agents/{agent.pk}/metrics/").json()
    leads = next(g for g in metrics["goals"] if g["name"] == "Leads per day")
    assert leads["current_value"] == "12.5000" and leads["status"] == "achieved"
    assert api.post(
        f"/api/v1/agents/{agent.pk}/goals/{goal_id(agent, 'Conversion')}/progress/", {"value": "0.3"}, format="json"
    ).json()["goal"]["is_achieved"]


def test_platform_metrics_are_measured_not_reported(agent, alice, client_for):
    api = client_for(alice)
    listed = api.get("/api/v1/agents/goal-metrics/").json()["results"]
    by_name = {m["name"]: m for m in listed}
    assert "response_time" in by_name["avg_response_time_ms"]["aliases"] and "success_rate" in by_name
    fast = goal_id(agent, "Fast answers")
    error = assert_error(
        api.post(f"/api/v1/agents/{agent.pk}/goals/{fast}/progress/", {"value": 1}, format="json"), 400, "InvalidInput"
    )
    assert "measured by the platform" in error["details"]["validation_errors"]["value"][0]
    # The reference's name is measured from the counters: 4000 ms over 2 runs.
    Agent.objects.filter(pk=agent.pk).update(total_runs=2, successful_runs=2, total_duration_ms=4000)
    agent_goals_evaluate(agent=agent)
    goal = AgentGoal.objects.get(pk=fast)
    assert goal.current_value == 2000 and goal.is_achieved


def test_bad_reports_and_other_organizations(agent, alice, vic, oscar, client_for):
    url = f"/api/v1/agents/{agent.pk}/goals/{goal_id(agent, 'Leads per day')}/progress/"
    api = client_for(alice)
    future = (timezone.now() + timedelta(days=1)).isoformat()
    for body in ({}, {"value": "many"}, {"value": 1, "colour": "red"}, {"value": 1, "recorded_at": future}):
        assert_error(api.post(url, body, format="json"), 400, "InvalidInput")
    assert_error(
        api.post(f"/api/v1/agents/{agent.pk}/goals/not-a-goal/progress/", {"value": 1}, format="json"), 404, "NotFound"
    )
    assert_error(client_for(vic).post(url, {"value": 1}, format="json"), 403, "InsufficientPermissions")
    assert_error(client_for(oscar).post(url, {"value": 1}, format="json"), 404, "AgentNotFound")
    assert_error(client_for(oscar).get(url), 404, "AgentNotFound")
    assert not AgentGoal.objects.get(pk=goal_id(agent, "Leads per day")).progress.exists()
