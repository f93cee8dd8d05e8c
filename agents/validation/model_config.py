"""Model settings (provider, model, sampling, fallbacks, provider-specific extras) and limits."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q

from agents.models import ProviderConnection
from agents.validation.base import Errors, as_decimal, int_in
from billing.catalog import MODELS, OPEN_MODEL_PROVIDERS, PROVIDERS, is_known_model
from billing.pricing import model_price
from config.json_schema import schema_errors

MAX_FALLBACKS = 5
LIMIT_RANGES = {
    "max_steps_per_run": (1, 200),
    "max_tool_calls_per_step": (1, 50),
    # The Celery visibility timeout is derived from EXECUTION_MAX_SECONDS: no run may outlive it.
    "timeout_seconds": (1, None),
    "max_runs_per_hour": (1, 1_000_000),
    "max_runs_per_day": (1, 10_000_000),
}
MAX_TOKENS_RANGE = (1, 1_000_000)

# Provider-specific parameters an agent may pass through, each checked by a small schema.
EXTRA_PARAMETERS: dict[str, dict[str, Any]] = {
    "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]},
    "stop_sequences": {"type": "array", "items": {"type": "string"}, "maxItems": 16},
    "response_format": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": ["text", "json_object", "json_schema"]}},
    },
    "seed": {"type": "integer"},
    "top_k": {"type": "integer", "minimum": 1},
    "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2},
    "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2},
    "logit_bias": {"type": "object", "additionalProperties": {"type": "number", "minimum": -100, "maximum": 100}},
    "parallel_tool_calls": {"type": "boolean"},
    "reasoning_effort": {"enum": ["low", "medium", "high"]},
    "user": {"type": "string", "maxLength": 256},
    "repetition_penalty": {"type": "number", "exclusiveMinimum": 0},
    "min_p": {"type": "number", "minimum": 0, "maximum": 1},
    "thinking": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": ["enabled", "disabled"]}, "budget_tokens": {"type": "integer", "minimum": 1}},
    },
}
_OPENAI_EXTRAS = frozenset(
    {
        "stop",
        "response_format",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "parallel_tool_calls",
        "reasoning_effort",
        "user",
    }
)
PROVIDER_EXTRAS: dict[str, frozenset[str]] = {
    "openai": _OPENAI_EXTRAS,
    # Servers such as vLLM and Ollama accept sampling knobs OpenAI does not.
    "openai_compatible": _OPENAI_EXTRAS | {"top_k", "repetition_penalty", "min_p"},
    "anthropic": frozenset({"stop_sequences", "top_k", "thinking"}),
    "groq": frozenset(
        {"stop", "response_format", "seed", "presence_penalty", "frequency_penalty", "parallel_tool_calls"}
    ),
    "sandbox": frozenset({"seed", "stop"}),
}


def _connection_models(*, organization_id: Any, provider: str) -> set[str]:
    """Model names the organization's and the platform's active connections add for a provider."""
    names: set[str] = set()
    rows = ProviderConnection.objects.filter(
        Q(organization_id=organization_id) | Q(organization__isnull=True), provider=provider, is_active=True
    ).values_list("available_models", "default_model")
    for available, default in rows:
        names.update(m for m in available or [] if isinstance(m, str))
        if default:
            names.add(default)
    return names


def _model_known(provider: str, model: Any, organization_id: Any) -> bool:
    """In the catalog, or served by one of the organization's (or the platform's) connections."""
    if not isinstance(model, str):
        return False
    if is_known_model(provider, model):
        return True
    return model in _connection_models(organization_id=organization_id, provider=provider)


# Providers ship models every month: a model Agentry does not list yet is accepted (with a
# warning, priced at the default price), so only its shape is checked here.
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,119}$")
MODEL_NAME_RULE = "A model name: letters, digits and . _ : / @ + - (at most 120 characters)."


def _model_name_ok(model: Any) -> bool:
    return isinstance(model, str) and MODEL_NAME.match(model) is not None


def _model_problem(provider: str, model: Any, organization_id: Any) -> str | None:
    """What is wrong with naming ``model`` for ``provider`` (None: accepted, maybe with a warning)."""
    if not _model_name_ok(model):
        return MODEL_NAME_RULE
    if provider not in OPEN_MODEL_PROVIDERS and not _model_known(provider, model, organization_id):
        # A model of another provider's catalog is a mix-up, not a model Agentry does not know yet.
        owner = next((p for p, models in MODELS.items() if p != provider and model in models), None)
        if owner is not None:
            return f"{model!r} is a model of {owner}, not {provider}; set the provider to {owner}."
    return None


def model_warnings(config: dict[str, Any], organization_id: Any = None) -> list[str]:
    """The primary and fallback models Agentry does not know (not in its catalog, served by
    none of the organization's connections): accepted, sent to the provider as named, and
    charged at the default price unless an operator priced them; their usage rows are
    flagged ``priced_by_default``."""
    mc = config.get("model_config")
    if not isinstance(mc, dict):
        return []
    entries = [("model_config.model", mc.get("provider"), mc.get("model"))]
    for index, item in enumerate(mc.get("fallbacks") or []):
        if isinstance(item, dict):
            entries.append((f"model_config.fallbacks.{index}.model", item.get("provider"), item.get("model")))
    warnings = []
    for path, provider, model in entries:
        if provider not in PROVIDERS or not _model_name_ok(model) or _model_known(provider, model, organization_id):
            continue
        text = f"{path}: {model!r} is not in Agentry's {provider} catalog; it is sent to {provider} as named"
        if model_price(str(provider), str(model)).is_default:
            price_in, price_out = settings.DEFAULT_MODEL_PRICE
            text += (
                f" and charged at the default price (USD {price_in} in / {price_out} out per million tokens)"
                " until an operator adds its price; its usage is flagged priced_by_default"
            )
        warnings.append(text + ".")
    return warnings


def _check_connection(path: str, provider: Any, connection_id: Any, organization_id: Any, errors: Errors) -> None:
    try:
        found = ProviderConnection.objects.filter(
            Q(organization_id=organization_id) | Q(organization__isnull=True),
            pk=connection_id,
            provider=provider,
            is_active=True,
        ).exists()
    except (ValueError, TypeError, ValidationError):
        found = False
    if not found:
        errors.add(path, f"No active {provider} connection {connection_id!r} in this organization.")


def validate_model(config: dict, errors: Errors, organization_id: Any = None) -> None:
    mc = config.get("model_config")
    if not isinstance(mc, dict):
        errors.add("model_config", "Must be an object.")
        return
    if mc.get("connection_id") is not None:
        _check_connection(
            "model_config.connection_id", mc.get("provider"), mc["connection_id"], organization_id, errors
        )
    unknown = set(mc) - {
        "provider",
        "model",
        "temperature",
        "max_tokens",
        "top_p",
        "fallbacks",
        "extra",
        "connection_id",
    }
    for key in sorted(unknown):
        errors.add(f"model_config.{key}", "Unknown field; provider-specific parameters go in model_config.extra.")
    provider, model = mc.get("provider"), mc.get("model")
    if provider not in PROVIDERS:
        errors.add("model_config.provider", f"Unknown provider {provider!r}; use one of {list(PROVIDERS)}.")
    elif problem := _model_problem(provider, model, organization_id):
        errors.add("model_config.model", problem)

    temperature = as_decimal(mc.get("temperature"))
    if temperature is None or not Decimal("0") <= temperature <= Decimal("2"):
        errors.add("model_config.temperature", "Must be a number from 0 to 2.")
    else:
        mc["temperature"] = float(temperature.quantize(Decimal("0.01")))
    if not int_in(mc.get("max_tokens"), *MAX_TOKENS_RANGE):
        errors.add(
            "model_config.max_tokens", f"Must be a whole number from {MAX_TOKENS_RANGE[0]} to {MAX_TOKENS_RANGE[1]}."
        )
    if mc.get("top_p") is not None:
        top_p = as_decimal(mc["top_p"])
        if top_p is None or not Decimal("0") < top_p <= Decimal("1"):
            errors.add("model_config.top_p", "Must be a number greater than 0 and at most 1, or null.")
        else:
            mc["top_p"] = float(top_p.quantize(Decimal("0.01")))

    fallbacks = mc.get("fallbacks")
    if not isinstance(fallbacks, list):
        errors.add("model_config.fallbacks", "Must be an ordered list of {provider, model}.")
    else:
        if len(fallbacks) > MAX_FALLBACKS:
            errors.add("model_config.fallbacks", f"At most {MAX_FALLBACKS} fallbacks.")
        seen = {(provider, model)}
        for index, item in enumerate(fallbacks):
            path = f"model_config.fallbacks.{index}"
            if not isinstance(item, dict) or not {"provider", "model"} <= set(item) <= {
                "provider",
                "model",
                "connection_id",
            }:
                errors.add(path, "Must be an object with provider and model (and optionally connection_id).")
                continue
            if item.get("connection_id") is not None:
                _check_connection(
                    f"{path}.connection_id", item["provider"], item["connection_id"], organization_id, errors
                )
            if item["provider"] not in PROVIDERS:
                errors.add(f"{path}.provider", f"Unknown provider {item['provider']!r}.")
            elif problem := _model_problem(item["provider"], item["model"], organization_id):
                errors.add(f"{path}.model", problem)
            pair = (item["provider"], item["model"])
            if pair in seen:
                errors.add(path, "Repeats the primary model or an earlier fallback.")
            seen.add(pair)

    extra = mc.get("extra")
    if not isinstance(extra, dict):
        errors.add("model_config.extra", "Must be an object.")
    elif provider in PROVIDERS:
        allowed = PROVIDER_EXTRAS.get(provider, frozenset())
        for key, value in extra.items():
            path = f"model_config.extra.{key}"
            if key not in allowed:
                errors.add(path, f"Not a parameter Agentry passes to {provider}; allowed: {sorted(allowed)}.")
                continue
            problems = schema_errors(EXTRA_PARAMETERS[key], value)
            if problems:
                errors.add(path, problems[0].message)


def validate_limits(config: dict, errors: Errors) -> None:
    limits = config.get("limits")
    if not isinstance(limits, dict):
        errors.add("limits", "Must be an object.")
        return
    for key in sorted(set(limits) - set(LIMIT_RANGES)):
        errors.add(f"limits.{key}", "Unknown limit.")
    for key, (low, high) in LIMIT_RANGES.items():
        if key == "timeout_seconds":
            high = settings.EXECUTION_MAX_SECONDS
        if not int_in(limits.get(key), low, high):
            bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
            errors.add(f"limits.{key}", f"Must be a whole number {bound}.")


# The per-agent conversation window (``memory``): tokens and messages of earlier turns.
MEMORY_RANGES = {"context_window": (100, 200_000), "max_history": (0, 500)}


def validate_memory(config: dict, errors: Errors) -> None:
    memory = config.get("memory")
    if memory is None:
        config["memory"] = {}
        return
    if not isinstance(memory, dict):
        errors.add("memory", "Must be an object: {context_window, max_history}.")
        return
    for key in sorted(set(memory) - set(MEMORY_RANGES)):
        errors.add(f"memory.{key}", f"Unknown setting; one of {sorted(MEMORY_RANGES)}.")
    for key, (low, high) in MEMORY_RANGES.items():
        if key in memory and not int_in(memory[key], low, high):
            errors.add(f"memory.{key}", f"Must be a whole number from {low} to {high}.")
