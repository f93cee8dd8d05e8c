"""Reads for tenancy (tokens, the activity log), always scoped to one organization."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.access import Actor
from accounts.models import ActivityLog, ApiToken


def api_token_list(*, actor: Actor) -> QuerySet[ApiToken]:
    """The caller's own tokens in the caller's organization."""
    return ApiToken.objects.filter(organization=actor.organization, user_id=actor.user_id)


def activity_list(*, actor: Actor) -> QuerySet[ActivityLog]:
    """Admins see the organization's whole log; everybody else sees their own rows."""
    qs = ActivityLog.objects.filter(organization=actor.organization).select_related("user", "token")
    if not actor.has_perm("billing.view_all_activity"):
        qs = qs.filter(user_id=actor.user_id)
    return qs
