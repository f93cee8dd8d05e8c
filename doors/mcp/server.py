"""Agentry's agents as MCP tools (issue #17, the server side), on the official SDK.

One tool per published agent the token may execute, named after the agent's slug (``-``
becomes ``_``). Calling it starts a run exactly as ``POST /agents/{id}/execute/`` does (quotas,
idempotency, activity log; trigger type ``mcp``), reports progress while the run moves, and
answers with the run's output as text plus ``structuredContent`` ``{execution_id, status, cost,
tokens_total}``. A run that parks for a person's approval (or a timer) answers at once with that
status and the approver's link; a failed run answers ``isError`` with its code and message.

The handlers run on the web process's event loop; every database touch goes to a worker thread
(``_db``) that gives its connection back when done, so a slow run holds no connection while
its caller waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import mcp_types as types
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection
from mcp.server import Server
from mcp.shared.exceptions import MCPError
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params

from accounts.access import Actor
from agents.models import Agent
from agents.selectors import agent_list_executable
from approvals.selectors import approval_pending_for_execution
from config.api.errors import ApiError
from config.site import answer_base_url
from executions.models import Execution, ExecutionStatus, TriggerType
from executions.services import execution_start
from tools.mcp.handler import IDEMPOTENCY_META_KEY

T = TypeVar("T")

ACTOR_SCOPE_KEY = "agentry.actor"  # where the door's ASGI wrapper leaves the caller (doors.mcp.asgi)
PAGE_SIZE = 100
PARKED = frozenset({ExecutionStatus.WAITING_APPROVAL, ExecutionStatus.WAITING})
INSTRUCTIONS = (
    "Each tool is an Agentry agent. Give it a task in plain language (and a context object if the "
    "agent wants one); the answer is the agent's final output. A run that needs a person's "
    "approval answers with the approver's link instead of waiting."
)


async def _db(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """``fn(**kwargs)`` in a worker thread whose connection goes back (to the pool) at the end."""

    def run() -> T:
        close_old_connections()
        try:
            return fn(**kwargs)
        finally:
            connection.close()

    return await sync_to_async(run, thread_sensitive=False)()


def _actor(ctx: Any) -> Actor:
    request = getattr(ctx, "request", None)
    actor = request.scope.get(ACTOR_SCOPE_KEY) if request is not None else None
    if actor is None:  # the ASGI wrapper authenticates every request before the SDK sees it
        raise MCPError(code=types.INVALID_REQUEST, message="Not authenticated.")
    return actor


def tool_names(agents: list[Agent]) -> dict[str, Agent]:
    """Tool name -> agent; slugs are unique per organization, but ``a-b`` and ``a_b`` meet as
    ``a_b``: the later one gets the start of its id appended, so every agent stays callable."""
    named: dict[str, Agent] = {}
    for agent in agents:
        name = agent.slug.replace("-", "_")
        if name in named:
            name = f"{name}_{agent.pk.hex[:8]}"
        named[name] = agent
    return named


def _input_schema(agent: Agent) -> dict[str, Any]:
    version_config = agent.current_version.config if agent.current_version else {}
    context: dict[str, Any] = dict(version_config.get("input_schema") or {"type": "object"})
    context.setdefault("description", "Structured input for the agent (its input schema).")
    return {
        "type": "object",
        "properties": {
            "task": {"type": "string", "description": "What the agent should do, in plain language."},
            "context": context,
            "conversation_id": {
                "type": "string",
                "format": "uuid",
                "description": "Continue an earlier conversation with this agent.",
            },
        },
        "required": ["task"],
        "additionalProperties": False,
    }


def _tool(name: str, agent: Agent) -> types.Tool:
    return types.Tool(
        name=name,
        title=agent.name,
        description=agent.description or f"Run the Agentry agent {agent.name!r}.",
        input_schema=_input_schema(agent),
        annotations=types.ToolAnnotations(title=agent.name, open_world_hint=True),
    )


async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    actor = _actor(ctx)
    agents = await _db(agent_list_executable, actor=actor)
    tools = [_tool(name, agent) for name, agent in tool_names(agents).items()]
    cursor = params.cursor if params is not None else None
    start = int(cursor) if cursor and cursor.isascii() and cursor.isdigit() else 0
    page = tools[start : start + PAGE_SIZE]
    more = start + PAGE_SIZE < len(tools)
    return types.ListToolsResult(tools=page, next_cursor=str(start + PAGE_SIZE) if more else None)


def _text(value: str) -> list[types.ContentBlock]:
    return [types.TextContent(type="text", text=value)]


def _refused(code: str, message: str, details: dict[str, Any] | None = None) -> types.CallToolResult:
    error = {"code": code, "message": message, **({"details": details} if details else {})}
    return types.CallToolResult(content=_text(f"{code}: {message}"), structured_content={"error": error}, is_error=True)


def _base_url(ctx: Any) -> str:
    request = getattr(ctx, "request", None)
    return answer_base_url(str(request.base_url) if request is not None else "")


def _summary(execution: Execution) -> dict[str, Any]:
    return {
        "execution_id": str(execution.pk),
        "status": execution.status,
        "cost": str(execution.cost.quantize(Decimal("0.000001"))),
        "tokens_total": execution.tokens_total,
    }


def _start(*, actor: Actor, agent: Agent, arguments: dict[str, Any], meta: dict[str, Any], ctx_id: str) -> Execution:
    conversation_id = arguments.get("conversation_id")
    execution, _ = execution_start(
        agent=agent,
        organization=actor.organization,
        task=arguments.get("task"),  # type: ignore[arg-type]  # checked by execution_start
        context=arguments.get("context", {}),
        actor=actor,
        trigger_type=TriggerType.MCP,
        trigger_data={"mcp_request_id": ctx_id},
        idempotency_key=meta.get(IDEMPOTENCY_META_KEY) if isinstance(meta.get(IDEMPOTENCY_META_KEY), str) else None,
        conversation_id=conversation_id,
    )
    return execution


def _progress(execution_id: Any) -> tuple[Execution, int]:
    execution = Execution.objects.get(pk=execution_id)
    return execution, execution.steps.count()


async def _wait(ctx: Any, execution: Execution, seconds: float) -> Execution:
    """Until the run ends, parks or ``seconds`` pass; a progress notification per new step."""
    token = progress_token_from_params(getattr(ctx, "params", None))
    deadline = time.monotonic() + seconds
    interval, steps_seen = 0.05, 0
    while True:
        execution, steps = await _db(_progress, execution_id=execution.pk)
        if execution.is_terminal or execution.status in PARKED or time.monotonic() >= deadline:
            return execution
        if token is not None and steps != steps_seen:
            steps_seen = steps
            # Related to the call's request: in stateless mode its response stream is the
            # only one the client reads.
            await ctx.session.send_progress_notification(
                progress_token=token,
                progress=steps,
                message=f"{execution.status}: {steps} step(s)",
                related_request_id=getattr(ctx, "request_id", None),
            )
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, 1.0)


def _parked_answer(execution: Execution, base_url: str) -> types.CallToolResult:
    summary = _summary(execution)
    if execution.status == ExecutionStatus.WAITING_APPROVAL:
        approval = approval_pending_for_execution(execution_id=execution.pk)
        link = f"{base_url}/approvals/{approval.pk}/" if approval is not None else f"{base_url}/approvals/"
        summary["approval_url"] = link
        what = approval.action_description if approval is not None else "an action"
        text = f"The run is waiting for a person's approval of {what}: {link}"
    else:
        summary["wait_until"] = execution.wait_until.isoformat() if execution.wait_until else None
        text = f"The run is waiting until {summary['wait_until']}; it goes on by itself."
    return types.CallToolResult(content=_text(f"{text} (execution {execution.pk})"), structured_content=summary)


def _answer(execution: Execution, base_url: str) -> types.CallToolResult:
    summary = _summary(execution)
    if execution.status in PARKED:
        return _parked_answer(execution, base_url)
    if execution.status == ExecutionStatus.COMPLETED:
        return types.CallToolResult(content=_text(execution.result_text or ""), structured_content=summary)
    if execution.is_terminal:
        code = execution.error_code or execution.status
        summary["error"] = {"code": code, "message": execution.error}
        return types.CallToolResult(
            content=_text(f"{code}: {execution.error or execution.status}"), structured_content=summary, is_error=True
        )
    link = f"{base_url}/api/v1/executions/{execution.pk}/"
    return types.CallToolResult(
        content=_text(f"The run is still {execution.status} after the door's wait; follow it at {link}"),
        structured_content=summary,
    )


async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    actor = _actor(ctx)
    agents = tool_names(await _db(agent_list_executable, actor=actor))
    agent = agents.get(params.name)
    if agent is None:
        raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool {params.name!r}.")
    arguments = dict(params.arguments or {})
    unknown = sorted(set(arguments) - {"task", "context", "conversation_id"})
    if unknown:
        return _refused("InvalidInput", f"Unknown argument(s): {', '.join(unknown)}.")
    try:
        execution = await _db(
            _start,
            actor=actor,
            agent=agent,
            arguments=arguments,
            meta=dict(params.meta or {}),
            ctx_id=str(getattr(ctx, "request_id", "")),
        )
    except ApiError as error:
        return _refused(error.code, error.message, error.details)
    execution = await _wait(ctx, execution, float(settings.AGENTRY_MCP_DOOR_WAIT_SECONDS))
    base_url = _base_url(ctx)
    return await _db(_answer, execution=execution, base_url=base_url)


def build_server() -> Server[Any]:
    return Server(
        "agentry",
        version="1.0",
        title="Agentry agents",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
