"""Trigger entry points on the queues (registered by executions.apps)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.utils.dateparse import parse_datetime

from executions.triggers.schedules import schedule_fire, schedules_reconcile


def sent_at_of(request: Any, expires_in: Any) -> Any:
    """When beat sent this message, on beat's clock: the message expires ``expires_in``
    seconds after it was sent, and Celery carries that absolute time in the message.

    Using beat's send time rather than the worker's clock names the right tick even when the
    message waited in the queue or the worker's clock is a little off.
    """
    expires = getattr(request, "expires", None)
    if not expires or not isinstance(expires_in, (int, float)):
        return None
    moment = parse_datetime(expires) if isinstance(expires, str) else expires
    return moment - timedelta(seconds=expires_in) if moment is not None else None


@shared_task(name="executions.schedule_fire", bind=True, ignore_result=True, acks_late=True)
def schedule_fire_task(self: Any, schedule_id: str, expires_in: Any = None) -> str | None:
    execution = schedule_fire(schedule_id=schedule_id, sent_at=sent_at_of(self.request, expires_in))
    return str(execution.pk) if execution is not None else None


@shared_task(name="executions.schedules_reconcile", ignore_result=True)
def schedules_reconcile_task() -> int:
    return schedules_reconcile()
