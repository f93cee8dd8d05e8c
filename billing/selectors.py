"""Reads for usage, quotas and alerts, always scoped to one organization."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from accounts.access import Actor
from billing.models import Alert, DailyUsage, UsageRecord
from billing.quotas import effective_plan, spend, usage_period_current
from billing.report_sources import run_counts
from billing.usage import SANDBOX_PROVIDER

GROUPS = ("day", "agent", "provider", "model", "user")
MAX_RANGE_DAYS = 366


def alert_list(*, actor: Actor) -> QuerySet[Alert]:
    return Alert.objects.filter(organization=actor.organization)


def usage_summary(*, actor: Actor, start: date, end: date, group_by: str) -> list[dict[str, Any]]:
    """Runs, calls, tokens in/out and cost per group over [start, end] (days, UTC).

    Tokens and cost come from the daily rollups (or the records, for per-user groups); runs
    are executions created in the range (counted by the executions app: ``report_sources``).
    """
    organization = actor.organization
    usage: Any
    runs: Any
    if group_by == "user":
        usage = (
            UsageRecord.objects.filter(organization=organization, created_at__date__gte=start, created_at__date__lte=end)
            .values(key=F("user__username"))
            .annotate(llm_calls=Count("id", filter=~Q(provider=SANDBOX_PROVIDER)), tokens_input=Sum("tokens_input"), tokens_output=Sum("tokens_output"),
                      cost=Sum("cost"))
        )  # fmt: skip
    else:
        field = {"day": "date", "agent": "agent_id", "provider": "provider", "model": "model"}[group_by]
        usage = (
            DailyUsage.objects.filter(organization=organization, date__gte=start, date__lte=end)
            .values(key=F(field))
            .annotate(llm_calls=Sum("llm_calls"), tokens_input=Sum("tokens_input"), tokens_output=Sum("tokens_output"),
                      cost=Sum("cost"), tool_calls=Sum("tool_calls"), approvals=Sum("approvals"))
        )  # fmt: skip
    runs = run_counts(organization=organization, start=start, end=end, group_by=group_by)
    rows: dict[Any, dict[str, Any]] = {}
    for row in usage:
        rows[row["key"]] = {
            "key": row["key"], "runs": 0, "llm_calls": row["llm_calls"] or 0,
            "tokens_input": row["tokens_input"] or 0, "tokens_output": row["tokens_output"] or 0,
            "cost": row["cost"] or Decimal(0), "tool_calls": row.get("tool_calls") or 0,
            "approvals": row.get("approvals") if group_by != "user" else None,
        }  # fmt: skip
    for run_row in runs or []:
        entry = rows.setdefault(
            run_row["key"],
            {
                "key": run_row["key"],
                "runs": 0,
                "llm_calls": 0,
                "tokens_input": 0,
                "tokens_output": 0,
                "cost": Decimal(0),
                "tool_calls": 0,
                "approvals": None if group_by == "user" else 0,
            },
        )
        entry["runs"] = run_row["runs"]
        if group_by == "user":
            entry["tool_calls"] = run_row["tool_calls"] or 0
    # Calls of models without a price (charged the default price): few rows, one query, so a
    # model Agentry does not list yet shows in every grouping.
    records = UsageRecord.objects.filter(
        organization=organization, created_at__date__gte=start, created_at__date__lte=end, priced_by_default=True
    )
    record_key = {"day": TruncDate("created_at"), "user": F("user__username")}.get(group_by) or F(
        {"agent": "agent_id", "provider": "provider", "model": "model"}[group_by]
    )
    defaulted = {row["key"]: row["n"] for row in records.values(key=record_key).annotate(n=Count("id"))}
    # The sandbox's answers, not in llm_calls (billing.usage): few rows, one query.
    sandboxed = UsageRecord.objects.filter(
        organization=organization, created_at__date__gte=start, created_at__date__lte=end, provider=SANDBOX_PROVIDER
    )
    sandbox = {row["key"]: row["n"] for row in sandboxed.values(key=record_key).annotate(n=Count("id"))}
    for entry in rows.values():
        entry["priced_by_default_calls"] = defaulted.get(entry["key"], 0)
        entry["sandbox_calls"] = sandbox.get(entry["key"], 0)
    result = sorted(rows.values(), key=lambda r: str(r["key"]) if r["key"] is not None else "")
    for entry in result:
        entry["key"] = str(entry["key"]) if entry["key"] is not None else None
        entry["tokens_total"] = entry["tokens_input"] + entry["tokens_output"]
        entry["cost"] = str(Decimal(entry["cost"]).quantize(Decimal("0.000001")))
    return result


def quota_summary(*, actor: Actor) -> dict[str, Any]:
    organization = actor.organization
    plan = effective_plan(organization)
    period = usage_period_current(organization)
    day, month = spend(organization.pk)
    return {
        "plan": {
            "slug": plan.slug, "name": plan.name, "price_usd": str(plan.price_usd), "allow_overage": plan.allow_overage,
            "max_agents": plan.max_agents, "features": plan.features,
        },
        "period": {"start": period.period_start, "end": period.period_end},
        "runs": {"included": period.included_runs, "used": period.runs_used, "overage": period.overage_runs},
        "tokens": {"included": period.included_tokens, "used": period.tokens_used, "overage": period.overage_tokens},
        "cost_this_period_usd": str(period.cost),
        "tool_calls": period.tool_calls,
        "approvals": period.approvals,
        "budget": {
            "daily_usd": None if organization.daily_budget_usd is None else str(organization.daily_budget_usd),
            "monthly_usd": None if organization.monthly_budget_usd is None else str(organization.monthly_budget_usd),
            "spent_today_usd": str(day),
            "spent_this_month_usd": str(month),
        },
    }  # fmt: skip
