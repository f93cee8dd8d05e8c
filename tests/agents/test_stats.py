"""``agents/stats/`` (organization-wide), trends in ``agents/{id}/metrics/`` and the recent
runs in an agent's detail: what the runs and the agents' counters say, visible agents only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Visibility
from agents.services import agent_activate, agent_create
from bench.fakes.script import error, text
from executions.models import Execution
from executions.runtime.loop import run_execution
from executions.services import execution_cancel, execution_start
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db(transaction=True)


def run(agent, org, fake, *script) -> Execution:
    fake.script(*script)
    execution, _ = execution_start(agent=agent, organization=org, task="Work")
    run_execution(execution.pk)
    execution.refresh_from_db()
    return execution


def test_organization_stats_and_trends(org, alice, vic, mia, owner_actor, client_for, runnable, providers_at_fake):
    busy, quiet = runnable("Busy"), runnable("Quiet")
    runs = [run(busy, org, providers_at_fake, text("ok")) for _ in range(3)]
    runs.append(run(busy, org, providers_at_fake, error(400, "no")))  # a 400 is not retried
    runs.append(run(quiet, org, providers_at_fake, text("ok")))
    pending, _ = execution_start(agent=quiet, organization=org, task="never")
    execution_cancel(execution=pending)
    assert [r.status for r in runs] == ["completed"] * 3 + ["failed", "completed"]
    # Yesterday's run, to see the days apart.
    Execution.objects.filter(pk=runs[0].pk).update(created_at=timezone.now() - timedelta(days=1))
    private = agent_create(
        actor=None,
        organization=org,
        data={"name": "Mia's own", "system_prompt": "x", "visibility": Visibility.PRIVATE},
        by_user=mia,
    )

    for agent in (busy, quiet):
        agent_activate(actor=owner_actor, agent=agent)
    stats = client_for(alice).get("/api/v1/agents/stats/?days=3").json()
    assert stats["agents"]["total"] == 3
    assert stats["agents"]["by_status"] == {"draft": 1, "published": 2}
    # Busy's last run failed; Mia's draft is not active (offline).
    assert stats["agents"]["by_runtime_state"] == {"error": 1, "idle": 1, "offline": 1}
    runs_block = stats["runs"]
    assert (runs_block["total"], runs_block["successful"], runs_block["failed"], runs_block["cancelled"]) == (
        5,
        4,
        1,
        1,
    )
    assert runs_block["success_rate"] == 80.0
    assert runs_block["cost"] == str(sum(r.cost for r in runs))
    assert [a["name"] for a in stats["top_agents"]][:2] == ["Busy", "Quiet"]
    assert stats["top_agents"][0]["total_runs"] == 4 and stats["top_agents"][0]["success_rate"] == 75.0

    trend = stats["trends"]
    assert [d["date"] for d in trend] == [(timezone.now().date() - timedelta(days=n)).isoformat() for n in (2, 1, 0)]
    assert [(d["runs"], d["completed"], d["failed"], d["cancelled"]) for d in trend] == [
        (0, 0, 0, 0),
        (1, 1, 0, 0),
        (5, 3, 1, 1),
    ]
    assert trend[2]["success_rate"] == 75.0 and trend[0]["avg_response_time_ms"] is None
    today = list(runs[1:])
    assert trend[2]["avg_response_time_ms"] == round(sum(r.duration_ms for r in today) / len(today))

    # A viewer sees the agents shared with the organization, not Mia's private one.
    assert private.visibility == Visibility.PRIVATE
    assert client_for(vic).get("/api/v1/agents/stats/").json()["agents"]["total"] == 2
    assert_error(client_for(alice).get("/api/v1/agents/stats/?days=0"), 400, "InvalidInput")
    assert_error(client_for(alice).get("/api/v1/agents/stats/?days=many"), 400, "InvalidInput")


def test_an_agents_detail_has_its_recent_runs_and_its_metrics_its_trends(
    org, alice, client_for, runnable, providers_at_fake
):
    agent = runnable("Worker")
    runs = [run(agent, org, providers_at_fake, text(f"answer {n}")) for n in range(7)]
    detail = client_for(alice).get(f"/api/v1/agents/{agent.pk}/").json()
    recent = detail["recent_executions"]
    assert [r["id"] for r in recent] == [str(r.pk) for r in reversed(runs)][:5]
    assert recent[0]["status"] == "completed" and recent[0]["tokens_total"] == runs[-1].tokens_total
    metrics = client_for(alice).get(f"/api/v1/agents/{agent.pk}/metrics/?days=2").json()
    assert [(d["runs"], d["success_rate"]) for d in metrics["trends"]] == [(0, 0.0), (7, 100.0)]
