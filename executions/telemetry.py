"""A run's trace, in OpenTelemetry's GenAI semantic conventions, across workers and resumes.

One trace per execution: the API request's span (Django's instrumentation) is the parent of
the run's ``invoke_agent {agent}`` span, whose children are a ``chat {model}`` span per model
call, an ``execute_tool {tool}`` span per tool call, an ``await_approval {tool}`` span per
person's decision, and the ``invoke_agent`` spans of delegated runs and chain steps started
from inside them.

A run outlives the process that starts it (a worker killed mid-run, a run parked for a
person and picked up by another worker days later), so its span cannot be an object held
in memory. Its ids are chosen when the execution is created and stored on it
(``Execution.trace_context``); every worker that advances the run parents its spans to
those ids, and the ``invoke_agent`` span itself is written once, by whoever ends the run,
with those same ids and the run's creation as its start (config.telemetry.span_ids).

Nothing here runs when tracing is off (``config.telemetry.enabled()``): each hook returns
before building anything. Prompts, answers, tool arguments and results are recorded only
with the conventions' opt-in, ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``.
Secrets never enter an attribute: provider keys, tokens and headers are not read here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from config import telemetry as otel

logger = logging.getLogger(__name__)

TRACER_NAME = "agentry.executions"
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
# Bound a captured message or tool payload (characters): a span is not a transcript store.
MAX_CONTENT_CHARS = 8_000
_ids = RandomIdGenerator()


def capture_content() -> bool:
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() == "true"


_cached: tuple[Any, trace.Tracer] | None = None  # (provider, its tracer)


def _tracer() -> trace.Tracer:
    # This process's provider (config.telemetry), not the global proxy, so a test can point it
    # at a receiver of its own; kept, as get_tracer builds a new tracer at every call.
    global _cached
    provider = otel.provider()
    if provider is None:
        return trace.get_tracer(TRACER_NAME)
    if _cached is None or _cached[0] is not provider:
        _cached = (provider, provider.get_tracer(TRACER_NAME))
    return _cached[1]


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


def _clip(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= MAX_CONTENT_CHARS else text[:MAX_CONTENT_CHARS] + "…"


# --- the stored context -------------------------------------------------------------------------


def _context_of(data: dict[str, Any] | None, key: str = "span_id") -> SpanContext | None:
    """The span context a stored trace context names (its run span, or that span's parent)."""
    if not data or not data.get(key):
        return None
    try:
        return SpanContext(
            trace_id=int(data["trace_id"], 16),
            span_id=int(data[key], 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED if data.get("sampled") else TraceFlags.DEFAULT),
        )
    except (KeyError, TypeError, ValueError):
        return None


def run_trace_context(*, parent_execution: Any = None, name: str = "invoke_agent") -> dict[str, Any] | None:
    """The ids of a new run's span, to store on its execution (None when tracing is off).

    Its parent is the span in progress (the API request's, or the ``execute_tool`` span of
    a delegating run), else the run span of ``parent_execution`` (a chain step started by
    a run); without either it starts a trace of its own.
    """
    if not otel.enabled():
        return None
    current = trace.get_current_span().get_span_context()
    parent = current if current.is_valid else _context_of(getattr(parent_execution, "trace_context", None))
    span_id = _ids.generate_span_id()
    if parent is not None:
        return {
            "trace_id": format(parent.trace_id, "032x"),
            "span_id": format(span_id, "016x"),
            "parent_span_id": format(parent.span_id, "016x"),
            "sampled": parent.trace_flags.sampled,
        }
    trace_id = _ids.generate_trace_id()
    provider = otel.provider()
    sampled = True
    if provider is not None:
        # The decision the root span will get when it is written (the samplers decide from
        # the trace id), taken now because the run's children are written before it.
        sampled = provider.sampler.should_sample(None, trace_id, name).decision.is_sampled()
    return {"trace_id": format(trace_id, "032x"), "span_id": format(span_id, "016x"), "sampled": sampled}


def _ensure_context(execution: Any) -> dict[str, Any] | None:
    """The execution's trace context; one is made for a run created while tracing was off."""
    if execution.trace_context:
        return execution.trace_context
    data = run_trace_context(parent_execution=execution.parent if execution.parent_id else None)
    if data is not None:
        type(execution).objects.filter(pk=execution.pk, trace_context__isnull=True).update(trace_context=data)
        execution.refresh_from_db(fields=["trace_context"])
    return execution.trace_context


def run_segment(execution: Any) -> AbstractContextManager[None]:
    """What one worker does of a run happens inside the run's span (made current, not ended)."""
    if not otel.enabled():
        return nullcontext()
    return within(_ensure_context(execution))


@contextmanager
def within(trace_context: dict[str, Any] | None) -> Iterator[None]:
    """Make the span a stored trace context names current (a chain's, for its steps)."""
    context = _context_of(trace_context) if otel.enabled() else None
    if context is None:
        yield
        return
    with trace.use_span(NonRecordingSpan(context), end_on_exit=False):
        yield


def _base_attributes(execution: Any) -> dict[str, Any]:
    config = execution.config or {}
    model_config = config.get("model_config") or {}
    attributes = {
        "gen_ai.agent.id": str(execution.agent_id),
        "agentry.execution.id": str(execution.pk),
        "agentry.organization.id": str(execution.organization_id),
    }
    if execution.conversation_id:
        attributes["gen_ai.conversation.id"] = str(execution.conversation_id)
    if model_config.get("provider"):
        attributes["gen_ai.provider.name"] = str(model_config["provider"])
    return attributes


# --- model and tool calls -------------------------------------------------------------------------


def _messages(messages: list) -> str:
    rows = []
    for message in messages:
        parts: list[dict[str, Any]] = []
        if getattr(message, "content", None):
            parts.append({"type": "text", "content": _clip(message.content)})
        for call in getattr(message, "tool_calls", None) or []:
            parts.append({"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments})
        if getattr(message, "tool_call_id", None):
            parts = [{"type": "tool_call_response", "id": message.tool_call_id, "response": _clip(message.content)}]
        rows.append({"role": str(message.role), "parts": parts})
    return _clip(json.dumps(rows, default=str))


@contextmanager
def _active_span(name: str, kind: SpanKind, attributes: dict[str, Any]) -> Iterator[Span]:
    """A span made current; an exception marks it failed with its type (or the run's error
    code) only: its message may quote a provider's answer or a tool's input."""
    tracer = _tracer()
    with tracer.start_as_current_span(
        name, kind=kind, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield span
        except BaseException as error:
            span.set_attribute("error.type", getattr(error, "code", "") or type(error).__name__)
            span.set_status(Status(StatusCode.ERROR))
            raise


def chat_span(
    execution: Any, *, configs: list, messages: list, step_number: int
) -> AbstractContextManager[Span | None]:
    """A ``chat {model}`` span around one model call (fallbacks included); ``configs``: the
    run's provider configs, the first one is what is asked for."""
    if not otel.enabled():
        return nullcontext()
    provider, model = (configs[0].provider, configs[0].model) if configs else ("", "")
    attributes = {
        **_base_attributes(execution),
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "agentry.step.number": step_number,
    }
    if capture_content():
        attributes["gen_ai.input.messages"] = _messages(messages)
    return _active_span(f"chat {model}", SpanKind.CLIENT, attributes)


def chat_answered(span: Span | None, response: Any, cost: Any) -> None:
    """What the model answered, on its ``chat`` span."""
    if span is None or not span.is_recording():
        return
    usage = response.usage
    span.set_attributes(
        {
            "gen_ai.response.model": response.model,
            "gen_ai.provider.name": response.provider,
            "gen_ai.usage.input_tokens": usage.input_tokens,
            "gen_ai.usage.output_tokens": usage.output_tokens,
            "gen_ai.response.finish_reasons": [str(response.finish_reason)],
            "agentry.cost.usd": float(cost),
        }
    )
    if response.raw_id:
        span.set_attribute("gen_ai.response.id", response.raw_id)
    if capture_content():
        parts: list[dict[str, Any]] = [{"type": "text", "content": _clip(response.content)}] if response.content else []
        parts += [
            {"type": "tool_call", "id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls
        ]
        output = [{"role": "assistant", "parts": parts, "finish_reason": str(response.finish_reason)}]
        span.set_attribute("gen_ai.output.messages", _clip(json.dumps(output, default=str)))


def tool_span(
    execution: Any, *, name: str, call_id: str, arguments: Any, step_number: int
) -> AbstractContextManager[Span | None]:
    """An ``execute_tool {name}`` span around one tool call; runs it starts are its children."""
    if not otel.enabled():
        return nullcontext()
    attributes = {
        **_base_attributes(execution),
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.call.id": call_id or "",
        "gen_ai.tool.type": "function",
        "agentry.step.number": step_number,
    }
    if capture_content():
        attributes["gen_ai.tool.call.arguments"] = _clip(arguments)
    return _active_span(f"execute_tool {name}", SpanKind.INTERNAL, attributes)


def tool_answered(span: Span | None, outcome: Any) -> None:
    if span is None or not span.is_recording():
        return
    span.set_attribute("agentry.tool.status", outcome.status)
    if outcome.status not in ("completed", "wait", "needs_approval"):
        span.set_status(Status(StatusCode.ERROR, _clip(outcome.error or outcome.status)[:500]))
        span.set_attribute("error.type", str(outcome.status))
    elif capture_content() and outcome.status == "completed":
        span.set_attribute("gen_ai.tool.call.result", _clip(outcome.output))


# --- spans written after the fact ----------------------------------------------------------------


def _write_span(
    context: dict[str, Any],
    name: str,
    *,
    parent: SpanContext | None,
    start: datetime,
    attributes: dict[str, Any],
    error: str = "",
    span_id: int | None = None,
) -> None:
    # An explicit context, never the current one: a run ends inside its own segment.
    parent_context = trace.set_span_in_context(NonRecordingSpan(parent), Context()) if parent is not None else Context()
    forced = otel.span_ids(int(context["trace_id"], 16), span_id) if span_id is not None else nullcontext()
    with forced:
        span = _tracer().start_span(
            name, context=parent_context, kind=SpanKind.INTERNAL, attributes=attributes, start_time=_nanos(start)
        )
    if error:
        span.set_status(Status(StatusCode.ERROR, error[:500]))
    span.end()


def run_ended(execution: Any, *, status: str, error_code: str, totals: dict[str, Any]) -> None:
    """After the run's final commit: write its ``invoke_agent`` span with its stored ids."""
    if not otel.enabled() or not execution.trace_context:
        return
    context = dict(execution.trace_context)
    agent_name = execution.agent.name
    config = execution.config or {}
    attributes = {
        **_base_attributes(execution),
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": agent_name,
        "gen_ai.usage.input_tokens": int(totals.get("tokens_input") or 0),
        "gen_ai.usage.output_tokens": int(totals.get("tokens_output") or 0),
        "agentry.cost.usd": float(totals.get("cost") or 0),
        "agentry.execution.status": status,
        "agentry.execution.trigger_type": execution.trigger_type,
        "agentry.execution.retry_count": int(totals.get("retry_count") or 0),
    }
    model = (config.get("model_config") or {}).get("model")
    if model:
        attributes["gen_ai.request.model"] = str(model)
    if error_code:
        attributes["error.type"] = error_code
    start = totals.get("created_at") or execution.created_at

    def write() -> None:
        _write_span(
            context,
            f"invoke_agent {agent_name}",
            parent=_context_of(context, "parent_span_id"),
            start=start,
            attributes=attributes,
            error=error_code if status not in ("completed", "cancelled") else "",
            span_id=int(context["span_id"], 16),
        )

    transaction.on_commit(write)


def approval_waited(execution: Any, *, approval: Any, decision: str) -> None:
    """After a person decided (or the request expired): the wait, as a span of the run."""
    if not otel.enabled():
        return
    context = _ensure_context(execution)
    if not context:
        return
    attributes = {
        **_base_attributes(execution),
        "gen_ai.tool.name": approval.action_type or "",
        "agentry.approval.id": str(approval.pk),
        "agentry.approval.decision": decision,
        "agentry.step.number": approval.step_number,
    }
    started = approval.created_at or timezone.now()
    name = f"await_approval {approval.action_type}".strip()
    transaction.on_commit(
        lambda: _write_span(context, name, parent=_context_of(context), start=started, attributes=attributes)
    )


def chain_ended(chain_execution: Any, *, status: str, error_code: str) -> None:
    """After a chain's final commit: its ``chain {name}`` span, parent of its steps' runs."""
    context = chain_execution.trace_context
    if not otel.enabled() or not context:
        return
    name = (chain_execution.definition or {}).get("name") or "chain"
    attributes = {
        "agentry.chain.id": str(chain_execution.chain_id),
        "agentry.chain_execution.id": str(chain_execution.pk),
        "agentry.organization.id": str(chain_execution.organization_id),
        "agentry.execution.status": status,
    }
    if chain_execution.parent_execution_id:
        attributes["agentry.parent_execution.id"] = str(chain_execution.parent_execution_id)
    if error_code:
        attributes["error.type"] = error_code
    start = chain_execution.created_at or timezone.now()

    def write() -> None:
        _write_span(
            context,
            f"chain {name}",
            parent=_context_of(context, "parent_span_id"),
            start=start,
            attributes=attributes,
            error=error_code if status not in ("completed", "cancelled") else "",
            span_id=int(context["span_id"], 16),
        )

    transaction.on_commit(write)
