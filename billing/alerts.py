"""Alerts to organization admins: quota and budget thresholds, failure spikes, stuck runs.

Each alert is a row (the in-app notice, at ``alerts/``) unique per kind, threshold and key,
so crossing 80 % twice in one period alerts once; the e-mail goes out after commit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from accounts.models import Membership, Organization
from accounts.roles import Role
from billing.models import Alert, UsagePeriod


def _admin_emails(organization_id: Any) -> list[str]:
    return list(
        Membership.objects.filter(organization_id=organization_id, role__in=[Role.OWNER, Role.ADMIN])
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )


def alert_raise(
    *, organization_id: Any, kind: str, key: str, message: str, threshold: int = 0, details: dict | None = None
) -> Alert | None:
    """Create the alert unless it exists; e-mail the admins once it is committed."""
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                organization_id=organization_id, kind=kind, threshold=threshold, key=key, message=message,
                details=details or {},
            )  # fmt: skip
    except IntegrityError:
        return None
    recipients = _admin_emails(organization_id)
    if recipients:
        transaction.on_commit(
            lambda: send_mail(
                f"[Agentry] {message}", message, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=True
            )
        )
    return alert


def thresholds_crossed(used: Decimal | int, limit: Decimal | int | None, delta: Decimal | int) -> list[int]:
    """Thresholds that this increment (``delta``) took ``used`` across — so a period past 80 %
    costs no alert query on every later call."""
    if not limit:
        return []
    before = (Decimal(used) - Decimal(delta)) * 100 / Decimal(limit)
    now = Decimal(used) * 100 / Decimal(limit)
    return [t for t in settings.USAGE_ALERT_THRESHOLDS if before < t <= now]


def alert_quota_thresholds(*, organization: Organization, period: UsagePeriod, runs: int = 0, tokens: int = 0) -> None:
    """After ``runs`` runs or ``tokens`` tokens were added to ``period``."""
    key = period.period_start.isoformat()
    for threshold in thresholds_crossed(period.runs_used, period.included_runs, runs):
        alert_raise(
            organization_id=organization.pk, kind=Alert.Kind.QUOTA_RUNS, threshold=threshold, key=key,
            message=f"{organization.name} has used {threshold}% of its included runs for the period starting {key}.",
            details={"runs_used": period.runs_used, "included_runs": period.included_runs},
        )  # fmt: skip
    for threshold in thresholds_crossed(period.tokens_used, period.included_tokens, tokens):
        alert_raise(
            organization_id=organization.pk, kind=Alert.Kind.QUOTA_TOKENS, threshold=threshold, key=key,
            message=f"{organization.name} has used {threshold}% of its included tokens for the period starting {key}.",
            details={"tokens_used": period.tokens_used, "included_tokens": period.included_tokens},
        )  # fmt: skip
