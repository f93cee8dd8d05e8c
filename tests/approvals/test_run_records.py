"""A held call in the run's log (the wait, the decision) and in the usage counts (approval
requests and tool calls per day, agent and period)."""

from __future__ import annotations

import pytest

from accounts.access import Actor
from accounts.models import Membership
from approvals.models import ApprovalRequest
from approvals.services import approval_resolve
from bench.fakes.script import text, tool_call
from billing.models import DailyUsage, UsagePeriod
from billing.usage import daily_usage_rebuild
from executions.models import ExecutionLog
from executions.runtime.loop import run_execution
from executions.services import execution_start
from tools.models import AgentCapabilityGrant

pytestmark = pytest.mark.django_db(transaction=True)

ASKED = {"to": ["customer@example.test"], "subject": "Refund", "body": "On its way."}


def actor_for(user, org) -> Actor:
    return Actor(organization=org, user=user, membership=Membership.objects.get(user=user, organization=org))


@pytest.fixture
def held(org, alice, adam, make_agent, providers_at_fake, synced_tools):
    agent = make_agent(name="Mailer", allowed_tools=["email_send"])
    AgentCapabilityGrant.objects.create(organization=org, agent=agent, capabilities=["send_emails"])
    providers_at_fake.script(tool_call("email_send", ASKED), text("Sent it."))
    execution, _ = execution_start(agent=agent, organization=org, task="Tell the customer")
    run_execution(execution.pk)
    execution.refresh_from_db()
    assert execution.status == "waiting_approval"
    return execution


def messages(execution) -> list[str]:
    return list(ExecutionLog.objects.filter(execution=execution).order_by("id").values_list("message", flat=True))


def test_the_wait_and_an_approval_are_in_the_log_and_the_usage(held, org, adam, client_for):
    assert messages(held)[-1] == "Waiting for a person to approve 'email_send'."
    waiting = ExecutionLog.objects.get(execution=held, message__startswith="Waiting for a person")
    approval = ApprovalRequest.objects.get()
    assert waiting.metadata["approval_id"] == str(approval.pk)

    approval_resolve(approval=approval, actor=actor_for(adam, org), approved=True)
    run_execution(held.pk)
    held.refresh_from_db()
    assert held.status == "completed"
    assert messages(held)[-6:] == [
        "Waiting for a person to approve 'email_send'.",
        f"Approved by {adam.username}; the run resumes.",
        "Resuming from the last committed step.",
        "Tool 'email_send' completed.",
        "Model openai/gpt-4o answered with its final answer.",
        "Run completed.",
    ]

    # One approval request and one tool call: per agent and day, and in the period.
    row = DailyUsage.objects.get(agent_id=held.agent_id, provider="")
    assert (row.tool_calls, row.approvals, row.llm_calls) == (1, 1, 0)
    period = UsagePeriod.objects.get(organization=org)
    assert (period.tool_calls, period.approvals) == (1, 1)
    api = client_for(adam)
    by_agent = api.get("/api/v1/usage/?group_by=agent").json()["results"]
    (mine,) = [r for r in by_agent if r["key"] == str(held.agent_id)]
    assert (mine["tool_calls"], mine["approvals"], mine["llm_calls"], mine["runs"]) == (1, 1, 2, 1)
    by_user = api.get("/api/v1/usage/?group_by=user").json()["results"]
    assert by_user[0]["tool_calls"] == 1 and by_user[0]["approvals"] is None
    quota = api.get("/api/v1/usage/quota/").json()
    assert (quota["tool_calls"], quota["approvals"]) == (1, 1)
    csv_text = api.get("/api/v1/usage/?group_by=agent&format=csv").content.decode()
    assert csv_text.splitlines()[0].startswith("agent,runs,llm_calls,tool_calls,approvals,")

    # Rebuilding the model-call rollups from their records keeps these counts.
    daily_usage_rebuild(organization_id=org.pk)
    assert DailyUsage.objects.get(agent_id=held.agent_id, provider="").tool_calls == 1


def test_a_denial_is_in_the_log(held, org, adam):
    approval = ApprovalRequest.objects.get()
    approval_resolve(approval=approval, actor=actor_for(adam, org), approved=False, note="Not this one")
    held.refresh_from_db()
    assert held.status == "cancelled"
    # The after-run Episode (no model call for a cancelled run: written at once by memory's
    # finishing hook) says why it learned nothing, after the run's own last lines.
    *lines, memory_line = messages(held)
    assert memory_line == "Memory extraction stored nothing: cancelled runs are not learned from"
    reason = f"Denied by {adam.username}: Not this one"
    assert lines[-2:] == [
        f"The held call to 'email_send' was not approved: {reason}",
        f"Run cancelled: {reason}",
    ]
    assert ExecutionLog.objects.get(execution=held, message=f"Run cancelled: {reason}").level == "warn"
    assert DailyUsage.objects.get(agent_id=held.agent_id, provider="").tool_calls == 0
