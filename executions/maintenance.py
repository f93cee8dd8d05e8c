"""Operator maintenance of runs: pruning old ones, handing stuck ones back or ending them.

Used by the ``prune_executions`` and ``requeue_stuck_runs`` commands. Both are idempotent:
a second call finds nothing left to do. The periodic ``executions.tick`` task already
re-queues dead leases every few seconds; ``requeue_stuck_runs`` is the manual lever for when
beat was down, and the one place that gives up on runs past their deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from executions.models import TERMINAL_STATUSES, Execution, ExecutionStatus
from executions.runtime.buffers import event_buffer_for
from executions.runtime.finish import Stop, finish_execution
from executions.tasks import enqueue_execution

S = ExecutionStatus
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def executions_prune(
    *, older_than: timedelta, dry_run: bool = False, batch_size: int = 500, progress: Progress = _quiet
) -> int:
    """Delete ended runs created before now - ``older_than``, with their steps, logs, events
    and approvals (ON DELETE CASCADE). Usage records keep their numbers: their FK is SET NULL,
    so billing history survives. Live runs are never touched, whatever their age."""
    cutoff = timezone.now() - older_than
    qs = Execution.objects.filter(created_at__lt=cutoff, status__in=TERMINAL_STATUSES)
    total = qs.count()
    if dry_run or not total:
        return total
    deleted = 0
    # Batches: one huge DELETE holds locks on millions of step rows and a long transaction.
    while True:
        ids = list(qs.values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        with transaction.atomic():
            Execution.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
        progress(f"deleted {deleted}/{total} executions")
    return deleted


@dataclass
class StuckReport:
    requeued: list[Any] = field(default_factory=list)
    ended: list[Any] = field(default_factory=list)


def executions_requeue_stuck(
    *, fail_after: timedelta | None = None, dry_run: bool = False, progress: Progress = _quiet
) -> StuckReport:
    """Running runs whose lease expired and pending runs never claimed go back to the queue;
    those past their deadline (or, with ``fail_after``, created longer ago than that) end with
    ExecutionTimeout instead: timed_out when they had started, failed when still pending
    (the status machine has no pending -> timed_out)."""
    now = timezone.now()
    lost_before = now - timedelta(seconds=settings.EXECUTION_REQUEUE_PENDING_AFTER_SECONDS)
    stuck = (Q(status=S.RUNNING) & (Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True))) | Q(
        status=S.PENDING, created_at__lt=lost_before
    )
    too_old = Q(deadline_at__lt=now)
    if fail_after is not None:
        too_old |= Q(created_at__lt=now - fail_after)
    report = StuckReport()
    for execution in Execution.objects.filter(stuck).order_by("created_at"):
        give_up = Execution.objects.filter(too_old, pk=execution.pk).exists()
        if give_up:
            report.ended.append(execution.pk)
            if not dry_run:
                _end_timed_out(execution, now=now)
            progress(f"{'would end' if dry_run else 'ended'} {execution.pk} ({execution.status}) with ExecutionTimeout")
        else:
            report.requeued.append(execution.pk)
            if not dry_run:
                enqueue_execution(execution.pk)
            progress(f"{'would re-queue' if dry_run else 're-queued'} {execution.pk} ({execution.status})")
    return report


def _end_timed_out(execution: Execution, *, now) -> None:
    status = S.TIMED_OUT if execution.status == S.RUNNING else S.FAILED
    deadline = execution.deadline_at.isoformat() if execution.deadline_at else None
    # finish_execution refuses (returns False) if a worker ended the run meanwhile: fine.
    finish_execution(
        execution,
        Stop(
            status,
            "The run was stuck past its time limit and was ended by requeue_stuck_runs.",
            "ExecutionTimeout",
            details={"deadline_at": deadline, "ended_at": now.isoformat()},
        ),
        events=event_buffer_for(execution.pk),
    )
