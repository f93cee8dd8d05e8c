"""Writes for MCP servers: organizations' servers (the API and the admin), the sync that turns
a server's tools into ``Tool`` rows, and the re-sync a server asks for.

A sync connects, lists every tool (following ``nextCursor``) and writes one ``Tool`` row per
tool it can offer, named ``mcp__<server>__<tool>``, with the gateway's defaults from the
tool's annotations (``annotation_defaults``). A tool it cannot offer (a schema the platform
refuses, a name model providers do not accept) is listed in ``McpServer.tools`` with the
reason in its ``warning`` and gets no row: it is never silently dropped. A failed sync sets
``status`` and ``last_error`` and leaves the tools of the last good sync in place (a server
down for a minute should not make agents forget their tools; their calls fail clearly).
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.access import Actor
from accounts.services import activity_record
from billing.quotas import plan_feature_require
from config.api.errors import ApiError, InvalidInput
from config.json_schema import schema_problems
from tools import tasks
from tools.builtins.base import ToolError
from tools.mcp import client
from tools.mcp.client import McpError
from tools.mcp.platform import mcp_platform_servers_sync
from tools.mcp.selectors import endpoint_for, servers_due_for_sync
from tools.models import HandlerType, McpServer, McpServerStatus, McpTransport, Tool
from tools.ssrf import UnresolvableHost, check_url
from tools.view_cache import registry_changed

SERVER_NAME = re.compile(r"^[a-z0-9]+(?:[_-][a-z0-9]+)*$")
SERVER_NAME_MAX = 32
# What model providers accept as a function name (OpenAI, Anthropic, Groq): the full
# ``mcp__<server>__<tool>`` must fit.
PROVIDER_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PREFIX = "mcp__"
MAX_TOOLS = 200
SYNC_SECONDS = 20.0
ERROR_MAX_CHARS = 500
DESCRIPTION_MAX_CHARS = 4_000
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
# Headers the transport sets itself; a tenant's value would break the protocol or smuggle.
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "content-type", "accept", "transfer-encoding", "connection", "mcp-session-id",
     "mcp-protocol-version", "last-event-id"}
)  # fmt: skip
NETWORK_TRANSPORTS = (McpTransport.STREAMABLE_HTTP.value, McpTransport.SSE.value)


def tool_name(server_name: str, tool: str) -> str:
    return f"{PREFIX}{server_name}__{tool}"


def annotation_defaults(annotations: dict[str, Any] | None) -> dict[str, bool]:
    """The gateway's defaults from a tool's MCP annotations (issue #17):

    - ``destructiveHint: true`` (and not read-only) → dangerous: every call waits for a
      person, unless a risk rule says otherwise;
    - ``readOnlyHint`` or ``idempotentHint`` → idempotent: a call cut off by a crash runs
      again (with the same idempotency key in ``_meta``);
    - anything else → not idempotent: a crash mid-call fails the run (``ToolInterrupted``).

    The spec's *default* destructiveHint (true when absent) is not applied: it would hold every
    unannotated tool for a person; a risk rule can hold such a tool where that is wanted.
    """
    hints = annotations or {}
    read_only = hints.get("readOnlyHint") is True
    return {
        "is_dangerous": hints.get("destructiveHint") is True and not read_only,
        "is_idempotent": read_only or hints.get("idempotentHint") is True,
    }


# --- What a tenant writes ----------------------------------------------------------------


def check_server_url(url: str) -> None:
    """Early feedback; every connection is checked again (``config.guarded_http``)."""
    if not url.startswith(("http://", "https://")):
        raise InvalidInput(validation_errors={"url": ["Must be an http:// or https:// URL."]})
    try:
        check_url(url)
    except UnresolvableHost:
        pass  # DNS may be down now, or the name internal: every connection's check decides
    except ToolError as exc:
        raise InvalidInput(validation_errors={"url": [str(exc)]}) from None


def check_headers(headers: Any) -> dict[str, str]:
    if not isinstance(headers, dict):
        raise InvalidInput(validation_errors={"headers": ["Must be an object of header names to values."]})
    problems = []
    for name, value in headers.items():
        if not HEADER_NAME.match(str(name)):
            problems.append(f"{name!r} is not a header name.")
        elif str(name).lower() in RESERVED_HEADERS:
            problems.append(f"{name} is set by the MCP transport and cannot be given.")
        elif not isinstance(value, str) or any(c in value for c in "\r\n\x00"):
            problems.append(f"The value of {name} must be text on one line.")
    if problems:
        raise InvalidInput(validation_errors={"headers": problems})
    return {str(k): str(v) for k, v in headers.items()}


def _values(data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in ("description", "is_active", "timeout_seconds", "untrusted_output", "transport"):
        if field in data:
            values[field] = data[field]
    if "transport" in values and values["transport"] not in NETWORK_TRANSPORTS:
        # stdio starts a process on the workers: the platform's operators only.
        raise InvalidInput(validation_errors={"transport": ["Organizations' MCP servers use streamable_http or sse."]})
    if "url" in data:
        check_server_url(data["url"])
        values["url"] = data["url"]
    elif creating:
        raise InvalidInput(validation_errors={"url": ["This field is required."]})
    if "headers" in data:
        headers = check_headers(data["headers"] or {})
        values["headers"] = json.dumps(headers) if headers else ""
    return values


def _check_name(name: str) -> None:
    if len(name) > SERVER_NAME_MAX or not SERVER_NAME.match(name):
        raise InvalidInput(
            validation_errors={
                "name": [
                    f"Lowercase letters and digits, with single '_' or '-' between them; at most {SERVER_NAME_MAX}."
                ]
            }
        )
    if McpServer.objects.filter(organization__isnull=True, name=name).exists():
        raise ApiError(code="Conflict", message=f"{name!r} is a platform MCP server's name.", details={"name": name})


def _sync_after_commit(server: McpServer) -> None:
    # A worker lists its tools (a server may take seconds to answer; a request should not).
    server_id = str(server.pk)
    transaction.on_commit(lambda: tasks.mcp_server_sync.delay(server_id))


def mcp_server_create(*, actor: Actor, data: dict[str, Any]) -> McpServer:
    """An organization's server (status ``pending``); a worker lists its tools right after,
    ``POST …/sync/`` does it at once."""
    plan_feature_require(organization=actor.organization, feature="mcp", user=actor.user)
    name = str(data.get("name", ""))
    _check_name(name)
    values = _values(data, creating=True)
    try:
        with transaction.atomic():
            server = McpServer.objects.create(
                organization=actor.organization,
                name=name,
                created_by=actor.user,
                **values,  # type: ignore[misc]
            )
            activity_record(
                organization=actor.organization,
                actor=actor,
                action="mcp_server.create",
                target=server,
                request_summary={"name": name, "fields": sorted(k for k in data if k != "headers")},
            )
            if server.is_active:
                _sync_after_commit(server)
    except IntegrityError:
        raise ApiError(code="Conflict", message=f"The organization already has an MCP server {name!r}.") from None
    return server


def mcp_server_update(*, actor: Actor, server: McpServer, data: dict[str, Any]) -> McpServer:
    values = _values(data, creating=False)
    reconnect = any(k in values for k in ("url", "headers", "transport")) or values.get("is_active") is True
    with transaction.atomic():
        for field, value in values.items():
            setattr(server, field, value)
        server.save(update_fields=[*values, "updated_at"])
        _apply_server_flags(server)
        activity_record(
            organization=actor.organization,
            actor=actor,
            action="mcp_server.update",
            target=server,
            request_summary={"fields": sorted(k for k in data if k != "headers")},
        )
        if reconnect and server.is_active:
            _sync_after_commit(server)
    return server


def mcp_server_delete(*, actor: Actor, server: McpServer) -> None:
    with transaction.atomic():
        activity_record(
            organization=actor.organization,
            actor=actor,
            action="mcp_server.delete",
            target=server,
            request_summary={"name": server.name},
        )
        server.delete()  # its tools go with it; their call log keeps the names


def _apply_server_flags(server: McpServer) -> None:
    """What the server's row says about all its tools: on or off, how long, how trusted."""
    Tool.objects.filter(mcp_server=server).update(
        is_active=server.is_active,
        timeout_seconds=server.timeout_seconds,
        untrusted_output=server.untrusted_output,
        updated_at=timezone.now(),
    )
    registry_changed()  # an UPDATE sends no signal (tools.view_cache)


# --- The sync -------------------------------------------------------------------------------


def _discovered(server: McpServer, listed: list[Any]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for tool in listed:
        dumped = tool.model_dump(by_alias=True, mode="json", exclude_none=True)
        annotations = dumped.get("annotations") or {}
        full = tool_name(server.name, tool.name)
        entry: dict[str, Any] = {
            "name": tool.name,
            "tool_name": full,
            "title": (tool.title or annotations.get("title") or "")[:120],
            "description": (tool.description or "")[:DESCRIPTION_MAX_CHARS],
            "input_schema": dumped.get("inputSchema") or {},
            "annotations": annotations,
            **annotation_defaults(annotations),
            "offered": True,
            "warning": "",
        }
        output_schema = dumped.get("outputSchema")
        if output_schema is not None:
            if problems := schema_problems(output_schema):
                entry["warning"] = "Its output schema is ignored: " + "; ".join(problems)[:300]
            else:
                entry["output_schema"] = output_schema
        why_not = None
        if full in seen:
            why_not = "The server lists this name twice; the first is offered."
        elif not PROVIDER_TOOL_NAME.match(full):
            why_not = (
                f"Not offered: {full!r} is not a name model providers accept "
                "(letters, digits, '_' and '-', at most 64 characters with the mcp__<server>__ prefix)."
            )
        else:
            schema = entry["input_schema"]
            if not isinstance(schema, dict) or schema.get("type") != "object":
                why_not = 'Not offered: its input schema is not a JSON Schema with "type": "object".'
            elif problems := schema_problems(schema):
                why_not = "Not offered: its input schema is refused: " + "; ".join(problems)[:400]
        if why_not:
            entry["offered"], entry["warning"] = False, why_not
        seen.add(full)
        entries.append(entry)
    return entries


def _write_tools(server: McpServer, entries: list[dict[str, Any]]) -> None:
    offered = {e["tool_name"]: e for e in entries if e["offered"]}
    existing = {t.name: t for t in Tool.objects.select_for_update().filter(mcp_server=server)}
    Tool.objects.filter(mcp_server=server).exclude(name__in=list(offered)).delete()
    for name, entry in offered.items():
        values = {
            "display_name": entry["title"] or entry["name"][:120],
            "description": entry["description"] or f"{entry['name']} (MCP server {server.name})",
            "category": "mcp",
            "parameters_schema": entry["input_schema"],
            "returns_schema": entry.get("output_schema"),
            "handler_type": HandlerType.MCP,
            "handler_config": {"server": server.name, "tool": entry["name"]},
            "requires_permissions": [],
            "is_idempotent": entry["is_idempotent"],
            "is_dangerous": entry["is_dangerous"],
            "untrusted_output": server.untrusted_output,
            "timeout_seconds": server.timeout_seconds,
            "is_active": server.is_active,
        }
        row = existing.get(name)
        if row is None:
            Tool.objects.create(organization_id=server.organization_id, mcp_server=server, name=name, **values)
            continue
        changed = [field for field, value in values.items() if getattr(row, field) != value]
        if changed:
            for field in changed:
                setattr(row, field, values[field])
            row.save(update_fields=[*changed, "updated_at"])


def _conflicts(server: McpServer, entries: list[dict[str, Any]]) -> None:
    """An offered name another tool the organization sees already has (an HTTP tool, a
    platform server's) is not offered: the registry would not know which one a call means."""
    names = [e["tool_name"] for e in entries if e["offered"]]
    owner = (
        Q(organization__isnull=True) if server.organization_id is None else Q(organization_id=server.organization_id)
    )
    taken = set(Tool.objects.filter(owner, name__in=names).exclude(mcp_server=server).values_list("name", flat=True))
    if server.organization_id is not None:
        taken |= set(Tool.objects.filter(name__in=names, organization__isnull=True).values_list("name", flat=True))
    for entry in entries:
        if entry["offered"] and entry["tool_name"] in taken:
            entry["offered"], entry["warning"] = False, f"Not offered: another tool is named {entry['tool_name']!r}."


def mcp_server_sync(*, server: McpServer, timeout: float = SYNC_SECONDS) -> McpServer:
    """List the server's tools and write them; the server row as it is afterwards.

    Never raises for what the server does: a failure is ``status`` error and ``last_error``.
    Two syncs of one server at once are serialized on its row.
    """
    now = timezone.now()
    try:
        listing = client.list_tools(endpoint_for(server), timeout=timeout, max_tools=MAX_TOOLS + 1)
    except McpError as exc:
        McpServer.objects.filter(pk=server.pk).update(
            status=McpServerStatus.ERROR, last_error=str(exc)[:ERROR_MAX_CHARS], sync_requested_at=None
        )
        server.refresh_from_db()
        return server
    notes = []
    listed = listing.tools
    if listing.truncated or len(listed) > MAX_TOOLS:
        listed = listed[:MAX_TOOLS]
        notes.append(f"The server lists more than {MAX_TOOLS} tools; the first {MAX_TOOLS} are kept.")
    with transaction.atomic():
        locked = McpServer.objects.select_for_update().filter(pk=server.pk).first()
        if locked is None:
            return server  # deleted meanwhile
        entries = _discovered(locked, listed)
        _conflicts(locked, entries)
        _write_tools(locked, entries)
        refused = sum(1 for e in entries if not e["offered"])
        if refused:
            notes.append(f"{refused} of {len(entries)} tools are not offered; see their warnings.")
        locked.tools = entries
        locked.status = McpServerStatus.OK
        locked.last_error = " ".join(notes)[:ERROR_MAX_CHARS]
        locked.last_synced_at = now
        locked.sync_requested_at = None
        # update_fields without updated_at: the row's version keys the pooled sessions, and
        # a sync does not change how the server is reached.
        locked.save(update_fields=["tools", "status", "last_error", "last_synced_at", "sync_requested_at"])
    return locked


def mcp_sync_requested(server_id: str) -> None:
    """The server announced that its tools changed: the beat job syncs it within a minute."""
    McpServer.objects.filter(pk=server_id).update(sync_requested_at=timezone.now())


def mcp_sync_due(*, limit: int = 20) -> str:
    """Sync the servers that are due (the beat job): changed, new, or not synced for a while."""
    summary = mcp_platform_servers_sync()
    ok = failed = 0
    for server_id in servers_due_for_sync(now=timezone.now(), limit=limit):
        server = McpServer.objects.filter(pk=server_id).first()
        if server is None:
            continue
        if mcp_server_sync(server=server).status == McpServerStatus.OK:
            ok += 1
        else:
            failed += 1
    return f"{summary}; synced {ok}, failed {failed}"
