from __future__ import annotations

from celery import shared_task


@shared_task(name="billing.tasks.alerts_scan")
def alerts_scan() -> int:
    from billing.alerts import alerts_scan as scan

    return scan()
