"""The approval flow through the real runtime (in-process; the worker tests do it across
processes): held call → request → approve (with edits) / deny / expire → the run goes on
or ends, and the held tool runs exactly once or never."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.access import Actor
from accounts.models import ActivityLog, Membership
from approvals.models import ApprovalRequest
from approvals.services import approval_notify_by_email, approval_resolve, approvals_expire
from bench.fakes.script import text, tool_call
from config.api.errors import ApiError
from executions.models import Execution, ExecutionEvent, ExecutionStep, PlatformEvent
from executions.runtime.loop import run_execution
from executions.services import execution_cancel, execution_start
from tools.models import AgentCapabilityGrant, Notification, ToolCall

pytestmark = pytest.mark.django_db(transaction=True)

ASKED = {"to": ["everyone@example.test"], "subject": "Refund", "body": "Your refund is on its way."}


def actor_for(user, org) -> Actor:
    return Actor(organization=org, user=user, membership=Membership.objects.get(user=user, organization=org))


@pytest.fixture
def held(org, alice, adam, mia, make_agent, providers_at_fake, synced_tools):
    """A run of an emailing agent, parked on its email_send call."""
    agent = make_agent(name="Mailer", allowed_tools=["email_send"])
    AgentCapabilityGrant.objects.create(organization=org, agent=agent, capabilities=["send_emails"])
    providers_at_fake.script(tool_call("email_send", ASKED), text("Sent it."))
    execution, _ = execution_start(agent=agent, organization=org, task="Tell the customer about the refund")
    run_execution(execution.pk)
    execution.refresh_from_db()
    return execution


def test_a_held_call_opens_a_request_and_nothing_is_sent(held, org, alice, adam, mia, vic):
    assert held.status == "waiting_approval" and held.lease_owner == ""
    step = held.steps.get(step_type="act")
    assert step.status == "awaiting_approval" and step.tool_input == ASKED
    approval = ApprovalRequest.objects.get()
    assert (approval.status, approval.risk_level, approval.action_type) == ("pending", "high", "email_send")
    assert approval.action_params == approval.original_params == ASKED
    assert approval.action_description == "Send an email to everyone@example.test: “Refund”"
    assert "every email sent is high risk" in approval.risk_explanation
    assert timedelta(hours=23) < approval.expires_at - timezone.now() <= timedelta(hours=24)
    assert mail.outbox == []
    assert ToolCall.objects.get(execution=held).status == "pending"
    # Approvers (owner, admin) are told in the app, and by email from a worker.
    assert set(Notification.objects.values_list("user__username", flat=True)) == {alice.username, adam.username}
    assert Notification.objects.filter(link=f"/approvals/{approval.pk}/").count() == 2
    assert approval_notify_by_email(approval=approval, base_url="https://agentry.example") == 2
    assert {m.to[0] for m in mail.outbox} == {alice.email, adam.email}
    assert f"https://agentry.example/approvals/{approval.pk}/" in mail.outbox[0].body
    requested = PlatformEvent.objects.get(event_type="ai.approval.requested")
    assert requested.payload["approval_id"] == str(approval.pk) and requested.payload["risk_level"] == "high"
    assert ExecutionEvent.objects.filter(execution=held, event="approval_requested").exists()


def test_approve_with_edited_parameters_runs_the_call_once_and_resumes(held, org, adam, providers_at_fake):
    approval = ApprovalRequest.objects.get()
    edited = {**ASKED, "to": ["customer@example.test"]}
    approval_resolve(
        approval=approval, actor=actor_for(adam, org), approved=True, note="Only the customer", params=edited
    )
    approval.refresh_from_db()
    assert (approval.status, approval.resolved_by, approval.resolution_note) == ("approved", adam, "Only the customer")
    assert approval.action_params == edited and approval.original_params == ASKED and approval.params_edited
    held.refresh_from_db()
    assert held.status == "running" and held.lease_owner == "" and held.lease_expires_at is None
    assert held.steps.get(step_type="act").status == "approved"

    run_execution(held.pk)  # what the queued task does on a worker
    held.refresh_from_db()
    assert held.status == "completed" and held.output == {"text": "Sent it."}
    (sent,) = mail.outbox
    assert sent.to == ["customer@example.test"]
    call = ToolCall.objects.get(execution=held)
    assert call.status == "completed" and call.input_params == edited
    # The model hears what really ran, since its own message still shows the first arguments.
    agent_calls = [r for r in providers_at_fake.chat_requests if "response_format" not in r.body]
    told = agent_calls[-1].body["messages"][-1]["content"]
    assert "changing its arguments" in told and "customer@example.test" in told

    run_execution(held.pk)  # a duplicate delivery of the task changes nothing
    assert len(mail.outbox) == 1
    with pytest.raises(ApiError) as excinfo:
        approval_resolve(approval=approval, actor=actor_for(adam, org), approved=False)
    assert excinfo.value.status_code == 409 and excinfo.value.details["status"] == "approved"
    resolved = PlatformEvent.objects.get(event_type="ai.approval.resolved")
    assert resolved.payload["approved"] is True and resolved.payload["resolved_by"] == adam.pk
    assert ActivityLog.objects.filter(action="approval.approved", user=adam).exists()


def test_approve_as_asked(held, org, alice):
    approval = ApprovalRequest.objects.get()
    approval_resolve(approval=approval, actor=actor_for(alice, org), approved=True)
    run_execution(held.pk)
    held.refresh_from_db()
    assert held.status == "completed" and mail.outbox[0].to == ASKED["to"]
    assert not ApprovalRequest.objects.get().params_edited


def test_invalid_edits_change_nothing(held, org, adam):
    approval = ApprovalRequest.objects.get()
    for params in (
        {"to": "not-a-list", "subject": "s", "body": "b"},
        {"subject": "missing to"},
        ["not", "an", "object"],
    ):
        with pytest.raises(ApiError) as excinfo:
            approval_resolve(approval=approval, actor=actor_for(adam, org), approved=True, params=params)
        assert excinfo.value.status_code == 400 and "params" in excinfo.value.details["validation_errors"]
    approval.refresh_from_db()
    held.refresh_from_db()
    assert approval.status == "pending" and held.status == "waiting_approval"
    assert held.steps.get(step_type="act").tool_input == ASKED
    with pytest.raises(ApiError) as excinfo:
        approval_resolve(approval=approval, actor=actor_for(adam, org), approved=False, params=ASKED)
    assert excinfo.value.status_code == 400


def test_deny_cancels_the_run_with_the_note(held, org, adam):
    approval = ApprovalRequest.objects.get()
    approval_resolve(approval=approval, actor=actor_for(adam, org), approved=False, note="Not to everyone!")
    held.refresh_from_db()
    assert held.status == "cancelled" and held.error_code == "ApprovalDenied"
    assert held.error == f"Denied by {adam.username}: Not to everyone!"
    step = held.steps.get(step_type="act")
    assert step.status == "denied" and step.tool_output["error"] == held.error
    assert ToolCall.objects.get(execution=held).status == "denied"
    run_execution(held.pk)  # never resumed
    assert mail.outbox == [] and Execution.objects.get(pk=held.pk).status == "cancelled"
    held.agent.refresh_from_db()
    assert held.agent.cancelled_runs == 1 and held.agent.active_runs == 0
    assert PlatformEvent.objects.get(event_type="ai.approval.resolved").payload["approved"] is False
    with pytest.raises(ApiError) as excinfo:
        approval_resolve(approval=approval, actor=actor_for(adam, org), approved=True)
    assert excinfo.value.status_code == 409


def test_expiry_cancels_the_run(held, org, adam):
    from io import StringIO

    from django.core.management import call_command

    approval = ApprovalRequest.objects.get()
    assert approvals_expire() == 0  # not due yet
    ApprovalRequest.objects.filter(pk=approval.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ApiError) as excinfo:  # past its time, not yet swept: still no decision
        approval_resolve(approval=approval, actor=actor_for(adam, org), approved=True)
    assert excinfo.value.status_code == 409
    out = StringIO()
    call_command("expire_approvals", stdout=out)
    assert "expired 1" in out.getvalue()
    approval.refresh_from_db()
    held.refresh_from_db()
    assert approval.status == "expired" and held.status == "cancelled" and held.error_code == "ApprovalExpired"
    assert held.steps.get(step_type="act").status == "denied"
    assert mail.outbox == [] and approvals_expire() == 0
    assert PlatformEvent.objects.get(event_type="ai.approval.resolved").payload["status"] == "expired"


def test_a_run_cancelled_while_waiting_closes_its_request(held, org, alice):
    execution_cancel(execution=held, actor=actor_for(alice, org))
    approval = ApprovalRequest.objects.get()
    assert approval.status == "cancelled"
    assert held.steps.get(step_type="act").status == "denied"
    with pytest.raises(ApiError) as excinfo:
        approval_resolve(approval=approval, actor=actor_for(alice, org), approved=True)
    assert excinfo.value.status_code == 409


def test_waiting_for_a_person_does_not_count_against_the_timeout(held, org, adam):
    approval = ApprovalRequest.objects.get()
    # The request was opened an hour ago, when the run had 60 s of its budget left.
    hour_ago = timezone.now() - timedelta(hours=1)
    ApprovalRequest.objects.filter(pk=approval.pk).update(created_at=hour_ago)
    Execution.objects.filter(pk=held.pk).update(deadline_at=hour_ago + timedelta(seconds=60))
    approval.refresh_from_db()
    approval_resolve(approval=approval, actor=actor_for(adam, org), approved=True)
    held.refresh_from_db()
    assert timedelta(seconds=50) < held.deadline_at - timezone.now() <= timedelta(seconds=61)
    run_execution(held.pk)
    held.refresh_from_db()
    assert held.status == "completed"


def test_a_constraint_holds_back_a_harmless_tool(org, alice, make_agent, providers_at_fake, synced_tools):
    agent = make_agent(
        name="Careful",
        allowed_tools=["task_create"],
        constraints=[{"text": "Tasks need a manager's OK", "requires_approval_for": ["task_*"]}],
    )
    AgentCapabilityGrant.objects.create(organization=org, agent=agent, capabilities=["create_tasks"])
    providers_at_fake.script(tool_call("task_create", {"title": "Call Bob"}), text("Created."))
    execution, _ = execution_start(agent=agent, organization=org, task="Remind me to call Bob")
    run_execution(execution.pk)
    approval = ApprovalRequest.objects.get(execution=execution)
    assert approval.risk_explanation == "Agent constraint: Tasks need a manager's OK"
    approval_resolve(approval=approval, actor=actor_for(alice, org), approved=True)
    run_execution(execution.pk)
    from tools.models import Task

    assert list(Task.objects.values_list("title", flat=True)) == ["Call Bob"]
    assert Execution.objects.get(pk=execution.pk).status == "completed"


def test_two_held_calls_in_one_step_are_decided_one_after_the_other(
    org, alice, make_agent, providers_at_fake, synced_tools
):
    from bench.fakes.script import FakeToolCall, Reply

    agent = make_agent(name="Double", allowed_tools=["email_send"], limits={"max_tool_calls_per_step": 3})
    AgentCapabilityGrant.objects.create(organization=org, agent=agent, capabilities=["send_emails"])
    two = Reply(
        tool_calls=[
            FakeToolCall(name="email_send", arguments={**ASKED, "to": ["one@example.test"]}),
            FakeToolCall(name="email_send", arguments={**ASKED, "to": ["two@example.test"]}),
        ]
    )
    providers_at_fake.script(two, text("Both sent."))
    execution, _ = execution_start(agent=agent, organization=org, task="Email both")
    run_execution(execution.pk)
    first = ApprovalRequest.objects.get(execution=execution)
    approval_resolve(approval=first, actor=actor_for(alice, org), approved=True)
    run_execution(execution.pk)  # runs the first, then holds the second
    second = ApprovalRequest.objects.exclude(pk=first.pk).get(execution=execution)
    assert second.action_params["to"] == ["two@example.test"]
    approval_resolve(approval=second, actor=actor_for(alice, org), approved=False, note="one is enough")
    assert [m.to for m in mail.outbox] == [["one@example.test"]]
    assert Execution.objects.get(pk=execution.pk).status == "cancelled"
    assert list(
        ExecutionStep.objects.filter(execution=execution, step_type="act").values_list("status", flat=True)
    ) == [
        "completed",
        "denied",
    ]
