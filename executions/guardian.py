"""Guardian agents' monitoring rules, evaluated on beat against the platform's own run data.

Every active, runnable guardian's current version is read (its ``type_config`` is versioned,
agents/types.py); each rule measures the agents it watches (``watched_agents``, or every
other agent of its organization) over the rule's window:

- failure_rate: failed or timed-out runs / runs that ended in the window (at least min_runs);
- cost: US dollars of the runs created in the window;
- latency_p50 / latency_p95: milliseconds of the runs completed in the window (at least min_runs);
- run_count: runs created in the window;
- approval_backlog: runs waiting for an approval now.

A value above the threshold is a breach. A breach records an alert (billing's Alert, kind
guardian_breach, unique per guardian, rule and window: evaluated again inside the same window
it alerts nothing more), emits ``ai.guardian.breach`` and, with ``action: run``, starts a run
of the guardian with the breach as its context. All three in one transaction per rule.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Aggregate, Count, FloatField, Q, Sum
from django.utils import timezone

from agents.config import agent_version_config
from agents.models import Agent, AgentType
from agents.selectors import RUNNABLE_STATUSES
from agents.types import window_seconds
from billing.alerts import alert_raise
from billing.models import Alert
from config.api.errors import ApiError
from executions.events import event_emit
from executions.models import Execution, ExecutionStatus, TriggerType
from executions.services import execution_start

logger = logging.getLogger(__name__)

S = ExecutionStatus


class Percentile(Aggregate):
    """PostgreSQL's percentile_cont over one column."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=float(fraction), **extra)


def measure(*, metric: str, agent_ids: list[Any], organization_id: Any, since: datetime) -> tuple[float, int]:
    """(the metric's value, how many runs it was measured over)."""
    runs = Execution.objects.filter(organization_id=organization_id, agent_id__in=agent_ids)
    if metric == "failure_rate":
        ended = runs.filter(completed_at__gte=since, status__in=[S.COMPLETED, S.FAILED, S.TIMED_OUT]).aggregate(
            total=Count("pk"), failed=Count("pk", filter=Q(status__in=[S.FAILED, S.TIMED_OUT]))
        )
        return (ended["failed"] / ended["total"] if ended["total"] else 0.0), ended["total"]
    if metric == "cost":
        row = runs.filter(created_at__gte=since).aggregate(cost=Sum("cost"), n=Count("pk"))
        return float(row["cost"] or 0), row["n"]
    if metric in ("latency_p50", "latency_p95"):
        fraction = 0.5 if metric == "latency_p50" else 0.95
        row = runs.filter(status=S.COMPLETED, completed_at__gte=since, duration_ms__isnull=False).aggregate(
            value=Percentile("duration_ms", fraction), n=Count("pk")
        )
        return float(row["value"] or 0), row["n"]
    if metric == "run_count":
        n = runs.filter(created_at__gte=since).count()
        return float(n), n
    if metric == "approval_backlog":
        n = runs.filter(status=S.WAITING_APPROVAL).count()
        return float(n), n
    raise ValueError(f"unknown monitoring metric {metric!r}")


def _watched(guardian: Agent, type_config: dict[str, Any]) -> list[str]:
    assert guardian.organization_id is not None  # guardians_scan takes organizations' agents only
    ids = [str(i) for i in type_config.get("watched_agents") or []]
    if ids:
        return ids
    return [
        str(pk)
        for pk in Agent.objects.filter(organization_id=guardian.organization_id, deleted_at__isnull=True)
        .exclude(pk=guardian.pk)
        .values_list("pk", flat=True)
    ]


def _window_start(now: datetime, seconds: int) -> datetime:
    # Windows are aligned on the epoch, so every evaluation inside one finds the same alert key.
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=now.tzinfo)


