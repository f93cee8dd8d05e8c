"""HTTP for endpoints an organization supplied: checked at every connection, no platform secrets.

A provider connection of an organization may name its own ``base_url``, and an organization
may add MCP servers. The SDK clients for these (``ProviderConfig.endpoint_guard`` set; the MCP
client in ``tools/mcp/``) get an HTTP client built here instead of the SDKs' default one:

- Every request goes through ``EndpointGuard.resolve``: the URL is resolved and checked (the
  platform's SSRF guard, ``config.ssrf``), and the connection goes to the address that was
  checked (the URL's host is replaced by it; ``Host`` and TLS SNI keep the name, so
  certificates are still verified against it). A DNS answer that changes between check and
  connect (rebinding) cannot redirect the request.
- Redirects are not followed (an LLM API has no reason to send one) and environment proxies
  are never used: either would let a request leave the checked address.
- Any header carrying one of the platform's secrets is dropped before the request leaves: the
  SDKs read credentials and extra headers from the process environment (``OPENAI_API_KEY``,
  ``ANTHROPIC_AUTH_TOKEN``, ``*_CUSTOM_HEADERS``, ...) by themselves, and none of that may
  reach a server an organization chose, whatever the SDK version does.

No Django here: the guard is given by the caller (``executions/providers.py``,
``tools/mcp/transport.py``): anything with ``resolve(url) -> address`` and ``withheld``.
The LLM SDKs are synchronous (``guarded_http_client``); the MCP SDK is asynchronous
(``guarded_async_http_client``), and resolves the name in a thread so the loop never blocks.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any, Protocol

import anyio
import httpx
import httpx2

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


class EndpointGuard(Protocol):
    """``resolve(url)``: the checked address to connect to, or ``EndpointRefused``;
    ``withheld``: the platform's secrets that must never go there."""

    @property
    def resolve(self) -> Callable[[str], str]: ...

    @property
    def withheld(self) -> frozenset[str]: ...


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
        return self.inner.handle_request(self._checked(request, self._resolve(request)))

    def _resolve(self, request: Any) -> str:
        try:
            return self.guard.resolve(str(request.url))
        except EndpointRefused:
            raise
        except Exception as exc:
            # The name did not resolve (or DNS is down): the endpoint cannot be reached now.
            raise self.module.ConnectError(f"{type(exc).__name__}: {exc}", request=request) from exc

    def _checked(self, request: Any, address: str) -> Any:
        """``request`` sent to ``address``, without any platform secret."""
        url = request.url
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions["sni_hostname"] = url.host  # certificates are checked against the name
        # The Host header was set from the URL when the request was built, and stays.
        headers = self._without_platform_secrets(request.headers)
        return self.module.Request(
            request.method, url.copy_with(host=address), headers=headers, stream=request.stream, extensions=extensions
        )

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


class AsyncGuardedTransport2(_Guarded, httpx2.AsyncBaseTransport):
    """The same checks for an asyncio client (httpx2, as the MCP SDK uses)."""

    module = httpx2

    def __init__(self, *, guard: EndpointGuard, limits: Any) -> None:
        self.guard = guard
        self.inner = httpx2.AsyncHTTPTransport(limits=limits, trust_env=False)

    async def handle_async_request(self, request: Any) -> Any:
        # getaddrinfo blocks: in a thread, so one slow DNS answer does not stall every
        # other connection on the loop.
        address = await anyio.to_thread.run_sync(self._resolve, request)
        return await self.inner.handle_async_request(self._checked(request, address))

    async def aclose(self) -> None:
        await self.inner.aclose()


def guarded_http_client(*, module: ModuleType, guard: EndpointGuard, limits: Any, timeout: Any) -> Any:
    """An httpx (or httpx2) client for an organization's endpoint; see the module doc."""
    transport_class = GuardedTransport2 if module is httpx2 else GuardedTransport
    return module.Client(
        transport=transport_class(guard=guard, limits=limits),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )


def guarded_async_http_client(
    *,
    guard: EndpointGuard,
    limits: Any,
    timeout: Any,
    headers: dict[str, str] | None = None,
    event_hooks: dict[str, list[Callable[..., Any]]] | None = None,
) -> httpx2.AsyncClient:
    """An asyncio httpx2 client for an organization's endpoint; see the module doc."""
    return httpx2.AsyncClient(
        transport=AsyncGuardedTransport2(guard=guard, limits=limits),
        timeout=timeout,
        headers=headers,
        event_hooks=event_hooks,
        follow_redirects=False,
        trust_env=False,
    )
