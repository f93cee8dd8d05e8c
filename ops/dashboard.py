"""The operator dashboard at /admin/dashboard/: today's runs, spend against budgets, pending
approvals, failing agents, queue depth and worker liveness.

Superusers see every active organization; an organization admin (staff, owner/admin role)
sees only the organizations they manage, as everywhere else in the admin
(accounts.admin_scoping). Everyone else is refused.
"""

from __future__ import annotations

import logging
from datetime import datetime, time
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from accounts.admin_scoping import managed_organization_ids
from accounts.models import Organization
from agents.models import Agent
from approvals.models import ApprovalRequest, ApprovalStatus
from billing.quotas import spend
from config.workers import live_workers
from executions.models import Execution
from ops.metrics import queue_depths

logger = logging.getLogger(__name__)

# One page, not a report: the oldest/most recent few of each list are what an operator acts on.
LIST_LIMIT = 50
FAILING_STATUSES = ("failed", "timed_out")


def _scope(request: HttpRequest) -> list[Any] | None:
    """None for every organization (superuser), else the managed organizations' ids."""
    user = request.user
    if user.is_active and user.is_superuser:
        return None
    managed = managed_organization_ids(request) if user.is_active and user.is_staff else []
    if not managed:
        raise PermissionDenied
    return managed


def _broker_state() -> dict[str, Any]:
    try:
        return {"queues": queue_depths(), "workers": sorted(live_workers()), "broker_error": ""}
    except Exception as exc:  # the page must render while Redis is down: that is when it is needed
        logger.warning("dashboard: Redis unavailable", exc_info=True)
        return {"queues": {}, "workers": [], "broker_error": type(exc).__name__}


def dashboard_context(*, organization_ids: list[Any] | None) -> dict[str, Any]:
    def scoped(qs, path: str = "organization_id"):
        return qs if organization_ids is None else qs.filter(**{f"{path}__in": organization_ids})

    now = timezone.now()
    start_of_day = datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)
    organizations = list(scoped(Organization.objects.filter(is_active=True), "pk").order_by("name"))
    runs = (
        scoped(Execution.objects.filter(created_at__gte=start_of_day))
        .values("organization_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    runs_by_status: dict[str, int] = {}
    runs_by_org: dict[Any, int] = {}
    for row in runs:
        runs_by_status[row["status"]] = runs_by_status.get(row["status"], 0) + row["n"]
        runs_by_org[row["organization_id"]] = runs_by_org.get(row["organization_id"], 0) + row["n"]
    budgets = []
    for organization in organizations:
        day, month = spend(organization.pk)  # one indexed query on the daily rollups each
        budgets.append(
            {
                "organization": organization,
                "runs_today": runs_by_org.get(organization.pk, 0),
                "cost_today": day,
                "daily_budget": organization.daily_budget_usd,
                "cost_month": month,
                "monthly_budget": organization.monthly_budget_usd,
                "over": (organization.daily_budget_usd is not None and day >= organization.daily_budget_usd)
                or (organization.monthly_budget_usd is not None and month >= organization.monthly_budget_usd),
            }
        )
    approvals = list(
        scoped(ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING))
        .select_related("organization", "agent")
        .order_by("created_at")[:LIST_LIMIT]
    )
    for approval in approvals:
        approval.age = now - approval.created_at  # type: ignore[attr-defined]
    failing = list(
        scoped(Agent.objects.filter(last_run_status__in=FAILING_STATUSES, deleted_at__isnull=True))
        .select_related("organization")
        .order_by("-last_run_at")[:LIST_LIMIT]
    )
    return {
        "now": now,
        "runs_by_status": sorted(runs_by_status.items()),
        "runs_total": sum(runs_by_status.values()),
        "budgets": budgets,
        "approvals": approvals,
        "failing_agents": failing,
        **_broker_state(),
    }


def dashboard_view(request: HttpRequest) -> HttpResponse:
    organization_ids = _scope(request)
    context = {
        **admin.site.each_context(request),
        "title": "Operations dashboard",
        # Every number links to the rows it counts: today's runs in the executions list.
        "runs_url": reverse("admin:executions_execution_changelist")
        + "?"
        + urlencode(
            {"created_at__gte": timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0).isoformat()}
        ),
        "all_organizations": organization_ids is None,
        **dashboard_context(organization_ids=organization_ids),
    }
    return render(request, "admin/dashboard.html", context)


# admin_view: the admin's login redirect for anonymous users and its no-cache headers.
dashboard = admin.site.admin_view(dashboard_view)
