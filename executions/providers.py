"""Which provider endpoints and keys a run talks to.

Order: the agent's model first, then its ``fallbacks`` in order. For each, the endpoint and
key come from, in this order: the connection the agent names (``connection_id``), the
organization's default connection for that provider, the platform's default connection,
and last the SDKs' standard environment variables (settings.PROVIDER_ENV).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Q

from executions.llm.base import ProviderConfig

# Per-call network timeout; the run's own timeout_seconds bounds the whole run.
LLM_TIMEOUT_SECONDS = 60
LLM_MAX_RETRIES = 2


@dataclass
class ResolvedProviders:
    configs: list[ProviderConfig]
    # Per config label: the connection's id and its per-minute limits (None = no limit).
    limits: dict[str, tuple[str, int | None, int | None]] = field(default_factory=dict)


def _connections(organization_id: Any, providers: set[str]) -> list[Any]:
    from agents.models import ProviderConnection

    return list(
        ProviderConnection.objects.filter(
            Q(organization_id=organization_id) | Q(organization__isnull=True), provider__in=providers, is_active=True
        )
    )


def _pick(connections: list[Any], entry: dict[str, Any], organization_id: Any) -> Any:
    provider = entry["provider"]
    if entry.get("connection_id"):
        return next((c for c in connections if str(c.pk) == str(entry["connection_id"])), None)
    for owner in (organization_id, None):
        for connection in connections:
            if connection.provider == provider and connection.organization_id == owner and connection.is_default:
                return connection
    return None


def resolve_providers(*, model_config: dict[str, Any], organization_id: Any = None) -> ResolvedProviders:
    chain = [
        {"provider": model_config["provider"], "model": model_config["model"],
         "connection_id": model_config.get("connection_id")},
        *[f for f in model_config.get("fallbacks") or [] if isinstance(f, dict)],
    ]  # fmt: skip
    connections = _connections(organization_id, {entry["provider"] for entry in chain})
    resolved = ResolvedProviders(configs=[])
    for entry in chain:
        provider = entry["provider"]
        connection = _pick(connections, entry, organization_id)
        # openai_compatible servers never get the platform's OpenAI key: it would hand that
        # key to whatever server an agent names. They take their own key or none.
        env = settings.PROVIDER_ENV.get(provider, {})
        api_key = (connection.api_key if connection else "") or env.get("api_key") or None
        base_url = (connection.base_url if connection else "") or env.get("base_url") or None
        config = ProviderConfig(
            provider=provider,
            model=entry["model"],
            api_key=api_key,
            base_url=base_url,
            timeout=LLM_TIMEOUT_SECONDS,
            max_retries=LLM_MAX_RETRIES,
        )
        resolved.configs.append(config)
        if connection is not None and (connection.requests_per_minute or connection.tokens_per_minute):
            resolved.limits[config.label] = (
                str(connection.pk),
                connection.requests_per_minute,
                connection.tokens_per_minute,
            )
    return resolved


def provider_configs(*, model_config: dict[str, Any], organization_id: Any = None) -> list[ProviderConfig]:
    return resolve_providers(model_config=model_config, organization_id=organization_id).configs
