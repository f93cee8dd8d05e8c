"""The providers and models Agentry offers, with list prices per million tokens (USD).

This is the seed for ``billing.ModelPrice`` (editable in the admin afterwards) and the list
agents are validated against. The first three legacy figures are the platform team's own
(per 1 K in the reference, converted: GPT-4 30/60, Claude 3 Opus 15/75, Llama 3 70B on Groq
0.8/0.8); the others are the providers' published list prices for the newer models.
Prices: (input, output, cached input or None).
"""

from __future__ import annotations

from decimal import Decimal

D = Decimal

PROVIDERS = ("openai", "anthropic", "groq", "openai_compatible", "sandbox")

# Providers whose model names are not known in advance (any server speaking the protocol).
OPEN_MODEL_PROVIDERS = frozenset({"openai_compatible"})

MODELS: dict[str, dict[str, tuple[Decimal, Decimal, Decimal | None]]] = {
    "openai": {
        "gpt-4": (D("30"), D("60"), None),
        "gpt-4o": (D("2.50"), D("10.00"), D("1.25")),
        "gpt-4o-mini": (D("0.15"), D("0.60"), D("0.075")),
        "gpt-4.1": (D("2.00"), D("8.00"), D("0.50")),
        "gpt-4.1-mini": (D("0.40"), D("1.60"), D("0.10")),
        "gpt-4.1-nano": (D("0.10"), D("0.40"), D("0.025")),
        "o3": (D("2.00"), D("8.00"), D("0.50")),
        "o4-mini": (D("1.10"), D("4.40"), D("0.275")),
        "gpt-5": (D("1.25"), D("10.00"), D("0.125")),
        "gpt-5-mini": (D("0.25"), D("2.00"), D("0.025")),
        "gpt-5-nano": (D("0.05"), D("0.40"), D("0.005")),
        "text-embedding-3-small": (D("0.02"), D("0"), None),
        "text-embedding-3-large": (D("0.13"), D("0"), None),
    },
    "anthropic": {
        "claude-3-opus-20240229": (D("15"), D("75"), D("1.50")),
        "claude-3-5-haiku-20241022": (D("0.80"), D("4.00"), D("0.08")),
        "claude-sonnet-4-20250514": (D("3.00"), D("15.00"), D("0.30")),
        "claude-opus-4-20250514": (D("15.00"), D("75.00"), D("1.50")),
        "claude-sonnet-4-5": (D("3.00"), D("15.00"), D("0.30")),
        "claude-haiku-4-5": (D("1.00"), D("5.00"), D("0.10")),
        "claude-opus-4-5": (D("5.00"), D("25.00"), D("0.50")),
    },
    "groq": {
        "llama3-70b-8192": (D("0.8"), D("0.8"), None),
        "llama-3.3-70b-versatile": (D("0.59"), D("0.79"), None),
        "llama-3.1-8b-instant": (D("0.05"), D("0.08"), None),
    },
    "sandbox": {
        "sandbox-echo": (D("0"), D("0"), None),
    },
}

DEFAULT_PROVIDER = "openai"
DEFAULT_MODEL = "gpt-4o"


def is_known_model(provider: str, model: str) -> bool:
    if provider in OPEN_MODEL_PROVIDERS:
        return bool(model)
    return model in MODELS.get(provider, {})
