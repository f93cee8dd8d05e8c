from __future__ import annotations

from celery import shared_task
from django.conf import settings

from billing import services


@shared_task(name="billing.tasks.prune_activity")
def prune_activity() -> int:
    return services.activity_prune(older_than_days=settings.ACTIVITY_LOG_RETENTION_DAYS)


@shared_task(name="billing.tasks.alerts_scan")
def alerts_scan() -> int:
    from billing.alerts import alerts_scan as scan

    return scan()
