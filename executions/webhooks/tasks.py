"""Webhook delivery entry points (registered by executions.apps); the default queue."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="executions.webhook_deliver", acks_late=True, ignore_result=True)
def webhook_deliver_task(delivery_id: str) -> None:
    from executions.webhooks.delivery import webhook_delivery_attempt  # noqa: PLC0415  (service imported in the Celery task body (styleguide): the services module enqueues this task)

    webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(name="executions.webhooks_retry_due", ignore_result=True)
def webhooks_retry_due_task() -> int:
    """Beat job: send deliveries that are due and were not (or no longer) queued."""
    from executions.webhooks.delivery import deliveries_due  # noqa: PLC0415  (service imported in the Celery task body (styleguide): the services module enqueues this task)

    ids = deliveries_due()
    for delivery_id in ids:
        webhook_deliver_task.apply_async(args=[str(delivery_id)], queue="default")
    if ids:
        logger.info("re-queued %d webhook deliveries", len(ids))
    return len(ids)
