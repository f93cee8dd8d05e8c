"""Recording what LLM calls cost, per organization, agent, execution and model."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from billing.alerts import alert_quota_thresholds
from billing.models import DailyUsage, UsagePeriod, UsageRecord
from billing.pricing import model_price
from billing.quotas import alert_budget_thresholds, period_bounds, usage_period_current

# The offline sandbox's answers are recorded (their estimated tokens, at no cost) but are
# not LLM calls: no model was called. The rollups' llm_calls leave them out; the usage
# summary counts them as sandbox_calls, from the records.
SANDBOX_PROVIDER = "sandbox"


def usage_record_llm_call(
    *, execution: Any, step: Any = None, provider: str, model: str, usage: Any, cost: Decimal, purpose: str = "run"
) -> UsageRecord:
    """Call inside the transaction that commits the step, so record, rollups and step agree."""
    record = UsageRecord.objects.create(
        organization_id=execution.organization_id,
        agent_id=execution.agent_id,
        execution_id=execution.pk,
        user_id=execution.triggered_by_user_id,
        purpose=purpose,
        provider=provider,
        model=model,
        tokens_input=usage.input_tokens,
        tokens_output=usage.output_tokens,
        tokens_cached=usage.cached_input_tokens,
        cost=cost,
        priced_by_default=model_price(provider, model).is_default,
    )
    daily_usage_add(record, execution.organization)
    return record


def daily_usage_add(record: UsageRecord, organization: Any) -> None:
    """Add one record to its day's rollup and to the current period (incremental, in SQL)."""
    day = timezone.localdate(record.created_at, timezone.get_fixed_timezone(0))
    period = _period_add(record, day, with_day=True)
    if period is None:  # a run that began last period and crossed into this one
        usage_period_current(organization)
        period = _period_add(record, day)
    if period is not None:
        alert_quota_thresholds(
            organization=organization, period=period, tokens=record.tokens_input + record.tokens_output
        )
    alert_budget_thresholds(organization=organization, cost=record.cost)


def usage_count(*, organization: Any, agent_id: Any, tool_calls: int = 0, approvals: int = 0) -> None:
    """Count tool calls and approval requests into the day's rollup (the agent's row with no
    provider or model) and the current period; call it in the transaction that records them."""
    if not tool_calls and not approvals:
        return
    day = timezone.localdate(timezone.now(), timezone.get_fixed_timezone(0))
    start, _ = period_bounds(day)
    # One statement: the day's row and the period's counters (a CTE's INSERT always runs).
    sql = """
        WITH day_row AS (
            INSERT INTO billing_dailyusage
                (organization_id, date, agent_id, provider, model, llm_calls,
                 tokens_input, tokens_output, tokens_cached, cost, tool_calls, approvals)
            VALUES (%s, %s, %s, '', '', 0, 0, 0, 0, 0, %s, %s)
            ON CONFLICT (organization_id, date, agent_id, provider, model) DO UPDATE SET
                tool_calls = billing_dailyusage.tool_calls + EXCLUDED.tool_calls,
                approvals = billing_dailyusage.approvals + EXCLUDED.approvals
        )
        UPDATE billing_usageperiod SET tool_calls = tool_calls + %s, approvals = approvals + %s
         WHERE organization_id = %s AND period_start = %s
    """
    params = [organization.pk, day, agent_id, tool_calls, approvals, tool_calls, approvals, organization.pk, start]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount:
            return
        usage_period_current(organization)  # the period's first count: open it, then count it
        cursor.execute(
            "UPDATE billing_usageperiod SET tool_calls = tool_calls + %s, approvals = approvals + %s"
            " WHERE organization_id = %s AND period_start = %s",
            [tool_calls, approvals, organization.pk, start],
        )


# The day's rollup row, as a CTE of the period's UPDATE: a CTE's INSERT always runs, whether
# or not the period row exists, so a model call costs one statement for both rollups.
_DAY_ROW = """
    WITH day_row AS (
        INSERT INTO billing_dailyusage
            (organization_id, date, agent_id, provider, model, llm_calls,
             tokens_input, tokens_output, tokens_cached, cost)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (organization_id, date, agent_id, provider, model) DO UPDATE SET
            llm_calls = billing_dailyusage.llm_calls + EXCLUDED.llm_calls,
            tokens_input = billing_dailyusage.tokens_input + EXCLUDED.tokens_input,
            tokens_output = billing_dailyusage.tokens_output + EXCLUDED.tokens_output,
            tokens_cached = billing_dailyusage.tokens_cached + EXCLUDED.tokens_cached,
            cost = billing_dailyusage.cost + EXCLUDED.cost
    )
"""


def _period_add(record: UsageRecord, day: Any, *, with_day: bool = False) -> UsagePeriod | None:
    """Add the record to its period (and to its day's rollup ``with_day``) and read the
    period's totals back, in one statement."""
    start, _ = period_bounds(day)
    sql = """
        UPDATE billing_usageperiod SET tokens_used = tokens_used + %s, cost = cost + %s
         WHERE organization_id = %s AND period_start = %s
        RETURNING id, period_start, period_end, included_runs, included_tokens, runs_used, tokens_used, cost
    """
    params: list[Any] = [record.tokens_input + record.tokens_output, record.cost, record.organization_id, start]
    if with_day:
        sql = _DAY_ROW + sql
        params = [
            record.organization_id, day, record.agent_id, record.provider, record.model,
            0 if record.provider == SANDBOX_PROVIDER else 1,
            record.tokens_input, record.tokens_output, record.tokens_cached, record.cost,
            *params,
        ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    pk, period_start, period_end, included_runs, included_tokens, runs_used, tokens_used, cost = row
    return UsagePeriod(
        pk=pk, organization_id=record.organization_id, period_start=period_start, period_end=period_end,
        included_runs=included_runs, included_tokens=included_tokens, runs_used=runs_used, tokens_used=tokens_used,
        cost=cost,
    )  # fmt: skip


def daily_usage_rebuild(*, organization_id: Any = None) -> int:
    """Recompute the rollups from the records (the incremental ones must equal this)."""
    scope = "" if organization_id is None else "WHERE organization_id = %s"
    params = [SANDBOX_PROVIDER] + ([] if organization_id is None else [organization_id])
    stale = (
        DailyUsage.objects.all()
        if organization_id is None
        else DailyUsage.objects.filter(organization_id=organization_id)
    )
    # The rows of tool calls and approvals (no provider) have no records to rebuild from: kept.
    stale.exclude(provider="").delete()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO billing_dailyusage
                (organization_id, date, agent_id, provider, model, llm_calls,
                 tokens_input, tokens_output, tokens_cached, cost)
            SELECT organization_id, (created_at AT TIME ZONE 'UTC')::date, agent_id, provider, model,
                   count(*) FILTER (WHERE provider <> %s),
                   sum(tokens_input), sum(tokens_output), sum(tokens_cached), sum(cost)
              FROM billing_usagerecord {scope}
             GROUP BY 1, 2, 3, 4, 5
            """,  # noqa: S608 — scope is one of two fixed strings
            params,
        )
        return cursor.rowcount
