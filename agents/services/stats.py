"""What the execution runtime calls to keep an agent's counters (DESIGN.md §4: updated in the
transaction that finishes an execution, with F() expressions, never by recounting)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from agents.models import Agent, AgentGoal
from agents.tasks import evaluate_agent_goals

SUCCESS_STATUSES = frozenset({"completed"})
FAILURE_STATUSES = frozenset({"failed", "timed_out"})  # timed out counts as failed
CANCELLED_STATUSES = frozenset({"cancelled"})


def agent_run_started(*, agent_id: Any) -> None:
    """A run of the agent began (makes its runtime state busy until it finishes)."""
    Agent.objects.filter(pk=agent_id).update(active_runs=F("active_runs") + 1)


def agent_stats_record_run(
    *,
    agent_id: Any,
    status: str,
    tokens: int = 0,
    actions: int = 0,
    cost: Decimal = Decimal("0"),
    duration_ms: int = 0,
    error: str = "",
    started: bool = True,
) -> None:
    """Count one finished run; call it inside the transaction that finishes the execution.

    ``started`` says whether ``agent_run_started`` was called for it (then the in-flight
    count goes down again). The agent's goals, if it has any, are re-evaluated once the
    transaction commits.
    """
    if status not in SUCCESS_STATUSES | FAILURE_STATUSES | CANCELLED_STATUSES:
        raise ValueError(f"not a final execution status: {status!r}")
    duration_ms = max(int(duration_ms), 0)
    # Tokens, actions and cost were spent whatever the ending; a cancelled run is counted
    # apart (cancelled_runs) and stays out of total_runs, so success rate and average
    # response time describe the runs that ran to an end.
    updates: dict[str, Any] = {
        "total_tokens_used": F("total_tokens_used") + int(tokens),
        "total_actions_taken": F("total_actions_taken") + int(actions),
        "total_cost": F("total_cost") + Decimal(str(cost)),
        "last_run_at": timezone.now(),
        "last_run_status": status,
    }
    if status not in CANCELLED_STATUSES:
        updates["total_runs"] = F("total_runs") + 1
        updates["total_duration_ms"] = F("total_duration_ms") + duration_ms
        # F() reads the row's values before this UPDATE: (old total + this) / (old runs + 1).
        updates["avg_response_time_ms"] = (F("total_duration_ms") + duration_ms) / (F("total_runs") + 1)
    if started:
        updates["active_runs"] = Greatest(F("active_runs") - 1, Value(0))
    if status in SUCCESS_STATUSES:
        updates["successful_runs"] = F("successful_runs") + 1
    elif status in FAILURE_STATUSES:
        updates["failed_runs"] = F("failed_runs") + 1
        updates["last_error"] = error or status
    else:
        updates["cancelled_runs"] = F("cancelled_runs") + 1
    Agent.objects.filter(pk=agent_id).update(**updates)
    if not AgentGoal.objects.filter(agent_id=agent_id).exists():
        return  # nothing to evaluate: no task, no queue hop, no worker connection for it

    def evaluate() -> None:
        evaluate_agent_goals.delay(str(agent_id))

    transaction.on_commit(evaluate)


def agent_stats_add_spend(*, agent_id: Any, tokens: int, cost: Decimal) -> None:
    """Spend on a run after it finished (memory extraction): into the totals, as its run's
    own tokens and cost were, so an agent's totals stay the sums over its executions."""
    Agent.objects.filter(pk=agent_id).update(
        total_tokens_used=F("total_tokens_used") + int(tokens), total_cost=F("total_cost") + Decimal(str(cost))
    )
