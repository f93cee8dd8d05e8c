"""Organization-wide agent statistics (``agents/stats/``), an agent's daily trends and its
recent runs (in its detail).

Totals come from the agents' counters (DESIGN.md §4: kept in the transaction that ends a
run); trends and recent runs read the runs through the agent's reverse relation
(``Agent.executions``), so this module needs nothing from the executions app.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.access import Actor
from agents.models import Agent
from agents.selectors import agent_list, agent_stats

MAX_TREND_DAYS = 366
TOP_AGENTS = 5
RECENT_EXECUTIONS = 5
UTC = timezone.get_fixed_timezone(0)
FAILED = ("failed", "timed_out")  # as the agent's counters count them


def _rate(part: int, whole: int) -> float:
    return round(part * 100 / whole, 2) if whole else 0.0


def agent_trends(agents: QuerySet[Agent], *, days: int) -> list[dict[str, Any]]:
    """Per day (UTC) over the last ``days`` days: runs, outcomes, success rate and the average
    duration of the runs that ended; days without runs are listed with zeros."""
    today = timezone.now().astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    ended = ~Q(executions__duration_ms=None) & ~Q(executions__status="cancelled")
    rows = (
        agents.filter(executions__created_at__gte=datetime.combine(first, time.min, UTC))
        .annotate(day=TruncDate("executions__created_at", tzinfo=UTC))
        .values("day")
        .annotate(
            runs=Count("executions"),
            completed=Count("executions", filter=Q(executions__status="completed")),
            failed=Count("executions", filter=Q(executions__status__in=FAILED)),
            cancelled=Count("executions", filter=Q(executions__status="cancelled")),
            avg_duration=Avg("executions__duration_ms", filter=ended),
            cost=Sum("executions__cost"),
        )
        .order_by("day")
    )
    by_day: dict[Any, dict[str, Any]] = {row["day"]: dict(row) for row in rows}
    trend = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row: dict[str, Any] = by_day.get(day, {})
        completed, failed = row.get("completed", 0), row.get("failed", 0)
        trend.append(
            {
                "date": day.isoformat(),
                "runs": row.get("runs", 0),
                "completed": completed,
                "failed": failed,
                "cancelled": row.get("cancelled", 0),
                "success_rate": _rate(completed, completed + failed),
                "avg_response_time_ms": round(row["avg_duration"]) if row.get("avg_duration") is not None else None,
                "cost": str(row.get("cost") or Decimal("0")),
            }
        )
    return trend


def agent_org_stats(*, actor: Actor, days: int = 30) -> dict[str, Any]:
    """The agents the actor may see: by status, runtime state and type; their runs, success
    rate and cost; the top agents by runs; and the daily trends."""
    agents = agent_list(actor=actor)
    plain = agents.order_by()

    def counted(field: str) -> dict[str, int]:
        return {row[field]: row["n"] for row in plain.values(field).annotate(n=Count("id")).order_by(field)}

    totals = plain.aggregate(
        agents=Count("id"),
        runs=Sum("total_runs"),
        successful=Sum("successful_runs"),
        failed=Sum("failed_runs"),
        cancelled=Sum("cancelled_runs"),
        tokens=Sum("total_tokens_used"),
        cost=Sum("total_cost"),
        duration=Sum("total_duration_ms"),
    )
    runs = totals["runs"] or 0
    top = agents.order_by("-total_runs", "-total_cost", "id")[:TOP_AGENTS]
    return {
        "agents": {
            "total": totals["agents"],
            "by_status": counted("status"),
            "by_runtime_state": counted("runtime_state"),
            "by_type": counted("agent_type"),
        },
        "runs": {
            "total": runs,
            "successful": totals["successful"] or 0,
            "failed": totals["failed"] or 0,
            "cancelled": totals["cancelled"] or 0,
            "success_rate": _rate(totals["successful"] or 0, runs),
            "avg_response_time_ms": round((totals["duration"] or 0) / runs) if runs else 0,
            "tokens": totals["tokens"] or 0,
            "cost": str(totals["cost"] or Decimal("0")),
        },
        "top_agents": [{"id": str(agent.pk), "name": agent.name, **_top_fields(agent_stats(agent))} for agent in top],
        "trends": agent_trends(plain, days=days),
        "days": days,
    }


def _top_fields(stats: dict[str, Any]) -> dict[str, Any]:
    keep = ("total_runs", "success_rate", "total_cost", "avg_response_time_ms", "last_run_at")
    return {key: stats[key] for key in keep}


def agent_recent_executions(*, agent: Agent, limit: int = RECENT_EXECUTIONS) -> list[dict[str, Any]]:
    """The agent's latest runs, newest first: enough to see how it has been doing."""
    fields = ("id", "status", "trigger_type", "error_code", "tokens_total", "cost", "duration_ms", "created_at")
    rows = agent.executions.order_by("-created_at").values(*fields)[:limit]  # type: ignore[attr-defined]
    return [
        {
            **row,
            "id": str(row["id"]),
            "cost": str(row["cost"]),
            "created_at": row["created_at"].isoformat(),
        }
        for row in rows
    ]
