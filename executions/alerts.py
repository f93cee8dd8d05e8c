"""Run-health alerts: failure-rate spikes and runs stuck past their timeout.

They read runs (this app's) and raise the organization's alerts through billing's
``alert_raise`` (billing owns alerts, quotas and budgets; it does not read runs).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, Q
from django.utils import timezone

from billing.alerts import alert_raise
from billing.models import Alert
from executions.models import Execution

# A failure spike: at least this many runs in the last hour, and at least this share failed.
SPIKE_MIN_RUNS = 5
SPIKE_FAILURE_SHARE = Decimal("0.5")
# A run is stuck when it is still running this long after its deadline.
STUCK_GRACE = timedelta(minutes=5)


def alerts_scan() -> int:
    """Beat job: failure-rate spikes per agent over the last hour, runs stuck past their timeout."""
    now = timezone.now()
    raised = 0
    hour = now.replace(minute=0, second=0, microsecond=0).isoformat()
    spikes = (
        Execution.objects.filter(completed_at__gte=now - timedelta(hours=1))
        .values("organization_id", "agent_id", "agent__name")
        .annotate(total=Count("id"), failed=Count("id", filter=Q(status__in=["failed", "timed_out"])))
        .filter(total__gte=SPIKE_MIN_RUNS)
    )
    for row in spikes:
        if Decimal(row["failed"]) / row["total"] >= SPIKE_FAILURE_SHARE:
            raised += bool(alert_raise(
                organization_id=row["organization_id"], kind=Alert.Kind.FAILURE_SPIKE,
                key=f"{row['agent_id']}:{hour}",
                message=f"Agent {row['agent__name']!r} failed {row['failed']} of its last {row['total']} runs this hour.",
                details={"agent_id": str(row["agent_id"]), "failed": row["failed"], "total": row["total"]},
            ))  # fmt: skip
    stuck = (
        Execution.objects.filter(status="running", deadline_at__lt=now - STUCK_GRACE)
        .values("organization_id")
        .annotate(count=Count("id"))
    )
    for stuck_row in stuck:
        raised += bool(alert_raise(
            organization_id=stuck_row["organization_id"], kind=Alert.Kind.STUCK_RUNS, key=hour,
            message=f"{stuck_row['count']} run(s) are still running past their timeout.",
            details={"count": stuck_row["count"]},
        ))  # fmt: skip
    return raised
