"""Provider connections: an organization's (or the platform's) endpoints and keys.

An organization's connection may name a server of its own (``base_url``): it must then carry
its own key (the platform's keys only ever go to the providers' own endpoints), and the URL
must pass the SSRF guard. Platform connections are the operators' and trusted as they are.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction

from accounts.access import Actor
from accounts.services import activity_record
from agents.models import ProviderConnection
from billing.catalog import PROVIDERS
from config.api.errors import InvalidInput
from config.ssrf import UnresolvableHost, UrlRefused, check_url

FIELDS = {
    "provider", "name", "base_url", "api_key", "default_model", "available_models", "is_default", "is_active",
    "requests_per_minute", "tokens_per_minute", "openai_organization",
}  # fmt: skip
# OpenAI's organization ids: "org-" and letters/digits. Checked strictly, since it becomes a header.
OPENAI_ORGANIZATION = re.compile(r"^org-[A-Za-z0-9_-]{1,96}$")
MAX_KEY_CHARS = 500
# Providers with a platform key (PROVIDER_ENV, the SDKs' environment variables): a connection of
# theirs without a key of its own would be called with the platform's. An openai_compatible
# server never gets a platform key, so it may do without one (a local server needs none).
PLATFORM_KEY_PROVIDERS = frozenset({"openai", "anthropic", "groq"})


def _clean(
    data: dict[str, Any], *, partial: bool, current: ProviderConnection | None = None, platform: bool = False
) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    for key in sorted(set(data) - FIELDS):
        errors[key] = ["Unknown field."]
    provider = data.get("provider", current.provider if current else None)
    if "provider" in data or not partial:
        if provider not in PROVIDERS:
            errors["provider"] = [f"Unknown provider {provider!r}; use one of {list(PROVIDERS)}."]
        elif current is not None and provider != current.provider:
            errors["provider"] = ["A connection's provider cannot change; create another connection."]
    if data.get("base_url"):
        url = data["base_url"]
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            errors["base_url"] = ["Must be an http(s) URL."]
        elif not platform:
            problem = _address_problem(url)
            if problem:
                errors["base_url"] = [problem]
    if provider == "openai_compatible" and not (data.get("base_url") or (current and current.base_url)):
        errors["base_url"] = ["An OpenAI-compatible server needs its base URL."]
    if "api_key" in data and (not isinstance(data["api_key"], str) or len(data["api_key"]) > MAX_KEY_CHARS):
        errors["api_key"] = [f"A string of at most {MAX_KEY_CHARS} characters."]
    elif not platform and provider in PLATFORM_KEY_PROVIDERS and _keyless_own_url(data, current):
        errors["api_key"] = [
            "A connection with its own base_url needs its own API key: the platform's key is only ever sent "
            "to the provider's own endpoint."
        ]
    organization_id = data.get("openai_organization")
    if organization_id:
        if not isinstance(organization_id, str) or not OPENAI_ORGANIZATION.match(organization_id):
            errors["openai_organization"] = ["An OpenAI organization id such as org-AbC123, or empty."]
        elif provider != "openai":
            errors["openai_organization"] = [
                f"Only OpenAI takes an organization id; a {provider} connection would never send it."
            ]
    elif organization_id is not None and organization_id != "":
        errors["openai_organization"] = ["An OpenAI organization id such as org-AbC123, or empty."]
    models = data.get("available_models")
    if models is not None and (not isinstance(models, list) or not all(isinstance(m, str) and m for m in models)):
        errors["available_models"] = ["A list of model names."]
    for key in ("name", "default_model"):
        if key in data and not isinstance(data[key], str):
            errors[key] = ["Must be a string."]
    for key in ("is_default", "is_active"):
        if key in data and not isinstance(data[key], bool):
            errors[key] = ["Must be true or false."]
    for key in ("requests_per_minute", "tokens_per_minute"):
        value = data.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            errors[key] = ["A whole number of at least 1, or null."]
    if errors:
        raise InvalidInput(validation_errors=errors)
    return data


def _address_problem(url: str) -> str | None:
    """Why an organization's server may not be reached at ``url`` (the SSRF guard); every
    call checks again, since what a name resolves to can change after the save."""
    try:
        check_url(url)
    except UnresolvableHost:
        return None  # DNS may be down now, or the name new: the call-time check decides
    except UrlRefused as exc:
        return str(exc)  # "Refused: 10.0.0.5 is 10.0.0.5, a private address." and the like
    return None


def _keyless_own_url(data: dict[str, Any], current: ProviderConnection | None) -> bool:
    """Whether the connection would point at a URL of its own with no key of its own. A
    switched-off connection is never called, so one may be switched off as it is."""
    base_url = data.get("base_url", current.base_url if current else "")
    api_key = data.get("api_key", current.api_key if current else "")
    active = data.get("is_active", current.is_active if current else True)
    return bool(base_url) and not api_key and active is not False


def _apply(connection: ProviderConnection, data: dict[str, Any]) -> None:
    for key, value in data.items():
        if key == "api_key":
            connection.set_api_key(value)
        else:
            setattr(connection, key, value)


def _log(connection: ProviderConnection, actor: Actor | None, action: str, summary: dict[str, Any]) -> None:
    # Platform connections belong to no organization, so they have no activity log.
    if connection.organization is not None:
        activity_record(
            organization=connection.organization, actor=actor, action=action, target=connection,
            request_summary=summary,
        )  # fmt: skip


def _make_sole_default(connection: ProviderConnection) -> None:
    if connection.is_default:
        siblings = ProviderConnection.objects.select_for_update().filter(provider=connection.provider, is_default=True)
        if connection.organization_id is None:
            siblings = siblings.filter(organization__isnull=True)
        else:
            siblings = siblings.filter(organization_id=connection.organization_id)
        siblings.exclude(pk=connection.pk).update(is_default=False)


@transaction.atomic
def provider_connection_create(
    *, actor: Actor | None, data: dict[str, Any], platform: bool = False
) -> ProviderConnection:
    data = _clean(dict(data), partial=False, platform=platform or actor is None)
    connection = ProviderConnection(
        organization=None if platform or actor is None else actor.organization,
        created_by=actor.user if actor else None,  # type: ignore[misc]
    )
    _apply(connection, data)
    _make_sole_default(connection)
    connection.save()
    _log(connection, actor, "provider_connection.created", {"provider": connection.provider, "name": connection.name})
    return connection


@transaction.atomic
def provider_connection_update(
    *, actor: Actor | None, connection: ProviderConnection, data: dict[str, Any]
) -> ProviderConnection:
    data = _clean(dict(data), partial=True, current=connection, platform=connection.organization_id is None)
    _apply(connection, data)
    _make_sole_default(connection)
    connection.save()
    # Which fields changed, never their values (the key above all).
    _log(connection, actor, "provider_connection.updated", {"changed": sorted(data)})
    return connection


@transaction.atomic
def provider_connection_delete(*, actor: Actor | None, connection: ProviderConnection) -> None:
    _log(connection, actor, "provider_connection.deleted", {"provider": connection.provider})
    connection.delete()
