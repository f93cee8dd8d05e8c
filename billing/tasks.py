from __future__ import annotations

from celery import shared_task
from django.conf import settings

from billing import services


@shared_task(name="billing.tasks.prune_activity")
def prune_activity() -> int:
    return services.activity_prune(older_than_days=settings.ACTIVITY_LOG_RETENTION_DAYS)
