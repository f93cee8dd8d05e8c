"""Server-rendered usage charts for the admin (inline SVG: no script, no CDN)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Sum
from django.utils import timezone

from accounts.models import Organization
from billing.models import DailyUsage, UsageRecord
from billing.report_sources import agent_names

# The plot area sits inside margins that hold the axes' labels: cost on the left (USD),
# tokens on the right, dates below.
WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 84, 64, 12, 36
TICKS = 4


def _x(i: int, n: int) -> float:
    return LEFT + i * (WIDTH - LEFT - RIGHT) / max(n - 1, 1)


def _y(value: float, top: float) -> float:
    return HEIGHT - BOTTOM - (value / (top or 1.0)) * (HEIGHT - TOP - BOTTOM)


def _polyline(values: list[float]) -> str:
    top = max(values) or 1.0
    return " ".join(f"{_x(i, len(values)):.1f},{_y(v, top):.1f}" for i, v in enumerate(values))


def _axes(dates: list[Any], cost_top: float, token_top: float) -> dict[str, Any]:
    ticks = []
    for k in range(TICKS + 1):
        fraction = k / TICKS
        y = _y(fraction, 1.0)
        ticks.append({"y": round(y, 1), "label_y": round(y + 4, 1), "cost": f"${cost_top * fraction:.3g}",
                      "tokens": f"{int(token_top * fraction):,}"})  # fmt: skip
    n = len(dates)
    labels = [{"x": round(_x(i, n), 1), "text": dates[i].strftime("%b %d")} for i in sorted({0, n // 2, n - 1})]
    return {"ticks": ticks, "dates": labels, "left": LEFT, "right": WIDTH - RIGHT, "bottom": HEIGHT - BOTTOM,
            "top": TOP, "date_y": HEIGHT - BOTTOM + 18, "right_label_x": WIDTH - RIGHT + 6}  # fmt: skip


def usage_dashboard(organization: Organization, days: int = 30) -> dict[str, Any]:
    today = timezone.now().date()
    start = today - timedelta(days=days - 1)
    rows = DailyUsage.objects.filter(organization=organization, date__gte=start)
    per_day: dict[Any, Any] = {
        r["date"]: r
        for r in rows.values("date").annotate(cost=Sum("cost"), tokens=Sum("tokens_input") + Sum("tokens_output"))
    }
    dates = [start + timedelta(days=i) for i in range(days)]
    cost = [float(per_day.get(d, {}).get("cost") or 0) for d in dates]
    tokens = [float(per_day.get(d, {}).get("tokens") or 0) for d in dates]
    # Runs counted from the per-call records (one index range scan): a run is counted under
    # every agent and model it called.
    records = UsageRecord.objects.filter(organization=organization, created_at__date__gte=start)
    agent_runs = dict(
        records.values("agent_id").annotate(runs=Count("execution_id", distinct=True)).values_list("agent_id", "runs")
    )
    model_runs = {
        (r["provider"], r["model"]): r["runs"]
        for r in records.values("provider", "model").annotate(runs=Count("execution_id", distinct=True))
    }
    top_agents: list[dict[str, Any]] = [
        dict(row)
        for row in rows.values("agent_id").annotate(cost=Sum("cost"), calls=Sum("llm_calls")).order_by("-cost")[:10]
    ]
    names = agent_names([a["agent_id"] for a in top_agents])
    for entry in top_agents:
        entry["name"] = names.get(entry["agent_id"], "(deleted or platform agent)") if entry["agent_id"] else "-"
        entry["runs"] = agent_runs.get(entry["agent_id"], 0)
    top_models: list[dict[str, Any]] = [
        {**row, "runs": model_runs.get((row["provider"], row["model"]), 0)}
        for row in rows.values("provider", "model")
        .annotate(cost=Sum("cost"), calls=Sum("llm_calls"))
        .order_by("-cost")[:10]
    ]
    cost_top, token_top = max(cost) or 0.0, max(tokens) or 0.0
    return {
        "chart": {"width": WIDTH, "height": HEIGHT, "cost_points": _polyline(cost), "token_points": _polyline(tokens),
                  "first": dates[0], "last": dates[-1], "max_cost": cost_top, "max_tokens": int(token_top),
                  "axes": _axes(dates, cost_top, token_top)},
        "total_cost": sum((Decimal(str(c)) for c in cost), Decimal(0)),
        "top_agents": top_agents,
        "top_models": top_models,
    }  # fmt: skip
