"""Built-in billing data kept in sync by `manage.py sync_platform` (idempotent)."""

from __future__ import annotations

from decimal import Decimal

from billing.catalog import MODELS
from billing.models import ModelPrice, Plan
from billing.pricing import clear_price_cache

# What the free plan leaves out (billing.quotas.PLAN_FEATURES); an edited plan keeps its own.
FREE_LACKS = {"knowledge_bases": False, "webhooks": False, "chains": False, "mcp": False}
PLANS = [
    # slug, name, price, included runs, included tokens, overage allowed, max agents, features
    ("free", "Free", Decimal("0"), 100, 100_000, False, 3, {"ai_addon": False, **FREE_LACKS}),
    ("standard", "Standard", Decimal("49"), 500, 500_000, True, 25, {"ai_addon": True}),
    ("business", "Business", Decimal("499"), 10_000, 20_000_000, True, None, {"ai_addon": True}),
]


def sync_plans() -> str:
    created = 0
    for slug, name, price, runs, tokens, overage, max_agents, features in PLANS:
        _, was_created = Plan.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name, "price_usd": price, "included_runs": runs, "included_tokens": tokens,
                "allow_overage": overage, "max_agents": max_agents, "features": features,
                "is_default": slug == "standard",
            },
        )  # fmt: skip
        created += was_created
    return f"{created} plan(s) created, {len(PLANS) - created} kept as edited"


def sync_model_prices() -> str:
    """Seed a price for every catalog model that has none; never overwrite an operator's edit."""
    created = 0
    for provider, models in MODELS.items():
        for model, (price_in, price_out, price_cached) in models.items():
            if ModelPrice.objects.filter(provider=provider, model=model).exists():
                continue
            ModelPrice.objects.create(
                provider=provider, model=model, input_per_million=price_in, output_per_million=price_out,
                cached_input_per_million=price_cached,
            )  # fmt: skip
            created += 1

    clear_price_cache()
    return f"{created} model price(s) seeded"
