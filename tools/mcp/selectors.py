"""Reads for MCP servers: an organization sees its own and the platform's shared with it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.access import Actor
from config.api.ids import one_or_not_found
from config.ssrf import ssrf_guard
from tools.mcp.client import Endpoint
from tools.models import McpServer


def platform_servers_shared_with(organization_id: Any) -> QuerySet[McpServer]:
    """The platform's servers ``organization_id`` may use (an uncorrelated subquery)."""
    shared = McpServer.shared_with.through.objects.filter(mcpserver_id=OuterRef("pk"), organization_id=organization_id)
    return McpServer.objects.filter(Q(shared_with_all=True) | Q(Exists(shared)), organization__isnull=True)


def visible_servers_q(organization_id: Any) -> Q:
    return Q(organization_id=organization_id) | Q(pk__in=platform_servers_shared_with(organization_id).values("pk"))


def mcp_server_list(*, actor: Actor) -> QuerySet[McpServer]:
    return McpServer.objects.filter(visible_servers_q(actor.organization.pk)).order_by("name", "organization_id")


def mcp_server_get(*, actor: Actor, server_id: Any) -> McpServer:
    return one_or_not_found(mcp_server_list(actor=actor), server_id, "MCP server not found.")


def mcp_server_for_call(*, server_id: Any, organization_id: Any) -> McpServer | None:
    """The active server a run of ``organization_id`` may call (None: not, or no longer)."""
    return McpServer.objects.filter(visible_servers_q(organization_id), pk=server_id, is_active=True).first()


def header_names(server: McpServer) -> list[str]:
    return sorted(json.loads(server.headers)) if server.headers else []


def server_secrets(server: McpServer) -> list[str]:
    """Values the server's requests carry that must never show anywhere."""
    values: list[str] = []
    for raw in (server.headers, server.env):
        if raw:
            values.extend(str(v) for v in json.loads(raw).values())
    return values


def servers_due_for_sync(*, now: Any, limit: int) -> list[Any]:
    """Active servers whose tools should be listed again: announced changes first, then
    never synced, then the longest ago (older than ``AGENTRY_MCP_SYNC_SECONDS``)."""
    stale = now - timedelta(seconds=int(getattr(settings, "AGENTRY_MCP_SYNC_SECONDS", 3600)))
    due = McpServer.objects.filter(is_active=True).filter(
        Q(sync_requested_at__isnull=False) | Q(last_synced_at__isnull=True) | Q(last_synced_at__lt=stale)
    )
    return list(due.order_by("sync_requested_at", "last_synced_at").values_list("pk", flat=True)[:limit])


def endpoint_for(server: McpServer) -> Endpoint:
    """How the client reaches ``server`` (credentials in clear: never log this)."""
    headers = json.loads(server.headers) if server.headers else {}
    env = json.loads(server.env) if server.env else {}
    return Endpoint(
        server_id=str(server.pk),
        name=server.name,
        transport=server.transport,
        url=server.url,
        headers=tuple(sorted((str(k), str(v)) for k, v in headers.items())),
        command=server.command,
        args=tuple(str(a) for a in (server.args or [])),
        env=tuple(sorted((str(k), str(v)) for k, v in env.items())),
        version=server.updated_at.isoformat() if server.updated_at else "",
        guard=None if server.transport == "stdio" else ssrf_guard(),
    )
