"""Quotas and budgets, enforced in the database before any LLM call.

Starting a run locks the organization's ``UsagePeriod`` row, checks the plan's quota and the
budget caps, and counts the run — all in the transaction that creates the execution, so N
concurrent requests against a remaining quota of K accept exactly min(N, K). Before every
LLM call the budget caps are checked again: a run that crossed a cap mid-way stops with
ResourceExhausted and makes no further call. (Calls already in flight when another run
crosses the cap still complete: the overshoot is bounded by the calls in flight.)
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import F, Sum
from django.utils import timezone

from accounts.models import Organization
from billing.alerts import alert_quota_thresholds, alert_raise, thresholds_crossed
from billing.models import Alert, DailyUsage, Plan, UsagePeriod
from config.api.errors import ApiError

# Used when no Plan row is marked default (a fresh database before `sync_platform`).
FALLBACK_PLAN = Plan(slug="standard", name="Standard", included_runs=500, included_tokens=500_000, allow_overage=True)


def effective_plan(organization: Organization) -> Plan:
    """The organization's plan, else the default one; remembered on the instance (a run
    asks before every model call)."""
    cached = getattr(organization, "_effective_plan", None)
    if cached is not None:
        return cached
    plan = organization.plan if organization.plan_id else Plan.objects.filter(is_default=True).first() or FALLBACK_PLAN
    organization._effective_plan = plan  # type: ignore[attr-defined]
    return plan  # type: ignore[return-value]


def period_bounds(today: date | None = None) -> tuple[date, date]:
    """Calendar months (UTC): [first of this month, first of next month)."""
    today = today or timezone.now().date()
    start = today.replace(day=1)
    end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return start, end


def usage_period_current(organization: Organization, *, lock: bool = False) -> UsagePeriod:
    start, end = period_bounds()
    if lock:
        # The period's row exists but on the first run of a month: locked in one read.
        rows = UsagePeriod.objects.select_for_update().filter(organization=organization, period_start=start)
        period = next(iter(rows[:1]), None)
        if period is not None:
            return period
    plan = effective_plan(organization)
    period, _ = UsagePeriod.objects.get_or_create(
        organization=organization,
        period_start=start,
        defaults={"period_end": end, "included_runs": plan.included_runs, "included_tokens": plan.included_tokens},
    )
    if lock:
        period = UsagePeriod.objects.select_for_update().get(pk=period.pk)
    return period


def spend(organization_id: Any) -> tuple[Decimal, Decimal]:
    """(today, this month) in USD from the daily rollups: one indexed query."""
    today = timezone.now().date()
    start, _ = period_bounds(today)
    rows = (
        DailyUsage.objects.filter(organization_id=organization_id, date__gte=start)
        .values("date")
        .annotate(cost=Sum("cost"))
    )
    month = sum((r["cost"] for r in rows), Decimal(0))
    day = sum((r["cost"] for r in rows if r["date"] == today), Decimal(0))
    return day, month


def _exhausted(message: str, usage: dict[str, Any], actions: list[str]) -> ApiError:
    return ApiError(
        code="ResourceExhausted",
        message=message,
        details={"resource_usage": usage, "suggested_actions": actions},
    )


def budget_problem(organization: Organization) -> ApiError | None:
    if organization.daily_budget_usd is None and organization.monthly_budget_usd is None:
        return None
    day, month = spend(organization.pk)
    if organization.daily_budget_usd is not None and day >= organization.daily_budget_usd:
        return _exhausted(
            f"The organization's daily budget of ${organization.daily_budget_usd} is spent.",
            {"daily_budget_usd": str(organization.daily_budget_usd), "spent_today_usd": str(day)},
            ["Wait until tomorrow (UTC)", "Raise the daily budget"],
        )
    if organization.monthly_budget_usd is not None and month >= organization.monthly_budget_usd:
        return _exhausted(
            f"The organization's monthly budget of ${organization.monthly_budget_usd} is spent.",
            {"monthly_budget_usd": str(organization.monthly_budget_usd), "spent_this_month_usd": str(month)},
            ["Wait for the next period", "Raise the monthly budget"],
        )
    return None


def quota_admit_run(*, organization: Organization) -> UsagePeriod:
    """Inside the transaction that creates the execution: check, then count one run."""
    period = usage_period_current(organization, lock=True)
    plan = effective_plan(organization)
    if not plan.allow_overage:
        if period.runs_used >= period.included_runs:
            raise _exhausted(
                f"The {plan.name} plan's {period.included_runs} runs for this period are used.",
                {"included_runs": period.included_runs, "runs_used": period.runs_used},
                ["Wait for the next period", "Upgrade the plan"],
            )
        if period.tokens_used >= period.included_tokens:
            raise _exhausted(
                f"The {plan.name} plan's {period.included_tokens} tokens for this period are used.",
                {"included_tokens": period.included_tokens, "tokens_used": period.tokens_used},
                ["Wait for the next period", "Upgrade the plan"],
            )
    problem = budget_problem(organization)
    if problem is not None:
        raise problem
    UsagePeriod.objects.filter(pk=period.pk).update(runs_used=F("runs_used") + 1)
    period.runs_used += 1
    alert_quota_thresholds(organization=organization, period=period, runs=1)
    return period


def check_before_llm_call(*, organization: Organization) -> ApiError | None:
    """The reason a run may not make another LLM call now, or None."""
    plan = effective_plan(organization)
    if not plan.allow_overage:
        period = usage_period_current(organization)
        if period.tokens_used >= period.included_tokens:
            return _exhausted(
                f"The {plan.name} plan's {period.included_tokens} tokens for this period are used.",
                {"included_tokens": period.included_tokens, "tokens_used": period.tokens_used},
                ["Wait for the next period", "Upgrade the plan"],
            )
    return budget_problem(organization)


def agent_limit_problem(*, organization: Organization, agent_count: int) -> ApiError | None:
    plan = effective_plan(organization)
    if plan.max_agents is not None and agent_count >= plan.max_agents:
        return ApiError(
            code="OrganizationLimitExceeded",
            message=f"The {plan.name} plan allows {plan.max_agents} agents.",
            details={"resource_usage": {"max_agents": plan.max_agents, "agents": agent_count},
                     "suggested_actions": ["Archive an agent", "Upgrade the plan"]},
        )  # fmt: skip
    return None


# Features a plan may leave out (``Plan.features[key] is False``); a key the plan does not
# name is included, so plans written before a feature existed keep it.
PLAN_FEATURES = {
    "knowledge_bases": "knowledge bases",
    "webhooks": "outbound webhooks",
    "chains": "agent chains",
    "mcp": "MCP servers",
}


def plan_feature_require(*, organization: Organization, feature: str, user: Any = None) -> None:
    """Raise 403 ``PlanFeatureUnavailable`` when the organization's plan leaves ``feature``
    out; a superuser (the platform's operators) is never refused."""
    if feature not in PLAN_FEATURES:
        raise ValueError(f"not a plan feature: {feature!r}")
    if user is not None and getattr(user, "is_superuser", False):
        return
    plan = effective_plan(organization)
    if (plan.features or {}).get(feature, True) is False:
        raise ApiError(
            code="PlanFeatureUnavailable",
            message=f"The {plan.name} plan does not include {PLAN_FEATURES[feature]}.",
            details={"feature": feature, "plan": plan.slug, "suggested_actions": ["Upgrade the plan"]},
        )


def alert_budget_thresholds(*, organization: Organization, cost: Decimal) -> None:
    """Budget alerts after ``cost`` was spent (here beside ``spend``; alerts do not read quotas)."""
    if organization.daily_budget_usd is None and organization.monthly_budget_usd is None:
        return
    day, month = spend(organization.pk)
    today = timezone.now().date()
    for threshold in thresholds_crossed(day, organization.daily_budget_usd, cost):
        alert_raise(
            organization_id=organization.pk, kind=Alert.Kind.BUDGET_DAILY, threshold=threshold, key=today.isoformat(),
            message=f"{organization.name} has spent {threshold}% of its daily budget (${organization.daily_budget_usd}).",
            details={"spent_usd": str(day)},
        )  # fmt: skip
    for threshold in thresholds_crossed(month, organization.monthly_budget_usd, cost):
        alert_raise(
            organization_id=organization.pk, kind=Alert.Kind.BUDGET_MONTHLY, threshold=threshold,
            key=period_bounds(today)[0].isoformat(),
            message=f"{organization.name} has spent {threshold}% of its monthly budget (${organization.monthly_budget_usd}).",
            details={"spent_usd": str(month)},
        )  # fmt: skip
