"""Keeping AgentGoal rows in step with ``Agent.goals`` and evaluating them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from agents.goals import agent_counters, goal_evaluate
from agents.models import Agent, AgentGoal
from agents.validation import deadline_of

# Changing any of these restarts the goal's measurement.
DEFINITION_FIELDS = ("success_metric", "target_value", "comparison", "window", "is_recurring", "deadline")


def _row_values(goal: dict[str, Any], position: int) -> dict[str, Any]:
    return {
        "description": goal.get("description") or "",
        "priority": goal.get("priority") or 5,
        "success_metric": goal.get("metric") or "",
        "target_value": Decimal(str(goal["target"])) if goal.get("target") is not None else None,
        "comparison": goal.get("comparison") or "gte",
        "window": goal.get("window") or "all_time",
        "is_recurring": goal.get("is_recurring", True),
        "deadline": deadline_of(goal),
        "position": position,
    }


@transaction.atomic
def agent_goals_sync(*, agent: Agent) -> None:
    """Upsert one AgentGoal per entry of ``agent.goals`` (by name), delete the rest, and
    evaluate them at once so the admin and ``metrics/`` show a value from the start."""
    existing = {goal.name.lower(): goal for goal in AgentGoal.objects.select_for_update().filter(agent=agent)}
    wanted = set()
    for position, goal in enumerate(agent.goals or []):
        key = goal["name"].lower()
        wanted.add(key)
        values = _row_values(goal, position)
        row = existing.get(key)
        if row is None:
            AgentGoal.objects.create(agent=agent, name=goal["name"], **values)
            continue
        changed = [field for field, value in values.items() if getattr(row, field) != value]
        if row.name != goal["name"]:
            row.name = goal["name"]
            changed.append("name")
        if not changed:
            continue
        for field in changed:
            setattr(row, field, values.get(field, getattr(row, field)))
        if set(changed) & set(DEFINITION_FIELDS):
            row.current_value, row.is_achieved, row.achieved_at = None, False, None
            row.window_started_at, row.window_baseline, row.evaluated_at = None, {}, None
            changed += ["current_value", "is_achieved", "achieved_at", "window_started_at", "window_baseline"]
            changed.append("evaluated_at")
        row.save(update_fields=[*set(changed), "updated_at"])
    stale = [row.pk for key, row in existing.items() if key not in wanted]
    if stale:
        AgentGoal.objects.filter(pk__in=stale).delete()
    agent_goals_evaluate(agent=agent)


@transaction.atomic
def agent_goals_evaluate(*, agent: Agent, now: datetime | None = None) -> list[AgentGoal]:
    """Recompute every goal of the agent from its counters (after each run, and daily).

    The goal rows are locked so the after-run task and the daily sweep never interleave.
    """
    now = now or timezone.now()
    fresh = Agent.objects.filter(pk=agent.pk).first()
    if fresh is None:
        return []
    counters = agent_counters(fresh)
    goals = list(AgentGoal.objects.select_for_update().filter(agent_id=agent.pk))
    for goal in goals:
        changed = goal_evaluate(goal, counters, now)
        if changed:
            goal.save(update_fields=[*changed, "updated_at"])
    return goals


def agent_goals_evaluate_all(*, now: datetime | None = None) -> int:
    """The daily sweep: every live agent that has goals. Returns how many were evaluated."""
    agent_ids = AgentGoal.objects.filter(agent__deleted_at__isnull=True).values_list("agent_id", flat=True).distinct()
    count = 0
    for agent in Agent.objects.filter(pk__in=list(agent_ids)).only("pk").iterator():
        agent_goals_evaluate(agent=agent, now=now)
        count += 1
    return count
