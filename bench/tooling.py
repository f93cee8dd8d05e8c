"""The benchmark agent's tools, served by the platform's own tool port.

``BenchToolPort`` is ``tools.gateway.DatabaseToolPort`` (registry, grants, argument schema,
Redis rate-limit windows, approval policy, call log) with two in-process tools registered:

- ``lookup``: the single tool of the benchmark agent; returns a small dict at once, so a
  run's time is the platform's plus the model's;
- ``transfer_funds``: the same, for the approval benchmark (P6), whose agent holds it for a
  person through a structured constraint.

Set ``AGENTRY_TOOL_PORT=bench.tooling.BenchToolPort`` (bench.settings does) in every process
that runs executions.
"""

from __future__ import annotations

from typing import Any

from executions.runtime.tools_port import LocalTool, register_local_tool

try:  # the registry-backed port (tools app); the runtime's own local port otherwise
    from tools.gateway import DatabaseToolPort as _BasePort
except ImportError:  # pragma: no cover - only while the tools app is unavailable
    from executions.runtime.tools_port import LocalToolPort as _BasePort

LOOKUP = "lookup"
TRANSFER = "transfer_funds"
_PARAMETERS = {
    "type": "object",
    "properties": {"key": {"type": "string", "description": "What to look up."}},
    "required": ["key"],
    "additionalProperties": False,
}


def _lookup(*, context: Any, key: str) -> dict[str, Any]:
    return {"key": key, "value": f"value of {key}", "step": context.step_number}


def _transfer(*, context: Any, key: str) -> dict[str, Any]:
    return {"transferred": key}


TOOLS = (
    LocalTool(name=LOOKUP, handler=_lookup, description="Look a key up.", parameters=_PARAMETERS),
    LocalTool(name=TRANSFER, handler=_transfer, description="Move money (needs approval).", parameters=_PARAMETERS),
)


def register() -> None:
    for tool in TOOLS:
        register_local_tool(tool)


class BenchToolPort(_BasePort):  # type: ignore[misc, valid-type]
    port_name = f"{_BasePort.__module__}.{_BasePort.__name__}"

    def __init__(self) -> None:
        register()
        super().__init__()
