"""HTTP for endpoints an organization supplied: checked at every connection, no platform secrets.

A provider connection of an organization may name its own ``base_url``. The SDK clients for
such a config (``ProviderConfig.endpoint_guard`` set) get an HTTP client built here instead of
the SDKs' default one:

- Every request goes through ``EndpointGuard.resolve``: the URL is resolved and checked (the
  platform's SSRF guard, ``tools.ssrf``), and the connection goes to the address that was
  checked (the URL's host is replaced by it; ``Host`` and TLS SNI keep the name, so
  certificates are still verified against it). A DNS answer that changes between check and
  connect (rebinding) cannot redirect the request.
- Redirects are not followed (an LLM API has no reason to send one) and environment proxies
  are never used: either would let a request leave the checked address.
- Any header carrying one of the platform's secrets is dropped before the request leaves: the
  SDKs read credentials and extra headers from the process environment (``OPENAI_API_KEY``,
  ``ANTHROPIC_AUTH_TOKEN``, ``*_CUSTOM_HEADERS``, ...) by themselves, and none of that may
  reach a server an organization chose, whatever the SDK version does.

No Django here: the guard is given by the caller (``executions/providers.py``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import httpx
import httpx2

from .data import EndpointGuard

log = logging.getLogger(__name__)

# What the SDKs read from the environment on their own and would send along: credentials,
# the platform's OpenAI organization and project, and whole extra headers.
SDK_SECRET_VARIABLES = (
    "OPENAI_API_KEY",
    "OPENAI_ADMIN_KEY",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "GROQ_API_KEY",
)
SDK_HEADER_VARIABLES = ("OPENAI_CUSTOM_HEADERS", "ANTHROPIC_CUSTOM_HEADERS", "GROQ_CUSTOM_HEADERS")
# Shorter values would match by accident (a "1" in a header); no real secret is this short.
MIN_SECRET_CHARS = 8


class EndpointRefused(Exception):
    """The guard refused the address (private, loopback, link-local, not allowed)."""


def platform_secrets(extra: Iterable[str] = ()) -> frozenset[str]:
    """The values no organization's server may receive: ``extra`` (the platform's configured
    keys) and whatever the SDKs would pick up from the environment."""
    values = [*extra, *(os.environ.get(name, "") for name in SDK_SECRET_VARIABLES)]
    for name in SDK_HEADER_VARIABLES:
        for line in os.environ.get(name, "").splitlines():
            values.append(line.partition(":")[2].strip())
    return frozenset(value for value in values if len(value) >= MIN_SECRET_CHARS)


class _Guarded:
    """The part shared by the httpx and httpx2 transports (the SDKs use one or the other)."""

    module: ModuleType

    def __init__(self, *, guard: EndpointGuard, limits: Any) -> None:
        self.guard = guard
        self.inner = self.module.HTTPTransport(limits=limits, trust_env=False)

    def handle_request(self, request: Any) -> Any:
        try:
            address = self.guard.resolve(str(request.url))
        except EndpointRefused:
            raise
        except Exception as exc:
            # The name did not resolve (or DNS is down): the provider cannot be reached now.
            raise self.module.ConnectError(f"{type(exc).__name__}: {exc}", request=request) from exc
        url = request.url
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions["sni_hostname"] = url.host  # certificates are checked against the name
        # The Host header was set from the URL when the request was built, and stays.
        headers = self._without_platform_secrets(request.headers)
        checked = self.module.Request(
            request.method, url.copy_with(host=address), headers=headers, stream=request.stream, extensions=extensions
        )
        return self.inner.handle_request(checked)

    def _without_platform_secrets(self, headers: Any) -> list[tuple[bytes, bytes]]:
        secrets = platform_secrets(self.guard.withheld)
        kept: list[tuple[bytes, bytes]] = []
        for name, value in headers.raw:
            text = value.decode("latin-1")
            if any(secret in text for secret in secrets):
                log.warning(
                    "dropped the %s header from a request to an organization's endpoint: it carried a platform secret",
                    name.decode("latin-1"),
                )
                continue
            kept.append((name, value))
        return kept

    def close(self) -> None:
        self.inner.close()


class GuardedTransport(_Guarded, httpx.BaseTransport):
    module = httpx


class GuardedTransport2(_Guarded, httpx2.BaseTransport):
    module = httpx2


def guarded_http_client(*, module: ModuleType, guard: EndpointGuard, limits: Any, timeout: Any) -> Any:
    """An httpx (or httpx2) client for an organization's endpoint; see the module doc."""
    transport_class = GuardedTransport2 if module is httpx2 else GuardedTransport
    return module.Client(
        transport=transport_class(guard=guard, limits=limits),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
