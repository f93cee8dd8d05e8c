"""The Responses API from an execution: ``resp_<execution id>``; a continued response is a new
run whose history is the previous ones' turns."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async

from doors.common import (
    Parked,
    StreamedAnswer,
    answer_text,
    door_follow,
    error_sentence,
    output_text,
    parked,
    parked_from_event,
)
from doors.openai.chat import agentry_part, created
from doors.openai.errors import OpenAIInvalid
from executions.models import Execution, ExecutionStatus

S = ExecutionStatus
PREFIX = "resp_"
APPROVAL_REASON = "approval_required"
STATUSES: dict[str, str] = {
    S.PENDING: "queued",
    S.RUNNING: "in_progress",
    S.WAITING: "in_progress",
    S.WAITING_APPROVAL: "incomplete",
    S.COMPLETED: "completed",
    S.FAILED: "failed",
    S.TIMED_OUT: "failed",
    S.CANCELLED: "cancelled",
}


def response_id(execution: Execution) -> str:
    return f"{PREFIX}{execution.pk.hex}"


def execution_id_of(value: str, param: str = "id") -> uuid.UUID:
    if not value.startswith(PREFIX):
        raise OpenAIInvalid(f"Not a response id: {value!r}.", param=param, code="NotFound", status=404)
    try:
        return uuid.UUID(value[len(PREFIX) :])
    except ValueError:
        raise OpenAIInvalid(f"Not a response id: {value!r}.", param=param, code="NotFound", status=404) from None


def continued_history(previous: Execution) -> list[dict[str, str]]:
    """The previous response's whole conversation: its history, its input, its answer."""
    if previous.status != S.COMPLETED:
        raise OpenAIInvalid(
            f"The previous response is {STATUSES[previous.status]}; only a completed one can be continued.",
            param="previous_response_id",
        )
    return [
        *list(previous.input.get("history") or []),
        {"role": "user", "content": previous.task},
        {"role": "assistant", "content": answer_text(previous)},
    ]


def _message(execution: Execution, text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "message",
        "id": f"msg_{execution.pk.hex}",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def response_body(execution: Execution, model: str, base_url: str, waiting: Parked | None = None) -> dict[str, Any]:
    """The Response object of a run, as it is now (a GET later shows what happened since)."""
    waiting = waiting or parked(execution, base_url)
    status = STATUSES[execution.status]
    output: list[dict[str, Any]] = []
    error = None
    incomplete = None
    if execution.status == S.COMPLETED:
        output = [_message(execution, answer_text(execution))]
    elif waiting is not None:
        output = [_message(execution, waiting.sentence())]
        incomplete = {"reason": APPROVAL_REASON}
    elif execution.is_terminal and execution.status != S.CANCELLED:
        error = {"code": execution.error_code or "ExecutionFailed", "message": error_sentence(execution)}
    data = execution.trigger_data or {}
    return {
        "id": response_id(execution),
        "object": "response",
        "created_at": created(execution),
        "status": status,
        "model": model,
        "output": output,
        "error": error,
        "incomplete_details": incomplete,
        "instructions": execution.input.get("instructions") or None,
        "previous_response_id": data.get("previous_response_id"),
        "temperature": ((execution.config or {}).get("model_config") or {}).get("temperature"),
        "max_output_tokens": execution.max_tokens,
        "parallel_tool_calls": False,
        "tool_choice": "none",
        "tools": [],
        "top_p": None,
        "metadata": {},
        "usage": {
            "input_tokens": execution.tokens_input,
            "input_tokens_details": {"cached_tokens": execution.tokens_cached},
            "output_tokens": execution.tokens_output,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": execution.tokens_input + execution.tokens_output,
        },
        "agentry": agentry_part(execution, waiting),
    }


class _Events:
    def __init__(self) -> None:
        self.sequence = 0

    def __call__(self, kind: str, **data: Any) -> str:
        body = {"type": kind, "sequence_number": self.sequence, **data}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(body)}\n\n"


async def response_events(execution: Execution, model: str, base_url: str) -> AsyncIterator[str]:
    """The Responses streaming events of a run: created, the text as it comes, the end."""
    event = _Events()
    item_id = f"msg_{execution.pk.hex}"
    start = response_body(execution, model, base_url)
    yield event("response.created", response=start)
    yield event("response.in_progress", response={**start, "status": "in_progress"})
    yield event(
        "response.output_item.added",
        output_index=0,
        item={**_message(execution, "", "in_progress"), "content": []},
    )
    part = {"type": "output_text", "text": "", "annotations": []}
    yield event("response.content_part.added", item_id=item_id, output_index=0, content_index=0, part=part)
    streamed = StreamedAnswer()
    waiting: Parked | None = None
    ended = False
    text = ""

    def delta(piece: str) -> str:
        return event(
            "response.output_text.delta", item_id=item_id, output_index=0, content_index=0, delta=piece, logprobs=[]
        )

    async for item in door_follow(execution.pk):
        if item.kind == "keepalive":
            yield ": keep-alive\n\n"
        elif item.kind == "delta" and item.text:
            streamed.add(item)
            yield delta(item.text)
        elif item.kind == "parked":
            waiting = parked_from_event(item.data, base_url)
            text = waiting.sentence()
            yield delta(text)
        elif item.kind == "end":
            ended = True
            if item.data.get("status") == S.COMPLETED:
                text = output_text(item.data.get("output"))
                rest = streamed.rest(text)
                if rest:
                    yield delta(rest)
    await sync_to_async(execution.refresh_from_db)()
    final = await sync_to_async(response_body)(execution, model, base_url, waiting)
    if waiting is not None or (ended and execution.status == S.COMPLETED):
        yield event(
            "response.output_text.done", item_id=item_id, output_index=0, content_index=0, text=text, logprobs=[]
        )
        done_part = {**part, "text": text}
        yield event("response.content_part.done", item_id=item_id, output_index=0, content_index=0, part=done_part)
        yield event("response.output_item.done", output_index=0, item=_message(execution, text))
    kind = {"completed": "response.completed", "incomplete": "response.incomplete", "failed": "response.failed"}
    yield event(kind.get(final["status"], "response.incomplete" if not ended else "response.failed"), response=final)
