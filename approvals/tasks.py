"""Entry points on the queues for approvals."""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task

from approvals.models import ApprovalRequest, ApprovalStatus
from config.site import base_url

logger = logging.getLogger(__name__)


@shared_task(name="approvals.expire", ignore_result=True)
def expire_approvals() -> int:
    from approvals.services import approvals_expire  # noqa: PLC0415  (service imported in the Celery task body (styleguide): the services module enqueues this task)

    return approvals_expire()


@shared_task(
    name="approvals.notify",
    ignore_result=True,
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=5,
)
def notify_approvers(approval_id: str) -> int:
    from approvals.services import approval_notify_by_email  # noqa: PLC0415  (service imported in the Celery task body (styleguide): the services module enqueues this task)

    approval = ApprovalRequest.objects.select_related("agent").filter(pk=approval_id).first()
    if approval is None or approval.status != ApprovalStatus.PENDING:
        return 0  # gone, or decided before the email went out
    return approval_notify_by_email(approval=approval, base_url=base_url())
