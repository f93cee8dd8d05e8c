"""``DatabaseToolPort``: the runtime's ``ToolPort`` over the tool registry.

For every call the model makes, ``check`` decides in this order, and nothing runs unless
every step passes (each refusal is logged as a ToolCall and told to the model):

1. the tool exists, is active and visible to the organization, and the agent's
   allowed_tools / denied_tools patterns allow it (deny wins) — otherwise ``denied``,
   whatever the model asks;
2. the modules it needs are configured for the organization, and the agent is granted every
   capability in its ``requires_permissions`` — otherwise ``denied``;
3. the arguments match its JSON Schema — otherwise ``failed``, with the errors;
4. its rate limits (per tool per agent, per minute and hour) and the agent's overall limit
   have room, counted atomically in Redis — otherwise ``failed``;
5. the approval policy (``approvals.policy``, registered in ``tools.approval_policy``) — ``needs_approval`` holds it for a person.

``run`` then calls the handler with a deadline, bounds the result before it goes back to the
model, and logs the call with its duration and status.

What a run may use (catalog, grants, modules, risk rules) is read in one query, kept per
process until the tool registry changes (``tools.view_cache``: a run costs one Redis GET)
and on the run's Execution object for a few seconds, so a step costs the database one
statement: the call-log row. Python tools registered in-process with ``register_local_tool`` (tests,
and apps that add tools in code) go through the same checks; having no registry row, their
successful calls are recorded by the run's act steps only.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import Any

from django.conf import settings
from django.utils import timezone

from config.api.json_input import storable_json
from config.json_schema import error_line, schema_errors
from executions.llm.base import ToolSpec
from executions.runtime import tools_port
from executions.runtime.tools_port import ToolContext, ToolOutcome, bound_tool_output, tool_allowed
from tools import ratelimit
from tools.approval_policy import approval_policy
from tools.builtins.base import Invocation, ToolDef, ToolDenied, ToolError
from tools.handlers import handler_for
from tools.models import ToolCallStatus
from tools.selectors import ToolView, refusal, tool_catalog, unoffered_tools
from tools.services import tool_call_deny_held, tool_call_log, tool_call_mark_held
from tools.view_cache import cached_tool_view

logger = logging.getLogger(__name__)

# How long a run trusts what it read about its tools and grants: a revoked grant or a
# disabled tool takes effect within this many seconds, even in the middle of a run.
VIEW_SECONDS = 5.0


def _local_defs() -> dict[str, ToolDef]:
    # The runtime's in-process registry (executions.runtime.tools_port).
    return {
        name: ToolDef(
            name=name,
            description=tool.description,
            parameters=tool.parameters,
            handler_type="local",
            is_idempotent=tool.idempotent,
        )
        for name, tool in tools_port._LOCAL_TOOLS.items()
    }


def validation_errors(schema: dict[str, Any], arguments: Any) -> list[str]:
    return [error_line(e) for e in schema_errors(schema, arguments, formats=True)]


def tool_schema(*, organization_id: Any, name: str) -> dict[str, Any] | None:
    """The parameters schema of a tool the organization's runs may call (None: no such tool)."""
    tool = tool_catalog(organization_id=organization_id).get(name) or _local_defs().get(name)
    return tool.parameters if tool else None


