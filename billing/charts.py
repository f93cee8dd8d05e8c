"""Server-rendered usage charts for the admin (inline SVG: no script, no CDN)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from accounts.models import Organization
from billing.models import DailyUsage

WIDTH, HEIGHT, PAD = 640, 160, 24


def _polyline(values: list[float]) -> str:
    top = max(values) or 1.0
    step = (WIDTH - 2 * PAD) / max(len(values) - 1, 1)
    return " ".join(
        f"{PAD + i * step:.1f},{HEIGHT - PAD - (v / top) * (HEIGHT - 2 * PAD):.1f}" for i, v in enumerate(values)
    )


def usage_dashboard(organization: Organization, days: int = 30) -> dict[str, Any]:
    from agents.models import Agent

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
    top_agents: list[dict[str, Any]] = [
        dict(row) for row in rows.values("agent_id").annotate(cost=Sum("cost")).order_by("-cost")[:5]
    ]
    names = dict(Agent.objects.filter(pk__in=[a["agent_id"] for a in top_agents]).values_list("pk", "name"))
    for entry in top_agents:
        entry["name"] = names.get(entry["agent_id"], "(deleted or platform agent)") if entry["agent_id"] else "-"
    return {
        "chart": {"width": WIDTH, "height": HEIGHT, "cost_points": _polyline(cost), "token_points": _polyline(tokens),
                  "first": dates[0], "last": dates[-1], "max_cost": max(cost), "max_tokens": int(max(tokens))},
        "total_cost": sum((Decimal(str(c)) for c in cost), Decimal(0)),
        "top_agents": top_agents,
        "top_models": list(rows.values("provider", "model").annotate(cost=Sum("cost"), calls=Sum("llm_calls")).order_by("-cost")[:5]),
    }  # fmt: skip
