"""How a goal's success metric is measured and judged.

The narrow seam: ``agent_counters(agent)`` returns the agent's cumulative counters. Every
metric is a function of those counters, and a goal's *window* (day, week, month) is the
difference between the counters now and the counters when the window began
(``AgentGoal.window_baseline``), so windows work without recounting anything. Today the
counters are the Agent stats fields; a later change may compute them from executions (and
add counters for domain metrics such as ``leads_qualified``) without touching the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from agents.models import AgentGoal, GoalComparison, GoalWindow

if TYPE_CHECKING:
    from agents.models import Agent

Counters = Mapping[str, Decimal]
COUNTER_FIELDS = (
    "total_runs",
    "successful_runs",
    "failed_runs",
    "cancelled_runs",
    "total_tokens_used",
    "total_actions_taken",
    "total_cost",
    "total_duration_ms",
)
WINDOW_LENGTH = {
    GoalWindow.DAY: timedelta(days=1),
    GoalWindow.WEEK: timedelta(days=7),
    GoalWindow.MONTH: timedelta(days=30),
}
FOUR_PLACES = Decimal("0.0001")


def agent_counters(agent: Agent) -> dict[str, Decimal]:
    """The cumulative counters the metrics are computed from (the seam for executions)."""
    return {name: Decimal(getattr(agent, name) or 0) for name in COUNTER_FIELDS}


def _ratio(numerator: Decimal, denominator: Decimal, scale: int = 1) -> Decimal | None:
    if denominator <= 0:
        return None
    return numerator * scale / denominator


METRICS: dict[str, Callable[[Counters], Decimal | None]] = {
    "total_runs": lambda c: c["total_runs"],
    "successful_runs": lambda c: c["successful_runs"],
    "failed_runs": lambda c: c["failed_runs"],
    "cancelled_runs": lambda c: c["cancelled_runs"],
    "success_rate": lambda c: _ratio(c["successful_runs"], c["total_runs"], 100),
    "failure_rate": lambda c: _ratio(c["failed_runs"], c["total_runs"], 100),
    "total_tokens": lambda c: c["total_tokens_used"],
    "avg_tokens": lambda c: _ratio(c["total_tokens_used"], c["total_runs"]),
    "total_actions": lambda c: c["total_actions_taken"],
    "avg_actions": lambda c: _ratio(c["total_actions_taken"], c["total_runs"]),
    "total_cost": lambda c: c["total_cost"],
    "avg_cost": lambda c: _ratio(c["total_cost"], c["total_runs"]),
    "avg_response_time_ms": lambda c: _ratio(c["total_duration_ms"], c["total_runs"]),
}


# The reference's names for platform metrics.
METRIC_ALIASES = {"response_time": "avg_response_time_ms", "cost": "total_cost", "runs": "total_runs"}
METRIC_DESCRIPTIONS = {
    "total_runs": "Runs that ended (cancelled ones apart).",
    "successful_runs": "Runs that completed.",
    "failed_runs": "Runs that failed or timed out.",
    "cancelled_runs": "Runs cancelled.",
    "success_rate": "Completed runs per 100 runs that ended.",
    "failure_rate": "Failed or timed-out runs per 100 runs that ended.",
    "total_tokens": "Tokens used (model calls and memory extraction).",
    "avg_tokens": "Tokens per run.",
    "total_actions": "Actions taken (every tool call a run recorded).",
    "avg_actions": "Actions per run.",
    "total_cost": "US dollars spent.",
    "avg_cost": "US dollars per run.",
    "avg_response_time_ms": "Average duration of a run, in milliseconds.",
}


def platform_metric(metric: str) -> str | None:
    """The platform metric ``metric`` names (an alias resolved), or None: a custom metric,
    whose values are reported (``goal_progress_record``)."""
    name = METRIC_ALIASES.get(metric, metric)
    return name if name in METRICS else None


def metric_list() -> list[dict[str, object]]:
    aliases: dict[str, list[str]] = {}
    for alias, name in METRIC_ALIASES.items():
        aliases.setdefault(name, []).append(alias)
    return [
        {"name": name, "description": METRIC_DESCRIPTIONS[name], "aliases": sorted(aliases.get(name, []))}
        for name in METRICS
    ]


def metric_value(metric: str, counters: Counters, baseline: Mapping[str, object] | None = None) -> Decimal | None:
    """``metric`` over the counters since ``baseline``; None if unknown or not measurable yet."""
    compute = METRICS.get(METRIC_ALIASES.get(metric, metric))
    if compute is None:
        return None
    base = baseline or {}
    delta = {name: counters.get(name, Decimal(0)) - Decimal(str(base.get(name, 0))) for name in COUNTER_FIELDS}
    value = compute(delta)
    return None if value is None else value.quantize(FOUR_PLACES)


def compare(value: Decimal, comparison: str, target: Decimal) -> bool:
    return {
        GoalComparison.GT: value > target,
        GoalComparison.GTE: value >= target,
        GoalComparison.LT: value < target,
        GoalComparison.LTE: value <= target,
        GoalComparison.EQ: value == target.quantize(FOUR_PLACES),
    }[GoalComparison(comparison)]


def goal_status(goal: AgentGoal, now: datetime) -> str:
    """achieved, missed (deadline passed without it), or in_progress."""
    if goal.is_achieved:
        return "achieved"
    if goal.deadline is not None and goal.deadline <= now:
        return "missed"
    return "in_progress"


def goal_evaluate(goal: AgentGoal, counters: Counters, now: datetime) -> list[str]:
    """Recompute one goal in memory; returns the fields that changed (to save).

    - Past its deadline a goal is frozen: achieved or missed, no longer measured.
    - A one-off goal (is_recurring false), once achieved, stays achieved.
    - A recurring goal is judged per window and starts over when a window ends.
    """
    if goal.deadline is not None and goal.deadline <= now:
        return []
    if not goal.is_recurring and goal.is_achieved:
        return []
    if goal.success_metric and platform_metric(goal.success_metric) is None:
        return []  # a custom metric: its value is the last one reported, judged when reported
    changed = {"evaluated_at"}
    goal.evaluated_at = now
    length = WINDOW_LENGTH.get(GoalWindow(goal.window))
    if length is not None and (goal.window_started_at is None or now >= goal.window_started_at + length):
        # Keep the cadence (windows start at fixed intervals) unless a whole window was missed.
        start = now
        if goal.window_started_at is not None and now < goal.window_started_at + 2 * length:
            start = goal.window_started_at + length
        goal.window_started_at = start
        goal.window_baseline = {name: str(value) for name, value in counters.items()}
        changed |= {"window_started_at", "window_baseline"}
    baseline = goal.window_baseline if length is not None else None
    value = metric_value(goal.success_metric, counters, baseline) if goal.success_metric else None
    achieved = (
        value is not None and goal.target_value is not None and compare(value, goal.comparison, goal.target_value)
    )
    if value != goal.current_value:
        goal.current_value = value
        changed.add("current_value")
    if achieved != goal.is_achieved:
        goal.is_achieved = achieved
        goal.achieved_at = now if achieved else None
        changed |= {"is_achieved", "achieved_at"}
    return sorted(changed)
