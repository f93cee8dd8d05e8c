"""``chains/{id}/suggestions/``: what the chain's own history and definition say could be
better. Reads only (a selector module): the last ``HISTORY_RUNS`` chain runs' step attempts,
and the definition's mappings.

- slow: a step whose average duration is at least ``SLOW_SHARE`` of the chain's step time
  (with two or more steps) — where a faster model or a tighter task would pay off most;
- failing: a step whose attempts fail (failed or timed out) at ``FAILING_RATE`` or more,
  over at least ``MIN_ATTEMPTS`` attempts — a candidate for a fallback step or retries;
- unused output: a step before the last with no output_mapping whose result no later step
  reads (``steps.<id>…``): it runs, costs, and nothing takes its answer.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q, Sum

from agents.models import AgentChain, ChainExecution, ChainStepRun

HISTORY_RUNS = 200
SLOW_SHARE = 0.5
FAILING_RATE = 0.2
MIN_ATTEMPTS = 3


def _later_text(steps: list[dict[str, Any]], index: int) -> str:
    later = steps[index + 1 :]
    return json.dumps([[s.get("input_mapping"), s.get("condition")] for s in later], default=str)


def chain_suggestions(*, chain: AgentChain) -> dict[str, Any]:
    recent = list(
        ChainExecution.objects.filter(chain=chain).order_by("-created_at").values_list("pk", flat=True)[:HISTORY_RUNS]
    )
    duration = ExpressionWrapper(F("completed_at") - F("started_at"), output_field=DurationField())
    rows = (
        ChainStepRun.objects.filter(chain_execution_id__in=recent)
        .exclude(status__in=["scheduled", "running", "waiting", "skipped"])
        .values("step_id")
        .annotate(
            attempts=Count("id"),
            failed=Count("id", filter=Q(status__in=["failed", "timed_out"])),
            avg_duration=Avg(duration, filter=Q(started_at__isnull=False, completed_at__isnull=False)),
            cost=Sum("cost"),
        )
        .order_by("step_id")
    )
    stats = {
        row["step_id"]: {
            "attempts": row["attempts"],
            "failed": row["failed"],
            "failure_rate": round(row["failed"] / row["attempts"], 3),
            "avg_duration_ms": int(row["avg_duration"].total_seconds() * 1000) if row["avg_duration"] else None,
            "cost": str(row["cost"]),
        }
        for row in rows
    }
    steps = list(chain.steps or [])
    total_ms = sum(s["avg_duration_ms"] or 0 for s in stats.values())
    suggestions: list[dict[str, Any]] = []
    for index, step in enumerate(steps):
        step_id = step["id"]
        seen = stats.get(step_id)
        if seen and len(steps) > 1 and total_ms and (seen["avg_duration_ms"] or 0) >= SLOW_SHARE * total_ms:
            suggestions.append(
                {
                    "kind": "slow_step",
                    "step_id": step_id,
                    "message": f"Step {step_id!r} takes {seen['avg_duration_ms']} ms on average, "
                    f"{round((seen['avg_duration_ms'] or 0) * 100 / total_ms)}% of the chain's step time: "
                    "a faster model or a narrower task would shorten the chain most here.",
                    "evidence": seen,
                }
            )
        if seen and seen["attempts"] >= MIN_ATTEMPTS and seen["failure_rate"] >= FAILING_RATE:
            suggestions.append(
                {
                    "kind": "failing_step",
                    "step_id": step_id,
                    "message": f"Step {step_id!r} failed {seen['failed']} of its last {seen['attempts']} attempts: "
                    "give it retries or a fallback step (on_error), or look at its runs' errors.",
                    "evidence": seen,
                }
            )
        last = index == len(steps) - 1
        if not last and not step.get("output_mapping") and f"steps.{step_id}." not in _later_text(steps, index):
            suggestions.append(
                {
                    "kind": "unused_output",
                    "step_id": step_id,
                    "message": f"No later step reads the result of {step_id!r} and it maps no variables: "
                    "add an output_mapping that a later step uses, or remove the step.",
                    "evidence": stats.get(step_id) or {},
                }
            )
    return {
        "chain_id": str(chain.pk),
        "runs_analysed": len(recent),
        "steps": stats,
        "suggestions": suggestions,
    }
