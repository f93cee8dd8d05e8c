"""The one narrow interface through which the runtime uses tools.

The runtime asks a ``ToolPort`` for the tool specs to offer the model, then, for every call
the model makes, for a decision (``check``: run it, refuse it with a message for the model,
hold it for a person's approval) and a result (``run``). The tools app provides the port
with the registry, grants, rate limits and approvals (setting ``AGENTRY_TOOL_PORT``); the
``LocalToolPort`` here serves Python callables registered in-process and is what the runtime
falls back to.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from config.json_schema import schema_errors
from executions.llm.base import ToolSpec

OutcomeStatus = Literal["completed", "failed", "denied", "needs_approval", "wait"]


@dataclass
class ToolOutcome:
    status: OutcomeStatus
    output: Any = None  # what goes back to the model (JSON-able)
    error: str = ""
    wait_seconds: int | None = None  # status "wait": resume the run after this long
    approval: dict[str, Any] = field(default_factory=dict)  # status "needs_approval": risk, reason
    # Values of output/error replaced to be storable (config.api.json_input.storable_json).
    replaced: int = 0
    # Requests the call sent to other services (config.call_count), for api_calls_count.
    api_calls: int = 0


def bound_output(output: Any, limit: int) -> Any:
    """``output`` within ``limit`` characters of JSON: long strings are cut, marked as such."""
    text = json.dumps(output, default=str, ensure_ascii=False)
    if len(text) <= limit:
        return output
    if isinstance(output, dict):
        trimmed = dict(output)
        for _ in range(4):
            strings = sorted((k for k, v in trimmed.items() if isinstance(v, str)), key=lambda k: -len(trimmed[k]))
            if not strings:
                break
            overflow = len(json.dumps(trimmed, default=str, ensure_ascii=False)) - limit + 200
            key = strings[0]
            trimmed[key] = trimmed[key][: max(0, len(trimmed[key]) - overflow)] + "…[truncated]"
            trimmed["truncated"] = True
            if len(json.dumps(trimmed, default=str, ensure_ascii=False)) <= limit:
                return trimmed
    return {"truncated": True, "original_chars": len(text), "content": text[: max(0, limit - 100)]}


def bound_tool_output(output: Any) -> Any:
    """What a tool hands back, within AGENTRY_TOOL_RESULT_MAX_CHARS characters of JSON: the
    one limit, whichever port ran the tool (the tools app's gateway bounds it before its call
    log; the runtime bounds every outcome before the model and the step see it)."""
    return bound_output(output, int(settings.AGENTRY_TOOL_RESULT_MAX_CHARS))


@dataclass
class ToolContext:
    """What a tool may know about the run that calls it."""

    execution: Any
    config: dict[str, Any]
    step_number: int
    idempotency_key: str


class ToolPort(Protocol):
    def specs(self, *, context: ToolContext) -> list[ToolSpec]: ...

    def check(self, *, context: ToolContext, name: str, arguments: dict[str, Any]) -> ToolOutcome | None:
        """None to go ahead; an outcome (denied, failed, needs_approval) to stop here."""

    def run(self, *, context: ToolContext, name: str, arguments: dict[str, Any]) -> ToolOutcome: ...

    def unoffered(self, *, context: ToolContext) -> list[dict[str, Any]]:
        """Tools the agent's patterns allow that ``specs`` leaves out, each with a ``tool`` and a
        ``message`` saying why and where to fix it (the run's log shows them)."""

    def is_idempotent(self, *, context: ToolContext, name: str) -> bool:
        """Whether a call of ``name`` cut off by a crash may run again: the flag of the tool
        this run would call (its organization's, or the platform's), never another's."""

    def held_call_approved(self, *, execution_id: Any, step_number: int, params: Any, edited: bool) -> None:
        """A call held for a person was approved: its log row records the arguments it will
        run with and whether they were edited (``executions.held_calls``)."""

    def held_call_denied(self, *, execution_id: Any, step_number: int, reason: str) -> None:
        """A held call was denied or expired: its log row is closed with ``reason``."""


def tool_allowed(name: str, *, allowed: list[str], denied: list[str]) -> bool:
    """Wildcards (``crm_*``); deny wins; nothing is allowed unless a pattern allows it."""
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in denied):
        return False
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in allowed)


@dataclass
class LocalTool:
    name: str
    handler: Callable[..., Any]
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    idempotent: bool = True
    # Returns content from outside (see tools.models.Tool.untrusted_output).
    untrusted_output: bool = False


_LOCAL_TOOLS: dict[str, LocalTool] = {}


def register_local_tool(tool: LocalTool) -> LocalTool:
    _LOCAL_TOOLS[tool.name] = tool
    return tool


def unregister_local_tool(name: str) -> None:
    _LOCAL_TOOLS.pop(name, None)


def local_tool(name: str) -> LocalTool | None:
    return _LOCAL_TOOLS.get(name)


class LocalToolPort:
    def _visible(self, context: ToolContext) -> list[LocalTool]:
        allowed, denied = context.config.get("allowed_tools") or [], context.config.get("denied_tools") or []
        return [t for t in _LOCAL_TOOLS.values() if tool_allowed(t.name, allowed=allowed, denied=denied)]

    def specs(self, *, context: ToolContext) -> list[ToolSpec]:
        return [
            ToolSpec(name=t.name, description=t.description, parameters=t.parameters) for t in self._visible(context)
        ]

    def check(self, *, context: ToolContext, name: str, arguments: dict[str, Any]) -> ToolOutcome | None:
        if name not in {t.name for t in self._visible(context)}:
            return ToolOutcome("denied", error=f"Tool {name!r} is not available to this agent.")
        errors = schema_errors(_LOCAL_TOOLS[name].parameters, arguments, limit=5)
        if errors:
            return ToolOutcome("failed", error="Invalid arguments: " + "; ".join(e.message for e in errors[:5]))
        return None

    def unoffered(self, *, context: ToolContext) -> list[dict[str, Any]]:
        return []  # local tools need no grant: every allowed one is offered

    def run(self, *, context: ToolContext, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        result = _LOCAL_TOOLS[name].handler(context=context, **arguments)
        return result if isinstance(result, ToolOutcome) else ToolOutcome("completed", output=result)

    def is_idempotent(self, *, context: ToolContext, name: str) -> bool:
        tool = _LOCAL_TOOLS.get(name)
        return bool(tool and tool.idempotent)

    def held_call_approved(self, *, execution_id: Any, step_number: int, params: Any, edited: bool) -> None:
        pass  # local tools keep no call log

    def held_call_denied(self, *, execution_id: Any, step_number: int, reason: str) -> None:
        pass


@cache
def tool_port() -> ToolPort:
    path = getattr(settings, "AGENTRY_TOOL_PORT", "executions.runtime.tools_port.LocalToolPort")
    return import_string(path)()
