"""Reporting a goal's custom metric (``POST agents/{id}/goals/{goal_id}/progress/``).

A platform metric (``agents.goals.METRICS``, or one of its aliases) is measured by the
platform and cannot be reported; any other metric is custom: each report is kept (the
history), the newest by ``recorded_at`` is the goal's ``current_value``, and the goal is
judged against its target at once. Reaching it emits ``ai.goal.achieved``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from agents.goals import compare, platform_metric
from agents.models import Agent, AgentGoal, GoalProgress
from agents.services.common import emit, record, require
from config.api.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from accounts.access import Actor


def goal_get(*, agent: Agent, goal_id: Any) -> AgentGoal:
    goal = AgentGoal.objects.filter(agent=agent, pk=goal_id).first() if _is_uuid(goal_id) else None
    if goal is None:
        raise NotFound(f"Agent {agent.pk} has no goal {goal_id}.", details={"goal_id": str(goal_id)})
    return goal


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@transaction.atomic
def goal_progress_record(
    *, actor: Actor, agent: Agent, goal: AgentGoal, value: Decimal, recorded_at: datetime | None = None
) -> GoalProgress:
    require(actor, agent, "write")
    if not goal.success_metric:
        raise InvalidInput(validation_errors={"value": ["This goal has no metric to report."]})
    if platform_metric(goal.success_metric) is not None:
        raise InvalidInput(
            validation_errors={
                "value": [
                    f"{goal.success_metric!r} is measured by the platform from the agent's runs; it cannot be reported."
                ]
            }
        )
    now = timezone.now()
    if recorded_at is not None and recorded_at > now:
        raise InvalidInput(validation_errors={"recorded_at": ["Must not be in the future."]})
    locked = AgentGoal.objects.select_for_update().get(pk=goal.pk)
    progress = GoalProgress.objects.create(
        goal=locked,
        value=value,
        recorded_at=recorded_at or now,
        recorded_by=actor.user,  # type: ignore[misc]
    )
    newest = GoalProgress.objects.filter(goal=locked).order_by("-recorded_at", "-id").first()
    assert newest is not None
    was_achieved = locked.is_achieved
    frozen = locked.deadline is not None and locked.deadline <= now
    if not frozen and not (was_achieved and not locked.is_recurring):
        locked.current_value = newest.value
        locked.is_achieved = locked.target_value is not None and compare(
            newest.value, locked.comparison, locked.target_value
        )
        locked.achieved_at = (locked.achieved_at or now) if locked.is_achieved else None
        locked.evaluated_at = now
        locked.save(update_fields=["current_value", "is_achieved", "achieved_at", "evaluated_at", "updated_at"])
    record(actor=actor, agent=agent, action="agent.goal_progress", summary={"goal": locked.name, "value": str(value)})
    if locked.is_achieved and not was_achieved:
        emit(
            agent,
            "ai.goal.achieved",
            {
                "agent_id": agent.pk,
                "goal_id": locked.pk,
                "name": locked.name,
                "metric": locked.success_metric,
                "value": str(locked.current_value),
                "target": str(locked.target_value),
            },
        )
    goal.refresh_from_db()
    return progress
