"""The agent types with a real worker process: an orchestrator's delegation (refused outside
its managed agents; the managed agent, run by the worker, answers into the orchestrator's
run) and a guardian's breach run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.services import agent_activate
from bench.fakes.script import text, tool_call
from executions.guardian import guardians_scan
from executions.models import Execution
from executions.services import execution_start
from tests.fakes.fixtures import worker_env_for
from tests.processes import celery_worker, wait_for
from tests.tools.fixtures import *  # noqa: F403 (synced_tools)
from tools.models import AgentCapabilityGrant, ToolCall

pytestmark = pytest.mark.django_db(transaction=True)


def _finished(execution: Execution, timeout: float = 60) -> Execution:
    wait_for(lambda: Execution.objects.get(pk=execution.pk).is_terminal, timeout, message="the run to end")
    return Execution.objects.get(pk=execution.pk)


def test_orchestrator_delegation_and_guardian_run_on_a_worker(
    org, owner_actor, make_agent, providers_at_fake, synced_tools
):
    managed = make_agent(name="Billing Helper", description="Answers billing questions.")
    outsider = make_agent(name="Outsider")
    orchestrator = make_agent(
        name="Boss",
        agent_type="orchestrator",
        allowed_tools=["trigger_workflow"],
        type_config={"managed_agents": [str(managed.pk)]},
    )
    AgentCapabilityGrant.objects.create(organization=org, agent=orchestrator, capabilities=["trigger_workflows"])
    # The orchestrator waits inside its tool call for the child, so the model calls come in
    # this order: boss, boss, child; later ones (the boss's answer, memory extraction) get the
    # fake's default answer, which repeats the last tool result.
    providers_at_fake.script(
        tool_call("trigger_workflow", {"workflow_id": outsider.slug, "input_data": {"task": "Do it"}}),
        tool_call("trigger_workflow", {"workflow_id": managed.slug, "input_data": {"task": "Invoice 7?"}}),
        text("Invoice 7 is paid."),
    )
    with celery_worker(queues="default,io", concurrency=3, extra_env=worker_env_for(providers_at_fake)):
        run, _ = execution_start(agent=orchestrator, organization=org, task="Is invoice 7 paid?")
        run = _finished(run)
        assert run.status == "completed", run.error
        assert "Invoice 7 is paid." in run.output["text"]  # the child's answer reached the boss's model
        calls = list(ToolCall.objects.filter(execution=run).order_by("step_number"))
        assert [c.status for c in calls] == ["denied", "completed"]
        child = Execution.objects.get(parent=run)
        assert child.agent_id == managed.pk and child.status == "completed"
        delegated = run.steps.get(step_type="act", tool_name="trigger_workflow", is_error=False)
        assert delegated.tool_output["status"] == "success"
        assert delegated.tool_output["output"] == {"text": "Invoice 7 is paid."}
        assert not Execution.objects.filter(agent=outsider).exists()

        # A guardian watching the helper: its breach run is started and run by the worker.
        guardian = make_agent(
            name="Watchman",
            agent_type="guardian",
            type_config={
                "watched_agents": [str(managed.pk)],
                "monitoring_rules": [{"metric": "run_count", "threshold": 0, "window": "1h", "action": "run"}],
            },
        )
        agent_activate(actor=owner_actor, agent=guardian)
        assert guardians_scan(now=timezone.now() + timedelta(seconds=1)) == 1
        guardian_run = _finished(Execution.objects.get(agent=guardian))
        assert guardian_run.status == "completed", guardian_run.error
        assert guardian_run.input["context"]["breach"]["metric"] == "run_count"
        # The breach is the task the guardian's model was given.
        told = [
            m["content"]
            for request in providers_at_fake.chat_requests
            for m in request.body["messages"]
            if m["role"] == "user" and isinstance(m.get("content"), str)
        ]
        assert any("run_count was 1.0 over the last 1h" in content for content in told), told[-3:]
