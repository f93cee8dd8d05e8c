"""Which provider endpoints and keys a run talks to.

Order: the agent's model first, then its ``fallbacks`` in order. For each, the endpoint and
key come from, in this order: the connection the agent names (``connection_id``), the
organization's default connection for that provider, the platform's default connection,
and last the SDKs' standard environment variables (settings.PROVIDER_ENV).

The platform's keys (the environment's) go only to the providers' own endpoints (or the
operator's ``*_BASE_URL``) and to platform connections, which operators make. A connection of
an organization with a base URL of its own is the organization's server: it is called with
its own key or not at all, and every connection to it goes through the SSRF guard
(``config/ssrf.py``, ``config/guarded_http.py``), whatever its row says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Q

from agents.models import ProviderConnection
from config.guarded_http import EndpointRefused
from config.ssrf import SSRFBlocked, check_url
from executions.llm.base import EndpointGuard, ProviderConfig

# Per-call network timeout; the run's own timeout_seconds bounds the whole run.
LLM_TIMEOUT_SECONDS = 60
LLM_MAX_RETRIES = 2


@dataclass
class ResolvedProviders:
    configs: list[ProviderConfig]
    # Per config label: the connection's id and its per-minute limits (None = no limit).
    limits: dict[str, tuple[str, int | None, int | None]] = field(default_factory=dict)


def _connections(organization_id: Any, providers: set[str]) -> list[Any]:
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


def _checked_address(url: str) -> str:
    """The SSRF guard for an organization's endpoint: the one address to connect to."""
    try:
        return str(check_url(url)[1])
    except SSRFBlocked as exc:
        raise EndpointRefused(str(exc)) from None


def organization_guard() -> EndpointGuard:
    withheld = frozenset(env["api_key"] for env in settings.PROVIDER_ENV.values() if env.get("api_key"))
    return EndpointGuard(resolve=_checked_address, withheld=withheld)


def connection_config(
    *,
    provider: str,
    model: str,
    connection: Any,
    timeout: float = LLM_TIMEOUT_SECONDS,
    max_retries: int = LLM_MAX_RETRIES,
) -> ProviderConfig:
    """The endpoint and key for ``provider`` through ``connection`` (None: the environment's)."""
    if connection is not None and connection.organization_id is not None and connection.base_url:
        # The organization's own server: its own key or none (the adapter then refuses to
        # call it), never the environment's; reached only through the SSRF guard.
        return ProviderConfig(
            provider=provider,
            model=model,
            api_key=connection.api_key or None,
            base_url=connection.base_url,
            timeout=timeout,
            max_retries=max_retries,
            endpoint_guard=organization_guard(),
            organization=_openai_organization(provider, connection),
        )
    env = settings.PROVIDER_ENV.get(provider, {})
    # openai_compatible has no environment entry: it never gets the platform's OpenAI key,
    # which would hand that key to whatever server an agent names.
    return ProviderConfig(
        provider=provider,
        model=model,
        api_key=(connection.api_key if connection else "") or env.get("api_key") or None,
        base_url=(connection.base_url if connection else "") or env.get("base_url") or None,
        timeout=timeout,
        max_retries=max_retries,
        organization=_openai_organization(provider, connection),
    )


def _openai_organization(provider: str, connection: Any) -> str | None:
    """The connection's OpenAI organization id, for OpenAI calls only (the service refuses it
    on other providers' connections; checked again here, a header never goes astray)."""
    if provider != "openai" or connection is None:
        return None
    return getattr(connection, "openai_organization", "") or None


def resolve_providers(*, model_config: dict[str, Any], organization_id: Any = None) -> ResolvedProviders:
    chain = [
        {"provider": model_config["provider"], "model": model_config["model"],
         "connection_id": model_config.get("connection_id")},
        *[f for f in model_config.get("fallbacks") or [] if isinstance(f, dict)],
    ]  # fmt: skip
    connections = _connections(organization_id, {entry["provider"] for entry in chain})
    resolved = ResolvedProviders(configs=[])
    for entry in chain:
        connection = _pick(connections, entry, organization_id)
        config = connection_config(provider=entry["provider"], model=entry["model"], connection=connection)
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
