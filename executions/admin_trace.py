"""The execution page of the console: a read-only trace of one run.

A timeline of the steps (when each started, how long it took, its tokens and cost), each
think step opening onto what was sent to the model (messages, tool specs, retrieved data:
ExecutionStep.request) and what came back, each act step onto its arguments, result and
approval; then the run's logs and events, and links to its version, conversation, parent
and children. Rendered from the rows only: nothing on the page is a form field.
"""

from __future__ import annotations

import json
from typing import Any

from django.urls import NoReverseMatch, reverse

from executions.models import Execution, ExecutionStep, StepType

EVENT_LIMIT = 500
LOG_LIMIT = 500


def _admin_url(name: str, *args: Any) -> str:
    try:
        return reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return ""


def pretty(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _step(step: ExecutionStep, *, run_start: Any, span_ms: int) -> dict[str, Any]:
    offset_ms = max(0, int((step.started_at - run_start).total_seconds() * 1000)) if run_start else 0
    duration = step.duration_ms or 0
    entry: dict[str, Any] = {
        "step": step,
        "offset_ms": offset_ms,
        # A bar as wide as the step's share of the run (at least a sliver, so it shows).
        "bar_left": round(100 * offset_ms / span_ms, 2) if span_ms else 0,
        "bar_width": max(0.5, round(100 * duration / span_ms, 2)) if span_ms else 0.5,
        "headline": "",
    }
    if step.step_type == StepType.THINK:
        request = step.request or {}
        calls = step.llm_tool_calls or []
        entry.update(
            headline=(
                "calls " + ", ".join(c.get("name", "?") for c in calls)
                if calls
                else (step.output_text or "")[:160] or step.status
            ),
            messages=[
                {**m, "content": m.get("content", ""), "calls": pretty(m.get("tool_calls"))}
                for m in request.get("messages", [])
            ],
            omitted_messages=request.get("omitted_messages", 0),
            tool_specs=[{**t, "schema": pretty(t.get("parameters"))} for t in request.get("tools", [])],
            has_request=bool(request),
            raw_answer=pretty({"content": step.output_text, "tool_calls": calls, "finish_reason": step.finish_reason}),
        )
    elif step.step_type == StepType.ACT:
        approval = getattr(step, "approval", None)  # approvals' one-to-one, absent on most steps
        approvals = [approval] if approval is not None else []
        entry.update(
            headline=step.tool_name,
            arguments=pretty(step.tool_input),
            result=pretty(step.tool_output),
            approvals=[{"approval": a, "url": _admin_url("approvals_approvalrequest_change", a.pk)} for a in approvals],
        )
    else:
        entry["headline"] = (step.input_text or step.output_text or "")[:160]
    return entry


def trace_context(execution: Execution) -> dict[str, Any]:
    steps = list(execution.steps.order_by("step_number").select_related("approval", "approval__resolved_by"))
    run_start = execution.started_at or (steps[0].started_at if steps else None)
    run_end = execution.completed_at or max((s.completed_at or s.started_at for s in steps), default=run_start)
    span_ms = max(1, int((run_end - run_start).total_seconds() * 1000)) if run_start and run_end else 0
    retrieved: list[dict[str, Any]] = []
    for step in steps:
        if step.step_type == StepType.THINK and (step.request or {}).get("retrieved"):
            retrieved = step.request["retrieved"]
            break
    version = execution.agent_version
    links = [
        ("Agent", execution.agent.name, _admin_url("agents_agent_change", execution.agent_id)),
        # A draft run has no version to link to: its configuration is the run's own (config).
        ("Version", version.version, _admin_url("agents_agentversion_change", version.pk))
        if version is not None
        else ("Version", execution.version_label, ""),
    ]
    if execution.conversation_id:
        links.append(
            (
                "Conversation",
                str(execution.conversation_id)[:8],
                _admin_url("memory_conversation_change", execution.conversation_id),
            )
        )
    if execution.parent_id:
        links.append(
            ("Parent run", str(execution.parent_id)[:8], _admin_url("executions_execution_change", execution.parent_id))
        )
    for child in execution.children.select_related("agent").order_by("created_at")[:50]:
        links.append(
            ("Child run", f"{child.agent.name} · {child.status}", _admin_url("executions_execution_change", child.pk))
        )
    return {
        "execution": execution,
        "steps": [_step(s, run_start=run_start, span_ms=span_ms) for s in steps],
        "retrieved": retrieved,
        "links": links,
        "logs": list(execution.logs.order_by("id")[:LOG_LIMIT]),
        "events": [{"event": e, "data": pretty(e.data)} for e in execution.events.order_by("seq")[:EVENT_LIMIT]],
        "input_json": pretty(execution.input),
        "output_json": pretty(execution.output) or execution.result_text,
        "error_details_json": pretty(execution.error_details) if execution.error_details else "",
        "step_cost_total": sum((s.cost for s in steps), start=execution.cost * 0),
    }
