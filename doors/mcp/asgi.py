"""``/mcp/`` as an ASGI app beside Django's: the host and the bearer token are checked here,
Django's way, before the MCP SDK's streamable HTTP transport sees the request.

The transport runs stateless (a fresh server session per request, no session id to keep): any
web process behind a load balancer answers any request, and a redeploy forgets nothing a client
relies on. Progress notifications still reach the caller on its ``tools/call`` response stream.
DNS-rebinding protection is Django's: the Host must be one of ``ALLOWED_HOSTS``, and a browser
page cannot add the bearer token a call needs.
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection
from django.http.request import split_domain_port, validate_host
from mcp.server.transport_security import TransportSecuritySettings

from accounts.access import Actor, token_actor
from accounts.authentication import TokenFailed, token_for_raw
from config.api.errors import ERROR_CODES, error_body
from doors.mcp.server import ACTOR_SCOPE_KEY, build_server

PATH = "/mcp/"


def _actor_for(raw: str) -> Actor | None:
    close_old_connections()
    try:
        return token_actor(token_for_raw(raw))
    finally:
        connection.close()


class McpDoor:
    def __init__(self) -> None:
        self.server = build_server()
        self.app = self.server.streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            host="0.0.0.0",  # not a bind address: keeps the SDK from adding its localhost-only check  # noqa: S104
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # lifespan: starts and stops the SDK's session manager
            await self.app(scope, receive, send)
            return
        if scope["path"] == PATH.rstrip("/"):
            scope = {**scope, "path": PATH, "raw_path": PATH.encode()}
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        domain, _port = split_domain_port(headers.get("host", ""))
        if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
            await _reply(send, 400, "MalformedRequest", "The Host header is not one this installation serves.")
            return
        parts = headers.get("authorization", "").split()
        if not parts or parts[0].lower() != "bearer":
            await _reply(send, 401, "NotAuthenticated", "Send 'Authorization: Bearer <Agentry API token>'.")
            return
        if len(parts) != 2:
            await _reply(send, 401, "InvalidToken", "The Authorization header must be 'Bearer <token>'.")
            return
        try:
            actor = await sync_to_async(_actor_for, thread_sensitive=False)(parts[1])
        except TokenFailed as failed:
            await _reply(send, 401, failed.agentry_code, str(failed.detail))
            return
        if actor is None:
            await _reply(send, 401, "InvalidToken", "The token's user is no longer a member of its organization.")
            return
        await self.app({**scope, ACTOR_SCOPE_KEY: actor}, receive, send)


async def _reply(send: Any, status: int, code: str, message: str) -> None:
    assert ERROR_CODES[code][0] == status
    body = json.dumps(error_body(code, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="mcp"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
