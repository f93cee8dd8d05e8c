"""What an LLM call costs, in USD, as a Decimal (never a float)."""

from __future__ import annotations

from decimal import Decimal

from executions.llm.catalog import MODELS

MILLION = Decimal(1_000_000)
SIX_PLACES = Decimal("0.000001")


def model_prices(provider: str, model: str) -> tuple[Decimal, Decimal, Decimal | None]:
    """(input, output, cached input) per million tokens; unknown models cost nothing here."""
    return MODELS.get(provider, {}).get(model, (Decimal(0), Decimal(0), None))


def call_cost(*, provider: str, model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> Decimal:
    price_in, price_out, price_cached = model_prices(provider, model)
    cached = min(cached_tokens, input_tokens) if price_cached is not None else 0
    fresh = input_tokens - cached
    total = (fresh * price_in + cached * (price_cached or Decimal(0)) + output_tokens * price_out) / MILLION
    return total.quantize(SIX_PLACES)
