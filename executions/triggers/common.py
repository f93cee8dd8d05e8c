"""What every trigger shares: which agents triggers may start, and starting one or recording
why it was refused."""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import Q, QuerySet

from accounts.access import Actor
from agents.models import Agent, AgentConfiguration
from config.api.errors import ApiError
from executions.models import Execution, TriggerAttempt
from executions.services import execution_start

logger = logging.getLogger(__name__)

RUNNABLE = ("published", "deprecated")


def trigger_agents(*, organization: Any) -> QuerySet[Agent]:
    """Agents triggers may start in ``organization``: its own active, runnable agents, and
    active platform agents it has switched on with an active configuration."""
    configured = AgentConfiguration.objects.filter(organization=organization, is_active=True).values("agent_id")
    return (
        Agent.objects.filter(is_active=True, deleted_at__isnull=True, status__in=RUNNABLE)
        .exclude(current_version__isnull=True)
        .filter(Q(organization=organization) | Q(organization__isnull=True, pk__in=configured))
        .select_related("current_version")
    )


def trigger_attempt_refused(
    *, organization: Any, agent: Agent | None, trigger_type: str, error: ApiError, trigger_data: dict | None = None
) -> TriggerAttempt:
    return TriggerAttempt.objects.create(
        organization=organization,
        agent=agent,
        trigger_type=trigger_type,
        code=error.code,
        message=error.message,
        details=error.details,
        trigger_data=trigger_data or {},
    )


def trigger_start(
    *,
    agent: Agent,
    organization: Any,
    trigger_type: str,
    task: str,
    context: dict[str, Any] | None = None,
    trigger_data: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    actor: Actor | None = None,
    parent: Execution | None = None,
) -> tuple[Execution | None, bool, TriggerAttempt | None]:
    """Start a run for a trigger: (execution, created, None), or (None, False, attempt) when
    a limit, quota or the input refused it. The agent's max_runs_per_hour/day and the
    organization's quotas are checked by ``execution_start`` under the agent's row lock."""
    try:
        execution, created = execution_start(
            agent=agent,
            organization=organization,
            task=task,
            context=context or {},
            actor=actor,
            trigger_type=trigger_type,
            trigger_data=trigger_data or {},
            idempotency_key=idempotency_key,
            parent=parent,
        )
    except ApiError as error:
        logger.info("%s trigger of agent %s refused: %s", trigger_type, agent.pk, error.code)
        attempt = trigger_attempt_refused(
            organization=organization,
            agent=agent,
            trigger_type=trigger_type,
            error=error,
            trigger_data=trigger_data,
        )
        return None, False, attempt
    return execution, created, None


def refusal_dict(attempt: TriggerAttempt) -> dict[str, Any]:
    return {
        "attempt_id": str(attempt.pk),
        "agent_id": str(attempt.agent_id) if attempt.agent_id else None,
        "code": attempt.code,
        "message": attempt.message,
        "details": attempt.details,
    }
