"""Ending a tool call held for a person's decision (the run waits in ``waiting_approval``).

The approvals app decides; the run and its steps are written here, its tool-call rows by the
tools app through the tool port (``held_call_approved``, ``held_call_denied``), so approvals
never changes another app's rows. Every function runs
inside the caller's transaction, and the caller holds the run's row lock
(``select_for_update(no_key=True)``) from before it checked the run's status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from executions.models import Execution, ExecutionLog, ExecutionStatus, ExecutionStep, StepStatus
from executions.runtime.buffers import event_buffer_for
from executions.runtime.finish import Stop, finish_execution
from executions.runtime.tools_port import tool_port
from executions.state import transition
from executions.tasks import enqueue_execution

S = ExecutionStatus


def held_call_resume(
    *,
    execution: Execution,
    step_number: int,
    params: Any,
    edited: bool,
    approval_id: Any,
    held_since: datetime,
    approver: str = "an approver",
    note: str = "",
) -> None:
    """Approved: the held step runs with ``params`` (edited or not). The run goes back to
    ``running`` without a lease and is queued; the worker that claims it makes that one call
    first (``Runner.start_or_resume``). The time spent waiting for a person does not count
    against the run's timeout."""
    step = ExecutionStep.objects.select_for_update().get(execution_id=execution.pk, step_number=step_number)
    step.tool_input, step.status = params, StepStatus.APPROVED
    step.save(update_fields=["tool_input", "status"])
    tool_port().held_call_approved(execution_id=execution.pk, step_number=step_number, params=params, edited=edited)
    now = timezone.now()
    deadline = execution.deadline_at + (now - held_since) if execution.deadline_at else None
    transition(
        execution,
        S.RUNNING,
        expect=S.WAITING_APPROVAL,
        lease_owner="",
        lease_expires_at=None,
        deadline_at=deadline,
    )
    events = event_buffer_for(execution.pk)
    events.add("approval_resolved", {"approval_id": str(approval_id), "approved": True, "step_number": step_number})
    events.add("status", {"status": S.RUNNING})
    events.flush()
    ExecutionLog.objects.create(
        execution=execution,
        message=f"Approved by {approver}" + (" with edited arguments" if edited else "") + "; the run resumes.",
        metadata={"approval_id": str(approval_id), "step_number": step_number, "note": note[:200]},
    )
    enqueue_execution(execution.pk)


def held_call_end(
    *,
    execution: Execution,
    step_number: int,
    approval_id: Any,
    reason: str,
    code: str,
    note: str = "",
    action: str = "",
) -> None:
    """Denied or expired: the held step is denied with ``reason`` and, if the run still waits
    for this decision, it is cancelled (``code``: ApprovalDenied, ApprovalExpired)."""
    _deny_step(execution.pk, step_number, reason, completed_at=timezone.now())
    if execution.status != S.WAITING_APPROVAL:
        return
    events = event_buffer_for(execution.pk)
    events.add(
        "approval_resolved",
        {"approval_id": str(approval_id), "approved": False, "step_number": step_number, "reason": reason},
    )
    ExecutionLog.objects.create(
        execution=execution,
        level="warn",
        message=f"The held call to {action or 'the tool'!r} was not approved: {reason}"[:4000],
        metadata={"approval_id": str(approval_id), "step_number": step_number, "code": code},
    )
    finish_execution(
        execution,
        Stop(S.CANCELLED, reason, code, {"approval_id": str(approval_id), "note": note}),
        events=events,
    )


def held_call_close(*, execution_id: Any, step_number: int, reason: str) -> None:
    """The run ended another way (cancelled on request, say): a step still waiting for a
    decision is denied, so nothing is left looking open."""
    _deny_step(execution_id, step_number, reason)


def _deny_step(execution_id: Any, step_number: int, reason: str, **extra: Any) -> None:
    ExecutionStep.objects.filter(
        execution_id=execution_id, step_number=step_number, status=StepStatus.AWAITING_APPROVAL
    ).update(status=StepStatus.DENIED, tool_output={"error": reason, "status": "denied"}, is_error=True, **extra)
    tool_port().held_call_denied(execution_id=execution_id, step_number=step_number, reason=reason)
