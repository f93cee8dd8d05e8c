"""What a tool handler receives and may raise.

A handler is ``handler(call: Invocation) -> JSON-able output`` (or a ``ToolOutcome`` for the
rare tool that changes the run itself, such as ``wait``). It raises ``ToolError`` for a
failure the model should hear about, ``ToolDenied`` when the agent lacks a right only the
arguments reveal (``notify_user`` by SMS). Every handler keeps to ``call.deadline``: HTTP
through ``tools.ssrf.fetch(deadline=...)``, SQL through ``statement_timeout``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from executions.runtime.tools_port import ToolContext
from tools.redaction import Redactor


class ToolError(Exception):
    """The call failed; the message goes back to the model."""


class ToolDenied(ToolError):
    """The call is not allowed; the message goes back to the model."""


@dataclass(frozen=True)
class ToolDef:
    """One tool as the gateway sees it: from a ``Tool`` row or an in-process local tool."""

    name: str
    description: str
    parameters: dict[str, Any]
    handler_type: str
    handler_config: dict[str, Any] = field(default_factory=dict)
    requires_permissions: tuple[str, ...] = ()
    requires_modules: tuple[str, ...] = ()
    rate_limit_per_minute: int | None = None
    rate_limit_per_hour: int | None = None
    timeout_seconds: int = 30
    is_idempotent: bool = False
    is_dangerous: bool = False
    tool_id: Any = None  # None: a local tool (no row)
    organization_id: Any = None  # None: a platform tool
    returns_schema: dict[str, Any] | None = None
    untrusted_output: bool = False
    mcp_server_id: Any = None  # the MCP server it came from (handler type mcp)

    @property
    def handler_key(self) -> str:
        return str(self.handler_config.get("handler") or self.handler_type)

    @classmethod
    def from_row(cls, tool: Any) -> ToolDef:
        return cls(
            name=tool.name,
            description=tool.description,
            parameters=tool.parameters_schema or {"type": "object", "properties": {}},
            handler_type=tool.handler_type,
            handler_config=dict(tool.handler_config or {}),
            requires_permissions=tuple(tool.requires_permissions or ()),
            requires_modules=tuple(tool.requires_modules or ()),
            rate_limit_per_minute=tool.rate_limit_per_minute,
            rate_limit_per_hour=tool.rate_limit_per_hour,
            timeout_seconds=tool.timeout_seconds,
            is_idempotent=tool.is_idempotent,
            is_dangerous=tool.is_dangerous,
            tool_id=tool.pk,
            organization_id=tool.organization_id,
            returns_schema=tool.returns_schema,
            untrusted_output=tool.untrusted_output,
            mcp_server_id=tool.mcp_server_id,
        )


@dataclass
class Invocation:
    tool: ToolDef
    arguments: dict[str, Any]
    context: ToolContext
    capabilities: frozenset[str]
    deadline: float  # time.monotonic() value
    # Credentials the handler put in its requests (``carry``): the gateway redacts them, in
    # every form, from whatever the call gives back.
    secrets: set[str] = field(default_factory=set)

    def carry(self, *secrets: str) -> None:
        """Name the credentials this call sends, before sending them."""
        self.secrets.update(s for s in secrets if s)

    def redacted(self, value: Any) -> Any:
        """``value`` without the credentials carried so far (for a handler that must cut a
        text short: redact first, so the cut cannot leave part of a secret behind)."""
        return Redactor(self.secrets).value(value)

    @property
    def execution(self) -> Any:
        return self.context.execution

    @property
    def organization_id(self) -> Any:
        return self.context.execution.organization_id

    @property
    def agent_id(self) -> Any:
        return self.context.execution.agent_id

    @property
    def idempotency_key(self) -> str:
        return self.context.idempotency_key

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ToolError(f"{self.tool.name} ran out of time ({self.tool.timeout_seconds} s).")
        return left

    def require(self, capability: str, what: str) -> None:
        if capability not in self.capabilities:
            raise ToolDenied(f"This agent is not granted {capability!r}, which {what} needs.")
