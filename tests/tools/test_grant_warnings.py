"""An allowed tool whose capability is not granted is never dropped silently: the agent's
warnings and the run's log say which, why, and where to grant it (issue 19, the first hour)."""

from __future__ import annotations

import pytest

from executions.models import ExecutionLog
from executions.runtime.loop import run_execution
from executions.services import execution_start

SANDBOX = {"provider": "sandbox", "model": "sandbox-echo"}


def _create(client, **fields):
    body = {"name": "Helper", "system_prompt": "You help.", "model_config": SANDBOX, **fields}
    response = client.post("/api/v1/agents/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.django_db
def test_agent_warnings_name_the_missing_grant_and_where_to_grant_it(org, alice, client_for, synced_tools):
    api = client_for(alice)
    agent = _create(api, allowed_tools=["task_create", "email_send", "calendar_create_event", "wait"])
    url = f"/api/v1/agents/{agent['id']}/"
    warnings = agent["warnings"]
    grant_at = f"PUT /api/v1/agents/{agent['id']}/capabilities/"
    assert (
        f"task_create needs the create_tasks capability, which this agent is not granted; grant it with {grant_at}"
        in " ".join(warnings)
    )
    assert any(w.startswith("email_send needs the send_emails capability") for w in warnings)
    # A missing module is told apart from a missing grant.
    assert any(
        w.startswith("calendar_create_event needs the booking module") and "module-endpoints" in w for w in warnings
    )
    assert not any(w.startswith("wait") for w in warnings)  # needs nothing: offered

    granted = api.put(f"{url}capabilities/", {"capabilities": ["create_tasks"]}, format="json")
    assert granted.status_code == 200, granted.content
    warnings = api.get(url).json()["warnings"]
    assert not any(w.startswith("task_create") for w in warnings)
    assert any(w.startswith("email_send needs the send_emails capability") for w in warnings)


@pytest.mark.django_db
def test_a_capability_tag_spelled_like_a_grant_is_not_mistaken_for_one(org, alice, client_for, synced_tools):
    api = client_for(alice)
    agent = _create(api, capabilities=["send_emails", "lead_qualification"], allowed_tools=["wait"])
    [warning] = agent["warnings"]
    assert warning.startswith("capabilities: 'send_emails' is a descriptive tag and grants nothing")
    assert f"/api/v1/agents/{agent['id']}/capabilities/" in warning
    api.put(f"/api/v1/agents/{agent['id']}/capabilities/", {"capabilities": ["send_emails"]}, format="json")
    assert api.get(f"/api/v1/agents/{agent['id']}/").json()["warnings"] == []


@pytest.mark.django_db(transaction=True)
def test_the_runs_log_says_which_allowed_tools_were_not_offered_and_why(org, make_agent, synced_tools):
    agent = make_agent(model_config=SANDBOX, allowed_tools=["task_create", "email_send", "wait"])
    from tools.models import AgentCapabilityGrant

    AgentCapabilityGrant.objects.create(organization=org, agent=agent, capabilities=["create_tasks"])
    execution, _ = execution_start(agent=agent, organization=org, task="Say hello")
    run_execution(execution.pk)
    [line] = ExecutionLog.objects.filter(execution=execution, message__startswith="Allowed tools not offered")
    assert line.level == "warn"
    assert line.message.startswith("Allowed tools not offered to the model: email_send. ")
    assert "send_emails capability, which this agent is not granted" in line.message
    assert [gap["tool"] for gap in line.metadata["unoffered_tools"]] == ["email_send"]
    assert line.metadata["unoffered_tools"][0]["missing_capabilities"] == ["send_emails"]


@pytest.mark.django_db(transaction=True)
def test_a_run_offered_every_allowed_tool_logs_no_such_line(org, make_agent, synced_tools):
    agent = make_agent(model_config=SANDBOX, allowed_tools=["wait"])
    execution, _ = execution_start(agent=agent, organization=org, task="Say hello")
    run_execution(execution.pk)
    assert not ExecutionLog.objects.filter(execution=execution, message__startswith="Allowed tools").exists()


@pytest.mark.django_db(transaction=True)
def test_a_sandbox_run_sends_an_email_and_creates_a_task(org, make_agent, owner_actor, synced_tools):
    """The issue's "done when" on the sandbox: e-mail and task from a plain-English task, the
    e-mail held for a person, then sent, then the task created, every answer labelled."""
    from django.core import mail

    from approvals.models import ApprovalRequest
    from approvals.services import approval_resolve
    from tools.models import AgentCapabilityGrant, ToolCall

    agent = make_agent(model_config=SANDBOX, allowed_tools=["email_send", "task_create"])
    AgentCapabilityGrant.objects.create(organization=org, agent=agent, capabilities=["send_emails", "create_tasks"])
    task = "E-mail ann@example.com the weekly summary and create a follow-up task for Bob"
    execution, _ = execution_start(agent=agent, organization=org, task=task)
    run_execution(execution.pk)
    execution.refresh_from_db()
    # Validated, then held for a person (sending e-mail is high risk): not refused for its arguments.
    assert execution.status == "waiting_approval", (execution.status, execution.error)
    call = ToolCall.objects.get(execution=execution)
    assert (call.tool_name, call.status) == ("email_send", "pending")
    approval = ApprovalRequest.objects.get(execution=execution)
    assert approval.action_params["to"] == ["ann@example.com"]
    think = execution.steps.filter(step_type="think").first()
    assert think.output_text.startswith("[sandbox]")

    approval_resolve(approval=approval, actor=owner_actor, approved=True)
    run_execution(execution.pk)  # what the queued task does on a worker
    execution.refresh_from_db()
    assert execution.status == "completed", (execution.status, execution.error)
    [sent] = mail.outbox
    assert sent.to == ["ann@example.com"] and sent.subject.startswith("E-mail ann@example.com")
    calls = list(ToolCall.objects.filter(execution=execution).order_by("started_at").values_list("tool_name", "status"))
    assert calls == [("email_send", "completed"), ("task_create", "completed")]
    assert execution.output["text"].startswith("[sandbox] No model was called.")
