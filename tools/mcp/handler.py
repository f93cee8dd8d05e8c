"""The gateway's handler for MCP tools (``Tool.handler_type`` ``mcp``).

The gateway has already checked everything a built-in tool goes through (allow/deny, the
arguments against the tool's schema, rate limits, approvals); this sends the call:

- to the server the tool came from, if it is still active and still visible to the run's
  organization (a platform server no longer shared with it is not called);
- with the step's idempotency key in the request's ``_meta`` under ``IDEMPOTENCY_META_KEY``,
  so a server that deduplicates can make a call repeated after a crash safe;
- within the call's deadline, on a pooled session (``tools.mcp.client``);
- with the server's header values (and stdio environment) ``carry``-ed, so the gateway
  redacts them from whatever comes back.

Every protocol or transport failure is a ``ToolError`` with a short message for the model
and the log.
"""

from __future__ import annotations

from typing import Any

from tools.builtins.base import Invocation, ToolError
from tools.mcp import client
from tools.mcp.client import McpError
from tools.mcp.results import result_output
from tools.mcp.selectors import endpoint_for, mcp_server_for_call, server_secrets

IDEMPOTENCY_META_KEY = "agentry/idempotency_key"


def mcp_tool(call: Invocation) -> Any:
    tool = call.tool
    server_id = tool.mcp_server_id
    server = mcp_server_for_call(server_id=server_id, organization_id=call.organization_id) if server_id else None
    if server is None:
        raise ToolError(f"The MCP server of {tool.name} is not available to this organization any more.")
    call.carry(*server_secrets(server))
    remote_name = str(tool.handler_config.get("tool") or "")
    try:
        result = client.call_tool(
            endpoint_for(server),
            name=remote_name,
            arguments=call.arguments,
            meta={IDEMPOTENCY_META_KEY: call.idempotency_key},
            timeout=call.remaining(),
            retry_safe=tool.is_idempotent,
        )
    except McpError as exc:
        raise ToolError(str(exc)) from None
    return result_output(
        result, tool=tool.name, output_schema=tool.returns_schema, untrusted=bool(tool.untrusted_output)
    )
