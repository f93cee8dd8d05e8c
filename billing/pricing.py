"""What an LLM call costs, in USD, as a Decimal (never a float).

Prices come from ``ModelPrice`` (the row in effect now), else the catalog's list price,
cached per process for a minute so pricing costs no query per call. A model without a price is charged the configured default
(``DEFAULT_MODEL_PRICE``) and the usage row is flagged ``priced_by_default``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from billing.catalog import MODELS
from billing.models import ModelPrice

MILLION = Decimal(1_000_000)
SIX_PLACES = Decimal("0.000001")
CACHE_SECONDS = 60


@dataclass(frozen=True)
class Price:
    input: Decimal
    output: Decimal
    cached_input: Decimal | None
    is_default: bool = False


_cache: dict[tuple[str, str], tuple[float, Price]] = {}
_lock = threading.Lock()


def clear_price_cache() -> None:
    with _lock:
        _cache.clear()


def model_price(provider: str, model: str) -> Price:
    key = (provider, model)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
    if hit and now - hit[0] < CACHE_SECONDS:
        return hit[1]

    row = (
        ModelPrice.objects.filter(provider=provider, model=model, effective_from__lte=timezone.now())
        .order_by("-effective_from")
        .first()
    )
    listed = MODELS.get(provider, {}).get(model)
    if row is not None:
        price = Price(row.input_per_million, row.output_per_million, row.cached_input_per_million)
    elif listed is not None:  # the catalog's list price, until an operator adds a row
        price = Price(*listed)
    elif provider == "sandbox":
        price = Price(Decimal(0), Decimal(0), None)
    else:
        default_in, default_out = settings.DEFAULT_MODEL_PRICE
        price = Price(Decimal(default_in), Decimal(default_out), None, is_default=True)
    with _lock:
        _cache[key] = (now, price)
    return price


def price_call(*, price: Price, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> Decimal:
    cached = min(cached_tokens, input_tokens) if price.cached_input is not None else 0
    fresh = input_tokens - cached
    total = (fresh * price.input + cached * (price.cached_input or Decimal(0)) + output_tokens * price.output) / MILLION
    return total.quantize(SIX_PLACES)


def call_cost(*, provider: str, model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> Decimal:
    return price_call(
        price=model_price(provider, model),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached_tokens,
    )