class DatabaseToolPort:
    def _view(self, context: ToolContext) -> ToolView:
        execution = context.execution
        memo = getattr(execution, "_agentry_tool_view", None)
        fresh_for = getattr(settings, "AGENTRY_TOOL_VIEW_SECONDS", VIEW_SECONDS)
        if memo is not None and time.monotonic() - memo[0] < fresh_for:
            return memo[1]
        loaded = cached_tool_view(organization_id=execution.organization_id, agent_id=execution.agent_id)
        catalog = {**_local_defs(), **loaded.catalog}
        view = ToolView(catalog, loaded.capabilities, loaded.modules, loaded.risk_rules)
        # On the instance the runtime claimed: it lives as long as this attempt at the run.
        execution._agentry_tool_view = (time.monotonic(), view)
        return view

    # -- what the agent may see -------------------------------------------------------

    def specs(self, *, context: ToolContext) -> list[ToolSpec]:
        config = context.config
        allowed, denied = config.get("allowed_tools") or [], config.get("denied_tools") or []
        if not allowed:
            return []
        view = self._view(context)
        # Offer only what would pass: a tool the agent cannot use is noise in its prompt.
        return [
            ToolSpec(name=t.name, description=t.description, parameters=t.parameters)
            for t in sorted(view.catalog.values(), key=lambda t: t.name)
            if tool_allowed(t.name, allowed=allowed, denied=denied)
            and refusal(t, view.capabilities, view.modules) is None
        ]

    def unoffered(self, *, context: ToolContext) -> list[dict[str, Any]]:
        """The allowed tools ``specs`` leaves out for a missing grant or module, with why."""
        config = context.config
        allowed, denied = config.get("allowed_tools") or [], config.get("denied_tools") or []
        if not allowed:
            return []
        view = self._view(context)
        return unoffered_tools(view, allowed=allowed, denied=denied, agent_id=context.execution.agent_id)

    # -- deciding about one call -----------------------------------------------------

    def check(self, *, context: ToolContext, name: str, arguments: dict[str, Any]) -> ToolOutcome | None:
        config = context.config
        view = self._view(context)
        tool = view.catalog.get(name)
        allowed, denied = config.get("allowed_tools") or [], config.get("denied_tools") or []
        if tool is None or not tool_allowed(name, allowed=allowed, denied=denied):
            return self._refuse(
                context, tool, name, arguments, "denied", f"Tool {name!r} is not available to this agent."
            )
        why = refusal(tool, view.capabilities, view.modules)
        if why:
            return self._refuse(context, tool, name, arguments, "denied", why)
        problems = validation_errors(tool.parameters, arguments)
        if problems:
            message = (
                "Invalid arguments: "
                + "; ".join(problems)
                + ". Call the tool again with arguments matching its schema."
            )
            return self._refuse(context, tool, name, arguments, "failed", message)
        limited = self._rate_limited(context, tool)
        if limited:
            return self._refuse(context, tool, name, arguments, "failed", limited)

        approval = approval_policy().requirement(
            organization_id=context.execution.organization_id,
            name=name,
            is_dangerous=tool.is_dangerous,
            arguments=arguments,
            config=config,
            rules=view.risk_rules,
        )
        if approval is not None:
            tool_call_log(
                context=context, tool_id=tool.tool_id, name=name, arguments=arguments, status=ToolCallStatus.PENDING
            )
            return ToolOutcome("needs_approval", approval=approval)
        return None

    @staticmethod
    def _refuse(
        context: ToolContext, tool: ToolDef | None, name: str, arguments: Any, status: str, message: str
    ) -> ToolOutcome:
        tool_call_log(
            context=context,
            tool_id=tool.tool_id if tool else None,
            name=name,
            arguments=arguments,
            status=ToolCallStatus.DENIED if status == "denied" else ToolCallStatus.FAILED,
            error=message,
        )
        return ToolOutcome(status, error=message)  # type: ignore[arg-type]

    @staticmethod
    def _rate_limited(context: ToolContext, tool: ToolDef) -> str | None:
        windows = ratelimit.windows_for(tool=tool, agent_id=context.execution.agent_id, config=context.config)
        try:
            full = ratelimit.take(windows)
        except Exception:
            # Fail closed: without the counters nobody knows whether the limit is reached.
            logger.warning("tool rate limits unavailable", exc_info=True)
            return "Tool rate limits cannot be checked right now; the call was not made. Try again shortly."
        if full is None:
            return None
        return f"Rate limit reached ({full.name}); the call was not made. Try again later or do without it."

    # -- running it ---------------------------------------------------------------------

    def run(self, *, context: ToolContext, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        view = self._view(context)
        tool = view.catalog.get(name)
        if tool is None:
            return ToolOutcome("failed", error=f"Tool {name!r} is no longer available.")
        started_at = timezone.now()
        invocation = Invocation(
            tool=tool,
            arguments=arguments,
            context=context,
            capabilities=view.capabilities,
            deadline=time.monotonic() + self._time_budget(context, tool),
        )
        try:
            result = self._call(tool, invocation)
        except ToolDenied as exc:
            outcome = ToolOutcome("denied", error=str(exc))
        except ToolError as exc:
            outcome = ToolOutcome("failed", error=str(exc))
        except Exception as exc:
            # Formatted here so the traceback's text (an HTTP library's message may quote a
            # header) is redacted like everything else the call produced.
            trace = "".join(traceback.format_exception(exc))
            logger.error("tool %s raised: %s", name, invocation.redacted(trace))
            outcome = ToolOutcome("failed", error=f"The tool failed: {type(exc).__name__}.")
        else:
            outcome = result if isinstance(result, ToolOutcome) else ToolOutcome("completed", output=result)
            # Redacted before it is bounded (a cut must not leave half a secret behind) and
            # before anything else sees it: the model, the step, the call log, the events.
            outcome.output = bound_tool_output(invocation.redacted(outcome.output))
        outcome.error = invocation.redacted(outcome.error)
        # A hostile page's NUL or a server's NaN cannot be stored: the call log, the step and
        # the model all get the storable form (the runtime's log says it was replaced).
        outcome.output, in_output = storable_json(outcome.output)
        outcome.error, in_error = storable_json(outcome.error)
        outcome.replaced += in_output + in_error
        if tool.tool_id is None:
            return outcome  # a local tool: its act step is the record
        ok = outcome.status in ("completed", "wait")
        status = ToolCallStatus.COMPLETED if ok else (
            ToolCallStatus.DENIED if outcome.status == "denied" else ToolCallStatus.FAILED
        )  # fmt: skip
        previous_status, previous_output = tool_call_log(
            context=context,
            tool_id=tool.tool_id,
            name=name,
            arguments=arguments,
            status=status,
            output=outcome.output if ok else None,
            error="" if ok else outcome.error,
            started_at=started_at,
        )
        edited = isinstance(previous_output, dict) and previous_output.get("params_edited")
        if previous_status == ToolCallStatus.PENDING and edited and outcome.status == "completed":
            # The model still sees its own arguments in the conversation: say what really ran.
            outcome.output = {
                "result": outcome.output,
                "note": "A person approved this call after changing its arguments; it ran with: "
                + json.dumps(arguments, ensure_ascii=False, default=str),
            }
        return outcome

    @staticmethod
    def _call(tool: ToolDef, invocation: Invocation) -> Any:
        if tool.handler_type == "local":
            local = tools_port._LOCAL_TOOLS[tool.name]
            return local.handler(context=invocation.context, **invocation.arguments)
        handler = handler_for(tool.handler_key)
        if handler is None:
            raise ToolError(f"Tool {tool.name!r} has no handler {tool.handler_key!r} on this platform.")
        return handler(invocation)

    @staticmethod
    def _time_budget(context: ToolContext, tool: ToolDef) -> float:
        budget = float(tool.timeout_seconds or 30)
        deadline_at = getattr(context.execution, "deadline_at", None)
        if deadline_at is not None:
            # Never past the run's own deadline, but leave a tool at least a second.
            budget = min(budget, max(1.0, (deadline_at - timezone.now()).total_seconds()))
        return budget

    def is_idempotent(self, *, context: ToolContext, name: str) -> bool:
        # The tool ``run`` would call: the platform's or this organization's own, by name
        # within what the organization sees (another organization's tool of the same name
        # must not change how this run recovers from a crash).
        tool = self._view(context).catalog.get(name)
        return bool(tool and tool.is_idempotent)

    def held_call_approved(self, *, execution_id: Any, step_number: int, params: Any, edited: bool) -> None:
        tool_call_mark_held(execution_id=execution_id, step_number=step_number, params=params, edited=edited)

    def held_call_denied(self, *, execution_id: Any, step_number: int, reason: str) -> None:
        tool_call_deny_held(execution_id=execution_id, step_number=step_number, reason=reason)
