"""An agent's totals are the sums over its executions: completed, failed and cancelled runs,
and the memory extraction spent on a run after it ended."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db.models import Count, Q, Sum

from bench.fakes.script import text, tool_call
from executions.models import Execution
from executions.runtime.loop import run_execution
from executions.runtime.tools_port import LocalTool, ToolOutcome, register_local_tool, unregister_local_tool
from executions.services import execution_cancel, execution_start
from memory.tasks import after_execution

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pause_tool():
    register_local_tool(LocalTool(name="pause", handler=lambda *, context: ToolOutcome("wait", wait_seconds=600)))
    yield
    unregister_local_tool("pause")


def run(agent, org) -> Execution:
    execution, _ = execution_start(agent=agent, organization=org, task="Work")
    run_execution(execution.pk)
    execution.refresh_from_db()
    return execution


def test_an_agents_totals_equal_the_sums_over_its_executions(
    org, make_agent, providers_at_fake, echo_tool, pause_tool, embedder
):
    agent = make_agent(allowed_tools=["echo", "pause", "refused_tool"], limits={"max_steps_per_run": 2})
    fake = providers_at_fake

    fake.script(tool_call("echo", {"text": "a"}), text("done"))
    completed = run(agent, org)
    assert completed.status == "completed"

    # A refused call is an action too (the reference counts actions_taken), then max steps.
    fake.script(tool_call("refused_tool", {}), tool_call("echo", {"text": "b"}))
    failed = run(agent, org)
    assert failed.status == "failed" and failed.error_code == "MaxStepsExceeded"

    fake.script(tool_call("pause", {}))
    parked = run(agent, org)
    assert parked.status == "waiting" and parked.tokens_total > 0
    cancelled = execution_cancel(execution=parked)
    assert cancelled.status == "cancelled"

    # Memory extraction after the completed run: spent on that run, after it finished.
    fake.script(
        text(json.dumps({"memories": [{"type": "fact", "content": "Echo works."}]}), usage={"input": 700, "output": 90})
    )
    after_execution(str(completed.pk))
    completed.refresh_from_db()
    assert completed.tokens_total > 790

    agent.refresh_from_db()
    runs = Execution.objects.filter(agent=agent)
    sums = runs.aggregate(
        tokens=Sum("tokens_total"),
        cost=Sum("cost"),
        ran=Count("id", filter=~Q(status="cancelled")),
        succeeded=Count("id", filter=Q(status="completed")),
        failed=Count("id", filter=Q(status__in=["failed", "timed_out"])),
        cancelled=Count("id", filter=Q(status="cancelled")),
        duration=Sum("duration_ms", filter=~Q(status="cancelled")),
    )
    actions = sum(len(e.actions_taken) for e in runs)
    assert actions == 1 + 2 + 1
    assert agent.total_tokens_used == sums["tokens"]
    assert agent.total_cost == sums["cost"] > Decimal(0)
    assert agent.total_actions_taken == actions
    assert (
        (agent.total_runs, agent.successful_runs, agent.failed_runs, agent.cancelled_runs)
        == (
            sums["ran"],
            sums["succeeded"],
            sums["failed"],
            sums["cancelled"],
        )
        == (2, 1, 1, 1)
    )
    assert agent.total_duration_ms == sums["duration"]
    assert agent.active_runs == 0
