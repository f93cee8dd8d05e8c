"""Runs waiting for a decision, made directly in the database (for API, page and race tests
that need many of them fast); the flow tests make them through the real runtime instead."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import F
from django.utils import timezone

from agents.models import Agent
from approvals.models import ApprovalRequest
from executions.models import Execution, ExecutionStatus, ExecutionStep, StepStatus, StepType

EMAIL = {"to": ["customer@example.test"], "subject": "Your refund", "body": "It is on its way."}


def pending_approvals(
    agent: Agent,
    organization: Any,
    count: int = 1,
    *,
    tool: str = "email_send",
    params: dict[str, Any] | None = None,
    risk_level: str = "high",
    expires_in: timedelta = timedelta(hours=24),
) -> list[ApprovalRequest]:
    """``count`` runs of ``agent`` parked in waiting_approval on one held call each."""
    params = dict(EMAIL if params is None else params)
    now = timezone.now()
    executions = Execution.objects.bulk_create(
        [
            Execution(
                organization=organization,
                agent=agent,
                agent_version=agent.current_version,
                config=agent.current_version.config,
                input={"task": f"Refund customer {i}", "context": {}},
                status=ExecutionStatus.WAITING_APPROVAL,
                started_at=now,
                deadline_at=now + timedelta(minutes=5),
            )
            for i in range(count)
        ]
    )
    # The runtime counted these runs as active when they started.
    Agent.objects.filter(pk=agent.pk).update(active_runs=F("active_runs") + count)
    steps = ExecutionStep.objects.bulk_create(
        [
            step
            for execution in executions
            for step in (
                ExecutionStep(
                    execution=execution,
                    step_number=1,
                    step_type=StepType.OBSERVE,
                    status=StepStatus.COMPLETED,
                    input_text=execution.task,
                ),
                ExecutionStep(
                    execution=execution,
                    step_number=2,
                    step_type=StepType.ACT,
                    status=StepStatus.AWAITING_APPROVAL,
                    tool_name=tool,
                    tool_call_id="call_1",
                    tool_input=params,
                ),
            )
        ]
    )
    held = [s for s in steps if s.step_type == StepType.ACT]
    return ApprovalRequest.objects.bulk_create(
        [
            ApprovalRequest(
                organization=organization,
                execution=execution,
                agent=agent,
                step=step,
                step_number=2,
                action_type=tool,
                action_description=f"Send an email to {', '.join(params.get('to', []))}",
                action_params=params,
                original_params=params,
                risk_level=risk_level,
                risk_explanation="Risk level: high (default rule: every email sent is high risk)",
                expires_at=now + expires_in,
            )
            for execution, step in zip(executions, held, strict=True)
        ]
    )
