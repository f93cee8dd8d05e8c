"""Chat completions from an execution: the whole object, or its chunks from the live events."""

from __future__ import annotations

import json
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
from doors.openai.errors import openai_error
from executions.models import Execution, ExecutionStatus

S = ExecutionStatus
# Not one of OpenAI's finish reasons: a run waiting for a person is neither "stop" nor
# "length", and a client should be able to tell. The message carries the approver link.
APPROVAL_FINISH = "approval_required"


def usage(execution: Execution) -> dict[str, Any]:
    return {
        "prompt_tokens": execution.tokens_input,
        "completion_tokens": execution.tokens_output,
        "total_tokens": execution.tokens_input + execution.tokens_output,
        "prompt_tokens_details": {"cached_tokens": execution.tokens_cached},
    }


def agentry_part(execution: Execution, waiting: Parked | None = None) -> dict[str, Any]:
    """What the run is, beyond OpenAI's fields (SDKs keep unknown fields: ``model_extra``)."""
    part: dict[str, Any] = {
        "execution_id": str(execution.pk),
        "status": execution.status,
        "cost": str(execution.cost),
    }
    if waiting is not None:
        part["approval"] = {"id": waiting.approval_id, "tool": waiting.tool, "url": waiting.url}
    return part


def completion_id(execution: Execution) -> str:
    return f"chatcmpl-{execution.pk.hex}"


def created(execution: Execution) -> int:
    return int(execution.created_at.timestamp())


def completion(execution: Execution, model: str, base_url: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for a run that ended or parked; a failed run is an error."""
    waiting = parked(execution, base_url)
    if waiting is not None:
        content, finish = waiting.sentence(), APPROVAL_FINISH
    elif execution.status == S.COMPLETED:
        content, finish = answer_text(execution), "stop"
    else:
        return failure(execution)
    return 200, {
        "id": completion_id(execution),
        "object": "chat.completion",
        "created": created(execution),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": usage(execution),
        "agentry": agentry_part(execution, waiting),
    }


def failure(execution: Execution) -> tuple[int, dict[str, Any]]:
    """A run that did not answer: failed (500), timed out (504), cancelled (409), or still
    running after the wait (504, with its id to look it up)."""
    if execution.status == S.CANCELLED:
        status, code = 409, "ExecutionCancelled"
    elif execution.status == S.TIMED_OUT:
        status, code = 504, execution.error_code or "ExecutionTimeout"
    elif execution.is_terminal:
        status, code = 500, execution.error_code or "ExecutionFailed"
    else:
        status, code = 504, "StillRunning"
    message = (
        error_sentence(execution)
        if execution.is_terminal
        else f"The run is still {execution.status}; follow it at /api/v1/executions/{execution.pk}/."
    )
    body = openai_error(f"{message} (execution {execution.pk})", status=status, code=code)
    body["error"]["execution_id"] = str(execution.pk)
    return status, body


def _chunk(execution: Execution, model: str, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
    body = {
        "id": completion_id(execution),
        "object": "chat.completion.chunk",
        "created": created(execution),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        **extra,
    }
    return "data: " + json.dumps(body) + "\n\n"


async def completion_chunks(execution: Execution, model: str, base_url: str, include_usage: bool) -> AsyncIterator[str]:
    """The OpenAI chunk stream of a run: token deltas as the model writes, the rest of the
    answer at the end (tokens are live-only: a call already under way when we subscribed
    has none), the finish reason, usage if asked, ``data: [DONE]``."""
    yield _chunk(execution, model, {"role": "assistant", "content": ""})
    streamed = StreamedAnswer()
    finish: str | None = None
    async for item in door_follow(execution.pk):
        if item.kind == "keepalive":
            yield ": keep-alive\n\n"
        elif item.kind == "delta" and item.text:
            streamed.add(item)
            yield _chunk(execution, model, {"content": item.text})
        elif item.kind == "parked":
            waiting = parked_from_event(item.data, base_url)
            yield _chunk(
                execution,
                model,
                {"content": ("\n\n" if streamed.text else "") + waiting.sentence()},
                APPROVAL_FINISH,
                agentry={"execution_id": str(execution.pk), "status": S.WAITING_APPROVAL, "approval": waiting.url},
            )
            finish = APPROVAL_FINISH
        elif item.kind == "end":
            if item.data.get("status") != S.COMPLETED:
                await sync_to_async(execution.refresh_from_db)()
                yield "data: " + json.dumps(failure(execution)[1]) + "\n\n"
                return
            rest = streamed.rest(output_text(item.data.get("output")))
            if rest:
                yield _chunk(execution, model, {"content": rest})
            yield _chunk(execution, model, {}, "stop")
            finish = "stop"
    if finish is None:  # the stream's time ran out
        await sync_to_async(execution.refresh_from_db)()
        yield "data: " + json.dumps(failure(execution)[1]) + "\n\n"
        return
    if include_usage:
        await sync_to_async(execution.refresh_from_db)()
        body = {
            "id": completion_id(execution),
            "object": "chat.completion.chunk",
            "created": created(execution),
            "model": model,
            "choices": [],
            "usage": usage(execution),
        }
        yield "data: " + json.dumps(body) + "\n\n"
    yield "data: [DONE]\n\n"
