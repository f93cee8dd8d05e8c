from __future__ import annotations

from celery import shared_task
from django.conf import settings

from accounts import services


# The task keeps the name it had before the tenant moved out of billing (issue #15): the
# beat schedule and messages already queued name it so.
@shared_task(name="billing.tasks.prune_activity")
def prune_activity() -> int:
    return services.activity_prune(older_than_days=settings.ACTIVITY_LOG_RETENTION_DAYS)