def guardian_evaluate(guardian: Agent, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Evaluate one guardian's rules; returns the breaches it alerted (new ones only)."""
    now = now or timezone.now()
    if guardian.current_version is None:
        return []
    config = agent_version_config(guardian.current_version)
    if config.get("agent_type") != AgentType.GUARDIAN:
        return []  # the current version is not a guardian's (the draft's type changed since)
    type_config = config.get("type_config") or {}
    rules = type_config.get("monitoring_rules") or []
    if not rules:
        return []
    watched = _watched(guardian, type_config)
    breaches = []
    for rule in rules:
        seconds = window_seconds(rule["window"])
        value, sample = measure(
            metric=rule["metric"],
            agent_ids=watched,
            organization_id=guardian.organization_id,
            since=now - timedelta(seconds=seconds),
        )
        if rule["metric"] in ("failure_rate", "latency_p50", "latency_p95") and sample < rule.get("min_runs", 1):
            continue
        if value <= rule["threshold"]:
            continue
        breach = _breach(guardian, rule, value=value, sample=sample, watched=watched, now=now, seconds=seconds)
        if breach is not None:
            breaches.append(breach)
    return breaches


@transaction.atomic
def _breach(
    guardian: Agent, rule: dict[str, Any], *, value: float, sample: int, watched: list[str], now: datetime, seconds: int
) -> dict[str, Any] | None:
    start = _window_start(now, seconds)
    key = f"{guardian.pk}:{rule['name']}:{start:%Y%m%dT%H%M}"
    message = (
        f"Guardian {guardian.name!r}: {rule['metric']} was {round(value, 4)} over the last {rule['window']}, "
        f"above its threshold {rule['threshold']} (rule {rule['name']}, {rule['severity']})."
    )
    payload: dict[str, Any] = {
        "guardian_id": str(guardian.pk),
        "guardian_name": guardian.name,
        "rule": rule["name"],
        "metric": rule["metric"],
        "value": round(value, 6),
        "threshold": rule["threshold"],
        "window": rule["window"],
        "window_start": start.isoformat(),
        "severity": rule["severity"],
        "action": rule["action"],
        "sample_size": sample,
        "watched_agents": watched,
    }
    alert = alert_raise(
        organization_id=guardian.organization_id,
        kind=Alert.Kind.GUARDIAN_BREACH,
        key=key,
        message=message,
        details=payload,
    )
    if alert is None:
        return None  # this rule already alerted in this window
    payload.update({"alert_id": str(alert.pk), "execution_id": None, "run_error": None})
    if rule["action"] == "run":
        try:
            execution, _ = execution_start(
                agent=guardian,
                organization=guardian.organization,
                task=f"{message} Investigate the watched agents' recent runs and tell a human what needs attention.",
                context={"breach": {k: v for k, v in payload.items() if k not in ("execution_id", "run_error")}},
                trigger_type=TriggerType.EVENT,
                trigger_data={"event_type": "ai.guardian.breach", "alert_id": str(alert.pk), "rule": rule["name"]},
                idempotency_key=f"guardian:{alert.pk}",
            )
            payload["execution_id"] = str(execution.pk)
        except ApiError as exc:
            # Quota, rate limit, a guardian that cannot run: the alert and the event say so.
            payload["run_error"] = f"{exc.code}: {exc.message}"
            logger.warning("guardian %s could not start its run for %s: %s", guardian.pk, key, payload["run_error"])
        alert.details = {**alert.details, "execution_id": payload["execution_id"], "run_error": payload["run_error"]}
        alert.save(update_fields=["details"])
    event_emit(
        organization_id=guardian.organization_id,
        event_type="ai.guardian.breach",
        payload=payload,
        agent_id=guardian.pk,
        execution_id=payload["execution_id"],
    )
    return payload


def guardians_scan(*, now: datetime | None = None) -> int:
    """Beat job: every active, runnable guardian of every organization; returns the new breaches."""
    guardians = Agent.objects.filter(
        agent_type=AgentType.GUARDIAN,
        organization__isnull=False,
        deleted_at__isnull=True,
        is_active=True,
        status__in=RUNNABLE_STATUSES,
        current_version__isnull=False,
    ).select_related("current_version", "organization")
    total = 0
    for guardian in guardians:
        try:
            total += len(guardian_evaluate(guardian, now=now))
        except Exception:
            # One guardian's failure must not stop the others' monitoring.
            logger.exception("guardian %s: evaluating its monitoring rules failed", guardian.pk)
    return total
